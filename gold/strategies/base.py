"""What a feedback strategy and a noise strategy are: the two method alternatives a round's select step asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec


@dataclass
class FeedbackPick:
    """The samples a feedback strategy sends back to the teacher, and the energy band it used (for the metrics)."""

    ids: list[int] = field(default_factory=list)
    lo_energy: float | None = None
    hi_energy: float | None = None


class FeedbackStrategy(Protocol):
    """Picks, among the round's scored samples that are neither vetoed nor noise, the next round's in-context
    examples (the `feedback` flag). `pool` is in store order and every sample in it has an energy."""

    name: str

    def pick(self, pool: list[Sample], task: TaskSpec, settings: GoldSettings) -> FeedbackPick: ...


class NoiseStrategy(Protocol):
    """Decides which of the run's training samples are noise (the `noise` flag), and what training does with them:
    `relabeled` returns the flagged samples that train anyway and the label they train under."""

    name: str

    def flag(self, train: list[Sample], task: TaskSpec, settings: GoldSettings) -> list[int]: ...

    def relabeled(self, flagged: list[Sample], task: TaskSpec) -> list[tuple[Sample, str]]: ...

"""What a feedback strategy and a noise strategy are: the two method alternatives a round's select step asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec


@dataclass
class FeedbackPick:
    """What a feedback strategy sends back to the teacher: samples of the round (`ids`, flagged 'feedback') and
    real evaluation rows (`rows`, indices into the task's evaluation set, shown with their true labels), and what
    the select step records about it."""

    ids: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    lo_energy: float | None = None
    hi_energy: float | None = None
    steering_accuracy: float | None = None  # the student on the steering rows (strategies that read them)
    note: str | None = None  # a warning for the run's log (e.g. a fallback the strategy took)


class FeedbackStrategy(Protocol):
    """Picks the next round's in-context examples among the round's scored samples that are neither vetoed nor
    noise (`pool`, in store order, every sample with an energy) or, for a strategy that `steers_with_rows`, among
    the task's steering rows (gold/steering.py). `student()` gives the round's trained student; `embed(texts)`
    gives the texts' sentence embeddings from the map's encoder (L2-normalised rows, cached in the store).

    `needs_probes`: whether the strategy reads probes; a strategy that does not spends the probe budget on
    samples. `steers_with_rows`: whether it shows the teacher real evaluation rows, in which case the run
    measures on the other half only. `draws_from_band`: whether its picks lie in the energy band
    (`band_lo`–`band_hi` percentiles), so the Explore page can mark that band as where the feedback came from."""

    name: str
    needs_probes: bool
    steers_with_rows: bool
    draws_from_band: bool

    def pick(self, pool: list[Sample], task: TaskSpec, settings: GoldSettings,
             student: Callable[[], Any], embed: Callable[[Sequence[str]], Any] | None = None) -> FeedbackPick: ...


class NoiseStrategy(Protocol):
    """Decides which of the run's training samples are noise (the `noise` flag), and what training does with them:
    `relabeled` returns the flagged samples that train anyway and the label they train under. `student()` gives
    the round's trained student, for a strategy that reads more of it than the scores each sample carries."""

    name: str

    def flag(self, train: list[Sample], task: TaskSpec, settings: GoldSettings,
             student: Callable[[], Any] | None = None) -> list[int]: ...

    def relabeled(self, flagged: list[Sample], task: TaskSpec) -> list[tuple[Sample, str]]: ...

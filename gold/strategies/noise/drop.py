"""Drop (the default): per label, the run's training samples above the `band_hi` percentile of the student's
energy are noise and stay out of training. They stay visible on the Explore page, and a person may restore them."""

from __future__ import annotations

from typing import Any

from gold.energy import select_band
from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec


def high_energy(train: list[Sample], task: TaskSpec, settings: GoldSettings) -> list[int]:
    """The ids of the samples above `band_hi` within their label (within the whole set for seq2seq)."""
    band = select_band([s.energy for s in train], settings.band_lo, settings.band_hi,
                       groups=[s.output for s in train] if task.kind == "classification" else None)
    return [train[i].id for i in band.noise]


class Drop:
    name = "drop"

    def flag(self, train: list[Sample], task: TaskSpec, settings: GoldSettings, student: Any = None) -> list[int]:
        return high_energy(train, task, settings)

    def relabeled(self, flagged: list[Sample], task: TaskSpec) -> list[tuple[Sample, str]]:
        return []


STRATEGY = Drop()

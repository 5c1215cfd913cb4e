"""Relabel (classification): the samples `drop` flags train anyway, under the label the last student predicted
for them. Why: dropping flagged rows costs volume, while a high-energy sample's given label is wrong far more often
than the average one; the student that flagged it never trained on it after the flag, so its prediction is a second
opinion. A sample a person vetoed stays out."""

from __future__ import annotations

from typing import Any

from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec
from gold.strategies.noise.drop import high_energy


class Relabel:
    name = "relabel"

    def flag(self, train: list[Sample], task: TaskSpec, settings: GoldSettings, student: Any = None) -> list[int]:
        return high_energy(train, task, settings)

    def relabeled(self, flagged: list[Sample], task: TaskSpec) -> list[tuple[Sample, str]]:
        if task.kind != "classification":
            return []
        return [(s, s.prediction) for s in flagged if not s.vetoed and s.prediction in task.labels]


STRATEGY = Relabel()

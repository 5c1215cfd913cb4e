"""Keep: nothing is treated as noise; every kept sample trains (the noise filter off)."""

from __future__ import annotations

from typing import Any

from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec


class Keep:
    name = "keep"

    def flag(self, train: list[Sample], task: TaskSpec, settings: GoldSettings, student: Any = None) -> list[int]:
        return []

    def relabeled(self, flagged: list[Sample], task: TaskSpec) -> list[tuple[Sample, str]]:
        return []


STRATEGY = Keep()

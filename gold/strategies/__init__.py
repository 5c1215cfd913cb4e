"""Method alternatives, one file each, picked by a setting.

A round's select step asks two strategies what to do:
  feedback  which of the round's samples go back to the teacher as in-context examples (`GoldSettings.feedback`);
  noise     which training samples are treated as noise, and what training does with them (`GoldSettings.noise`).
Adding a strategy is a module under `feedback/` or `noise/` that defines `STRATEGY`, plus its line below. The
registries name modules rather than import them, so `gold.specs` can validate a setting without loading numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

FEEDBACK: dict[str, str] = {
    "coverage": "gold.strategies.feedback.coverage",
    "energy_band": "gold.strategies.feedback.energy_band",
    "real_errors": "gold.strategies.feedback.real_errors",
    "student_loss": "gold.strategies.feedback.student_loss",
}
NOISE: dict[str, str] = {
    "drop": "gold.strategies.noise.drop",
    "disagreement": "gold.strategies.noise.disagreement",
    "relabel": "gold.strategies.noise.relabel",
    "keep": "gold.strategies.noise.keep",
}


def feedback_strategy(name: str) -> Any:
    """The feedback strategy called `name` (a `gold.strategies.base.FeedbackStrategy`)."""
    return importlib.import_module(FEEDBACK[name]).STRATEGY


def noise_strategy(name: str) -> Any:
    """The noise strategy called `name` (a `gold.strategies.base.NoiseStrategy`)."""
    return importlib.import_module(NOISE[name]).STRATEGY

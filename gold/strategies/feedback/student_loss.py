"""Student loss (teacher–student disagreement): per label, the round's samples between the `band_lo` and
`band_hi` percentiles of the student's loss on its training target (the labeler's soft label, else the label
the teacher was asked to write) go back to the teacher as in-context examples.

Why loss rather than energy: energy ranks what the student finds unfamiliar, which with soft labels mostly
tracks what the teacher was unsure of; the loss on the soft label ranks where the student and the teacher
still disagree, the samples a next round can teach (dataset cartography's "ambiguous" region). The top of the
range, as often mislabeled as informative, stops at `band_hi` as the energy band does; noise stays the noise
strategy's business. Seq2seq tasks have no soft labels: they fall back to the energy band."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from gold.energy import select_band
from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec
from gold.strategies.base import FeedbackPick
from gold.strategies.feedback import energy_band
from gold.strategies.targets import training_target

EPS = 1e-9


def target_losses(pool: list[Sample], labels: list[str], probs: np.ndarray) -> np.ndarray:
    """Cross-entropy of the student's probabilities against each sample's training target (NaN, left unranked,
    for a sample without one)."""
    out = np.full(len(pool), np.nan)
    for i, s in enumerate(pool):
        target = training_target(s, labels)
        if target is not None:
            out[i] = float(-(target * np.log(probs[i] + EPS)).sum())
    return out


class StudentLoss:
    name = "student_loss"
    needs_probes = True
    steers_with_rows = False
    draws_from_band = False

    def pick(self, pool: list[Sample], task: TaskSpec, settings: GoldSettings,
             student: Callable[[], Any], embed: Any = None) -> FeedbackPick:
        if task.kind != "classification" or not pool:
            return energy_band.STRATEGY.pick(pool, task, settings)
        model = student()
        scored = model.score([task.format_input(s.inputs) for s in pool], temperature=settings.energy_temperature)
        losses = target_losses(pool, list(task.labels), np.asarray(scored.probs, dtype=float))
        band = select_band(losses, settings.band_lo, settings.band_hi, groups=[s.output for s in pool])
        return FeedbackPick(ids=[pool[i].id for i in band.feedback])


STRATEGY = StudentLoss()

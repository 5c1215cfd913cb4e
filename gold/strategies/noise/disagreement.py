"""Disagreement (classification): per label, the run's training samples above the `band_hi` percentile of the
student's disagreement with their training target are noise and stay out of training. The target is the
labeler's soft label when the run has one, else the label the teacher was asked to write; the disagreement is
KL(target ‖ student), so a soft label that is merely unsure (a high-entropy target the student matches) is not
counted against its sample.

Why not energy: energy ranks what the student finds unfamiliar, and the highest-energy samples are already the
ones it has learned least from; the samples that teach it a wrong label are the ones whose label it keeps
refusing after training on them (the small-loss rule of co-teaching and confident learning). On hard-label
SST-2 runs, looking at the samples the student believes least found 17 wrong labels per 30 looked at, the
highest-energy ones 6 (docs/benchmarks.md, *Simulated reviewer*). Seq2seq tasks fall back to energy (`drop`)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from gold.energy import select_band
from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec
from gold.strategies.noise.drop import high_energy
from gold.strategies.targets import training_target

EPS = 1e-9


def disagreements(train: list[Sample], labels: list[str], probs: np.ndarray) -> np.ndarray:
    """KL(target ‖ student) per sample (`gold.strategies.targets`; for a one-hot target, the student's loss on that
    label). NaN, left unranked, for a sample without a target."""
    out = np.full(len(train), np.nan)
    for i, s in enumerate(train):
        target = training_target(s, labels)
        if target is not None:
            nz = target > 0
            out[i] = float((target[nz] * (np.log(target[nz]) - np.log(probs[i][nz] + EPS))).sum())
    return out


class Disagreement:
    name = "disagreement"

    def flag(self, train: list[Sample], task: TaskSpec, settings: GoldSettings,
             student: Callable[[], Any] | None = None) -> list[int]:
        if task.kind != "classification" or student is None or not train:
            return high_energy(train, task, settings)
        model = student()
        scored = model.score([task.format_input(s.inputs) for s in train], temperature=settings.energy_temperature)
        d = disagreements(train, list(task.labels), np.asarray(scored.probs, dtype=float))
        band = select_band(d, settings.band_lo, settings.band_hi, groups=[s.output for s in train])
        return [train[i].id for i in band.noise]

    def relabeled(self, flagged: list[Sample], task: TaskSpec) -> list[tuple[Sample, str]]:
        return []


STRATEGY = Disagreement()

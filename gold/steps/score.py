"""Score: every kept sample of the run is scored by the round's new student (energy, prediction, confidence), so
the map, the select step and a person reviewing always see energy under the current student."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gold.context import RunContext
from gold.faults import failpoint
from gold.steps import RoundState, StepResult


@dataclass
class ScoreResult(StepResult):
    scored: int | None = None
    energy_mean: float | None = None
    energy_std: float | None = None


def run(ctx: RunContext, state: RoundState) -> ScoreResult:
    task, settings, student = state.task, state.settings, state.trained_student()
    ctx.progress(None, f"Round {state.n}: scoring every sample with the new student…")
    rows = ctx.store.samples(ctx.run_id, kept_only=True)
    if not rows:
        return ScoreResult(scored=0)
    texts = [task.format_input(r.inputs) for r in rows]
    if task.kind == "classification":  # energy and predictions from one forward pass over every sample
        scored = student.score(texts, temperature=settings.energy_temperature)
        energies, preds = np.asarray(scored.energy, dtype=float), student.predictions(scored.probs)
    else:  # teacher-forced energy on the given outputs, then the student's own answers
        outputs = [r.output for r in rows]
        energies = np.asarray(student.energy(texts, outputs, temperature=settings.energy_temperature), dtype=float)
        preds = student.predict(texts)
    scores = []
    for r, e, p in zip(rows, energies, preds):
        scores.append({"id": r.id, "energy": float(e) if math.isfinite(e) else None, "prediction": p.output,
                       "confidence": float(p.confidence), "label_prob": p.probs.get(r.output) if p.probs else None})
    ctx.store.set_scores(scores)
    failpoint("score")  # scores written, the step not yet recorded: it is redone on resume
    finite = energies[np.isfinite(energies)]
    return ScoreResult(scored=len(rows), energy_mean=round(float(finite.mean()), 4) if len(finite) else None,
                       energy_std=round(float(finite.std()), 4) if len(finite) else None)

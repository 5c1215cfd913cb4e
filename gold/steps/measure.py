"""Measure: the task metric of the round's student on the task's evaluation rows (else its seeds), the energy
histogram of the round's samples, and the run's sample counts. With `steer_labels` (GOLD, classification), the
student's reading of labeled rows also sets the next round's label shares: by energy, labels whose evaluation rows
look out-of-distribution to the student get more samples; by errors, labels whose steering rows it gets wrong
more often do (gold/steering.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gold.context import RunContext
from gold.energy import steering_shares
from gold.evaluation import evaluate_student, is_correct, metric_name, task_metric
from gold.specs import Example, TaskSpec
from gold.steering import error_shares, evaluation_rows, steering_rows
from gold.steps import RoundState, StepResult, finite

HIST_BINS = 20


@dataclass
class MeasureResult(StepResult):
    metric_name: str | None = None
    metric: float | None = None
    metric_on: str | None = None
    metric_rows: int | None = None
    energy_hist: dict[str, list[float]] | None = None
    label_energy: dict[str, float | None] | None = None
    label_error: dict[str, float | None] | None = None
    next_label_shares: dict[str, float] | None = None
    generated: int | None = None
    kept: int | None = None
    rejected: int | None = None
    vetoed: int | None = None


def run(ctx: RunContext, state: RoundState) -> MeasureResult:
    task, settings, student = state.task, state.settings, state.trained_student()
    rows, source = evaluation_rows(task, settings)
    out = MeasureResult(metric_name=metric_name(task), metric_on=source, metric_rows=len(rows))
    steering = task.kind == "classification" and state.gold and settings.steer_labels
    if steering and settings.steer_labels_by == "errors":
        out.metric = evaluate_student(student, task, rows)
        _, steer = steering_rows(task)
        if steer:
            wrong = label_errors(task, steer, student.predict([task.format_input(ex.inputs) for ex in steer]))
            out.label_error = {k: round(sum(v) / len(v), 4) if v else None for k, v in wrong.items()}
            out.next_label_shares = {k: round(v, 4) for k, v in error_shares(wrong).items()}
    elif steering and rows:
        # one forward pass gives both the metric and the per-label energies
        scored = student.score([task.format_input(ex.inputs) for ex in rows], temperature=settings.energy_temperature)
        out.metric = task_metric(task, [p.output for p in student.predictions(scored.probs)], rows)
        by_label = label_energies(task, rows, scored.energy)
        out.label_energy = {k: finite(float(np.mean(v))) if v else None for k, v in by_label.items()}
        out.next_label_shares = {k: round(v, 4) for k, v in steering_shares(by_label).items()}
    else:
        out.metric = evaluate_student(student, task, rows)
    energies = np.asarray([r.energy for r in ctx.store.samples(ctx.run_id, round_n=state.n, kept_only=True)
                           if r.energy is not None], dtype=float)
    if len(energies):
        counts, edges = np.histogram(energies, bins=HIST_BINS)
        out.energy_hist = {"counts": counts.tolist(), "edges": [round(float(e), 4) for e in edges]}
    counts_all = ctx.store.sample_counts(ctx.run_id)
    out.generated, out.kept = counts_all["generated"], counts_all["kept"]
    out.rejected, out.vetoed = counts_all["rejected"], counts_all["vetoed"]
    return out


def label_energies(task: TaskSpec, rows: list[Example], energies: Any) -> dict[str, list[float]]:
    """The student's energies on labeled rows, grouped by their true label (every label present, maybe empty)."""
    out: dict[str, list[float]] = {label: [] for label in task.labels}
    for ex, e in zip(rows, energies):
        if ex.output in out:
            out[ex.output].append(float(e))
    return out


def label_errors(task: TaskSpec, rows: list[Example], predictions: list[Any]) -> dict[str, list[bool]]:
    """Whether the student got each labeled row wrong, grouped by the row's true label (every label present)."""
    out: dict[str, list[bool]] = {label: [] for label in task.labels}
    for ex, p in zip(rows, predictions):
        if ex.output in out:
            out[ex.output].append(not is_correct(task, p.output, ex.output))
    return out

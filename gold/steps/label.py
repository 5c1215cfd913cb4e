"""Label: the labeler reads every new training sample back as a few-shot classifier; its calibrated label
probabilities are stored as the student's soft targets.

Why: the label a small teacher was asked to write is often not the one it believes once it reads the text back
(about 30% of the embedded teacher's generated labels are wrong); distilling that belief is the knowledge-
distillation half of GOLD. Applies to classification with a soft-label weight above 0 and a labeler that reads
(every labeler but "none"); elsewhere the step records nothing and the student trains on the given labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gold import labelers
from gold.context import RunContext
from gold.specs import GoldSettings, TaskSpec
from gold.steering import evaluation_rows
from gold.steps import RoundState, StepResult
from gold.store import training_roles
from gold.teachers import fewshot
from gold.teachers.base import NoLogprobs
from gold.teachers.cache import scoring_teacher

LABEL_CHUNK = 64  # samples per read: progress, and a cancel is honoured between chunks


@dataclass
class LabelResult(StepResult):
    labeler: str | None = None
    labeler_choice: dict[str, Any] | None = None
    soft_labeled: int | None = None
    teacher_agrees: float | None = None
    label_method: str | None = None
    label_floored: int | None = None
    label_rows_floored: int | None = None
    label_failed: int | None = None


def wants_soft_labels(task: TaskSpec, settings: GoldSettings) -> bool:
    """Whether a run reads soft labels: classification, a soft-label weight above 0, a labeler that reads."""
    return (task.kind == "classification" and settings.student.soft_label_weight > 0
            and labelers.planned_name(settings) != labelers.NONE)


def run(ctx: RunContext, state: RoundState) -> LabelResult:
    """Pick the round's labeler, then read back every sample that has no soft label yet. A remote labeler whose
    server gives no log-probabilities (and no votes were asked for) leaves the round on the given labels."""
    if not wants_soft_labels(state.task, state.settings):
        return LabelResult()
    labeler, record = round_labeler(ctx, state.task, state.settings, state.n)
    if labeler is None:
        return LabelResult(**record, soft_labeled=0)
    try:
        return LabelResult(**record, **label_samples(ctx, state.task, state.settings, labeler, state.n))
    except NoLogprobs as e:
        ctx.progress(None, f"Round {state.n}: {e} The student trains on the labels the teacher was asked to write.",
                     level="warning")
        return LabelResult(**record, soft_labeled=0, label_method="given")


def round_labeler(ctx: RunContext, task: TaskSpec, settings: GoldSettings, n: int) -> tuple[Any, dict[str, Any]]:
    """The labeler of round n and what to record about it: the planned one, or, with pick "choose", the one
    chosen on the evaluation rows in the first round that labels (stored in that round's metrics, so a resumed
    run and every later round use the same one)."""
    name = labelers.planned_name(settings)
    record: dict[str, Any] = {}
    if name is None:
        earlier = [r.metrics.labeler_choice for r in ctx.store.rounds(ctx.run_id) if r.n < n]
        choice = next((c for c in earlier if c), None)
        if choice is None:
            rows, source = evaluation_rows(task, settings)
            if source != "eval":
                ctx.progress(None, f"Round {n}: the task has no evaluation rows to choose a labeler on; the first "
                                   "candidate reads the labels.", level="warning")
                choice = {"chosen": str(labelers.refs(settings)[0]), "rows": 0, "table": []}
            else:
                ctx.progress(None, f"Round {n}: choosing the labeler on {len(rows)} evaluation rows…")
                made = labelers.choose(task, rows, settings, lambda: scoring_teacher(settings),
                                       progress=lambda msg: ctx.progress(None, f"Round {n}: {msg}"))
                choice = made.to_dict()
                ctx.progress(None, f"Round {n}: labels will be read by {made.chosen} ("
                                   + ", ".join(f"{s.labeler} {s.metric:.1%}" for s in made.table if s.metric is not None)
                                   + ")")
            record["labeler_choice"] = choice
        name = choice["chosen"]
    labeler = labelers.build(name, settings, lambda: scoring_teacher(settings))
    record["labeler"] = labeler.name if labeler else labelers.NONE
    return labeler, record


def label_samples(ctx: RunContext, task: TaskSpec, settings: GoldSettings, labeler, n: int) -> dict[str, Any]:
    """The labeler's calibrated label probabilities for every training sample that has none yet (this round's,
    or all of them when soft labels were switched on for a retrain)."""
    roles = training_roles(settings.train_on_probes)
    rows = [r for r in ctx.store.samples(ctx.run_id, kept_only=True) if r.role in roles and r.teacher_probs is None]
    batch = settings.student.soft_label_calibration == "batch"
    before = labeler.stats()
    reads: list[list[np.ndarray]] = []
    if rows:  # else the page would still show the generate step's last words while the labeler reads
        ctx.progress(0.0, f"Round {n}: {labeler.name} reads back {len(rows)} samples…")
    for start in range(0, len(rows), LABEL_CHUNK):
        ctx.check()
        chunk = rows[start : start + LABEL_CHUNK]
        read = labeler.read(task, [r.inputs for r in chunk], settings.seed)
        reads.append(read)
        if not batch:  # batch calibration needs the whole batch: stored once below
            probs = labeler.combine(read, None)
            ctx.store.set_teacher_probs({r.id: q.tolist() for r, q in zip(chunk, probs)})
        done = min(len(rows), start + LABEL_CHUNK)
        ctx.progress(done / len(rows), f"Round {n}: {labeler.name} reads back {done}/{len(rows)} samples")
    if not rows:
        return {"soft_labeled": 0, "teacher_agrees": None}
    members = [np.concatenate([r[i] for r in reads]) for i in range(len(labeler.scorers))]
    if batch:
        # Batch calibration: rescale each label so the batch carries the mix of labels the teacher was asked to
        # write. Contextual calibration alone leaves the 135M teacher calling ~half of TREC's generated questions
        # "location"; the asked mix is known exactly, so the batch's own bias can be divided out.
        probs = labeler.combine(members, fewshot.label_mix(task, [r.output for r in rows]))
        ctx.store.set_teacher_probs({r.id: q.tolist() for r, q in zip(rows, probs)})
    else:
        probs = labeler.combine(members, None)
    agree = sum(task.labels[int(q.argmax())] == r.output for r, q in zip(rows, probs))
    after = labeler.stats()
    out: dict[str, Any] = {"soft_labeled": len(rows), "teacher_agrees": round(agree / len(rows), 4)}
    if after:  # a remote labeler: how often a label had no probability from the server and got a floor
        delta = {k: after[k] - before.get(k, 0) for k in after}
        out.update(label_floored=delta.get("floored", 0), label_rows_floored=delta.get("rows_floored", 0),
                   label_failed=delta.get("failed", 0))
    return out

"""Round students on disk: making a round's student, loading the one a round saved, and pruning old ones.

A round saves its student to `layout.checkpoint_dir` (a plain Hugging Face folder with a `gold_student.json`
sidecar that tells a classifier from a seq2seq student); the next round warm-starts from it, Export ships it, and
the map can embed with it. `keep_checkpoints = "best_and_last"` deletes the others as a run goes.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from gold import layout
from gold.context import RunContext, RunError
from gold.records import Round
from gold.specs import GoldSettings, TaskSpec


def new_student(task: TaskSpec, settings: GoldSettings, checkpoint: Path | None = None) -> Any:
    """The round's student: loaded from a checkpoint when resuming or warm-starting, else fresh."""
    model = settings.student.model
    base = None if model.startswith("embedded:") else model
    if task.kind == "classification":
        from gold.students.classifier import ClassifierStudent

        return ClassifierStudent.load(checkpoint) if checkpoint is not None else ClassifierStudent(task.labels, base=base)
    from gold.students.seq2seq import Seq2SeqStudent

    return Seq2SeqStudent.load(checkpoint) if checkpoint is not None else Seq2SeqStudent(base=base)


def load_checkpoint(store, run_id: int, round_n: int) -> Any:
    """The student a finished round saved (classifier or seq2seq, told apart by its sidecar)."""
    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    ckpt = layout.checkpoint_dir(store.run_dir(run_id), round_n)
    if not ckpt.exists():
        found = store.round(run_id, round_n)
        if found is not None and found.metrics.checkpoint_deleted:
            raise RunError(f"Round {round_n}'s student of run {run_id} was deleted to save space (the run keeps "
                           "only its best and last rounds' checkpoints); pick one of those rounds.")
        raise RunError(f"Round {round_n} of run {run_id} has no saved student.")
    return new_student(task, GoldSettings.from_dict(run.settings), ckpt)


def best_round(rounds: list[Round]) -> Round:
    """Among `rounds` (finished ones), the best by evaluation metric (the later one on a tie), else the last: the
    round Export picks by default."""
    scored = [r for r in rounds if r.metrics.metric is not None and math.isfinite(r.metrics.metric)]
    if scored:
        return max(scored, key=lambda r: (r.metrics.metric, r.n))
    return rounds[-1]


def prune(ctx: RunContext, settings: GoldSettings) -> list[int]:
    """With `keep_checkpoints` "best_and_last", delete the student folder (~90 MB) of every finished round that is
    neither the last finished one (the next round and a retrain warm-start from it) nor the best by the evaluation
    metric (`best_round`, the round Export picks by default). The round's train_ids.json and metrics stay, and the
    store records the deletion. Idempotent, so a resumed run finishes an interrupted pruning. Returns the rounds
    whose checkpoint went."""
    if settings.keep_checkpoints != "best_and_last":
        return []
    store, run_id = ctx.store, ctx.run_id
    done = [r for r in store.rounds(run_id) if r.status == "done"]
    if not done:
        return []
    keep = {done[-1].n, best_round(done).n}
    pruned = []
    for r in done:
        if r.n in keep:
            continue
        folder = layout.checkpoint_dir(store.run_dir(run_id), r.n)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # saving space must never fail the run
            if folder.exists():
                ctx.progress(None, f"Round {r.n}'s checkpoint {folder} could not be deleted; it stays.",
                             level="warning")
                continue
            pruned.append(r.n)
        if not r.metrics.checkpoint_deleted:
            store.mark_checkpoint_deleted(run_id, r.n)
    if pruned:
        ctx.progress(None, "Deleted the checkpoints of round " + ", ".join(map(str, pruned)) + " to save space "
                           "(the run keeps its best and last rounds' students).")
    return pruned

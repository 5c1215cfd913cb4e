"""Train: the student fine-tunes on the seeds and every trainable sample of the run, and is saved as the round's
checkpoint with the record of exactly which samples it saw (so an export can ship that training set).

Trainable = kept, a training role (probes too with `train_on_probes`), not vetoed by a person, not flagged as noise;
plus the noise strategy's relabeled samples. Mid-loop students warm-start from the previous round's (its energy
must mean something, so they train to convergence); the last round, and a retrain, train the final student. With
`student.average_rounds` (auto: on for rounds of 400 samples and more), the loop's last round then saves the weight
average of its student and every earlier round's kept student (`gold.students.averaging`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from gold import layout
from gold.checkpoints import new_student
from gold.context import RunContext
from gold.faults import failpoint
from gold.specs import GoldSettings, TaskSpec
from gold.steering import evaluation_rows
from gold.steps import RoundState, StepResult
from gold.store import training_roles
from gold.strategies import noise_strategy
from gold.students.averaging import average_students
from gold.students.base import TrainExample, TrainingArgs


@dataclass
class TrainingSet:
    """The rows a student trains on, the sample ids among them (seeds have none), and the relabeled samples."""

    rows: list[TrainExample]
    sample_ids: list[int]
    relabeled: dict[int, str]


@dataclass
class TrainResult(StepResult):
    train_size: int | None = None
    train_seconds: float | None = None
    train_fit_seconds: float | None = None
    train_eval_seconds: float | None = None
    train_steps: int | None = None
    train_loss: float | None = None
    train_precision: str | None = None
    best_step: int | None = None
    selected_on_eval: bool | None = None
    averaged_rounds: list[int] | None = None
    checkpoint: str | None = None

    def metrics(self) -> dict:
        out = super().metrics()
        out.pop("checkpoint", None)  # stored on the round, not among its metrics
        return out

    def saved_checkpoint(self) -> str | None:
        return self.checkpoint


def run(ctx: RunContext, state: RoundState) -> TrainResult:
    store, run_id, n, task, settings = ctx.store, ctx.run_id, state.n, state.task, state.settings
    data = training_set(store, run_id, task, settings)
    prev = layout.checkpoint_dir(state.run_dir, n - 1)
    args = training_args(settings, settings.student.warm_start and n > 1 and prev.exists(), n)
    state.student = new_student(task, settings, prev if args.warm_start else None)
    rows, source = evaluation_rows(task, settings)  # early stopping judges on the rows the run measures on
    judge = [TrainExample(task.format_input(ex.inputs), ex.output) for ex in rows] if source == "eval" else []
    ctx.progress(None, f"Round {n}: training the student on {len(data.rows)} examples…")
    t0 = time.perf_counter()

    within = ctx.progress_within()

    def on_step(frac: float, msg: str) -> None:
        failpoint("train")  # weights half-updated, no checkpoint saved
        if int(frac * 100) % 20 == 0:
            ctx.check()
        within(frac, f"Round {n}: training the student on {len(data.rows)} examples ({msg})")

    report = state.student.fit(data.rows, args, progress=on_step, eval_examples=judge)
    averaged = rounds_to_average(state, settings, args.warm_start)
    if averaged:
        ctx.progress(None, f"Round {n}: averaging the students of rounds {', '.join(map(str, averaged))}…")
        earlier = [new_student(task, settings, layout.checkpoint_dir(state.run_dir, k)) for k in averaged[:-1]]
        state.student = average_students([*earlier, state.student])
    state.student.save(state.checkpoint)
    layout.train_ids_path(state.run_dir, n).write_text(json.dumps(
        {"seeds": len(task.seeds), "sample_ids": data.sample_ids,
         "relabeled": {str(k): v for k, v in data.relabeled.items()}}))
    chose = report.best_step is not None  # early stopping chose an epoch on the evaluation rows
    return TrainResult(train_size=len(data.rows), train_seconds=round(time.perf_counter() - t0, 1),
                       train_fit_seconds=round(report.seconds, 1), train_eval_seconds=round(report.eval_seconds, 1),
                       train_steps=report.steps, train_loss=round(report.final_loss, 4),
                       train_precision=report.precision,
                       best_step=report.best_step, selected_on_eval=True if chose else None,
                       averaged_rounds=averaged or None, checkpoint=str(state.checkpoint))


def rounds_to_average(state: RoundState, settings: GoldSettings, warm: bool) -> list[int]:
    """The rounds whose students the saved student averages, this one last: when the run averages its rounds
    (`GoldSettings.averages_rounds`), in the loop's last round (not a retrain, which trains on the vetoes applied
    and stands alone), when this student continued from the previous round's (students trained apart from fresh
    heads do not share a path to average along), every earlier round whose checkpoint is kept. [] = save the
    student as trained."""
    n = state.n
    if not (settings.averages_rounds() and warm and n == settings.rounds and n > 1):
        return []
    kept = [k for k in range(1, n) if (layout.checkpoint_dir(state.run_dir, k) / "config.json").is_file()]
    return [*kept, n] if kept else []


def training_args(settings: GoldSettings, warm: bool, round_n: int) -> TrainingArgs:
    """Round n's recipe; the last round (and a retrain, numbered after it) trains the final student."""
    return settings.student.training_args(seed=settings.seed * 1000 + round_n, warm_start=warm,
                                          final=round_n >= settings.rounds)


def training_set(store, run_id: int, task: TaskSpec, settings: GoldSettings) -> TrainingSet:
    """Seeds + every trainable generated sample + what the noise strategy trains under another label."""
    rows = [TrainExample(task.format_input(ex.inputs), ex.output) for ex in task.seeds]
    ids: list[int] = []
    for s in store.samples(run_id, trainable_only=True, with_probes=settings.train_on_probes):
        rows.append(TrainExample(task.format_input(s.inputs), s.output, soft=s.teacher_probs))
        ids.append(s.id)
    roles = training_roles(settings.train_on_probes)
    flagged = [s for s in store.samples(run_id, kept_only=True) if s.role in roles and s.flag == "noise"]
    relabeled = {}
    for s, label in noise_strategy(settings.noise).relabeled(flagged, task):
        rows.append(TrainExample(task.format_input(s.inputs), label))
        ids.append(s.id)
        relabeled[s.id] = label
    return TrainingSet(rows=rows, sample_ids=ids, relabeled=relabeled)

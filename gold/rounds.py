"""The GOLD loop: one round, and a run of rounds, checkpointed after every step so a run resumes.

A round (DESIGN.md, "The method"):
  generate  the teacher writes `samples_per_round` labeled samples (per label, balanced), from the seeds and —
            in GOLD mode, from round 2 on — the previous round's feedback examples in the prompts;
  label     with soft labels (on by default; classification, a local teacher): the teacher reads each new sample
            as a few-shot classifier; its label probabilities, calibrated over the round's samples (batch) or
            against empty inputs (contextual), are stored as the student's soft targets;
  train     the student fine-tunes on every kept sample of the run so far that is neither vetoed by a person
            nor flagged as noise, plus the seeds (warm-started from the previous round's student);
  probe     GOLD mode: the teacher writes `probe_size` samples pushed toward other styles and perspectives;
            probes are scored, and not trained on in the round that wrote them (the official code's bug mixed
            them into that round's training); with `train_on_probes` they join training from the next round
            (read back by the teacher with the next round's samples), and the last round, which no round
            follows, spends its probe budget on samples instead;
  score     every kept sample of the run is re-scored by the new student (energy, prediction, confidence),
            so the map always shows energy under the current student;
  select    GOLD mode: per label, samples between the lo and hi energy percentiles become feedback (only those
            whose label the student believes, when `feedback_needs_agreement`); those above hi are noise;
  measure   accuracy / exact match on the task's evaluation set (else the seeds), energy statistics, counts;
            with `steer_labels`, the student's energy per label on those rows sets the next round's label shares
            (labels whose real rows look out-of-distribution to the student get more samples).
Baseline mode spends the same teacher budget (samples + probes) on plain generation: no feedback, no filter.

Each finished step is recorded in the store (`rounds.step`); a resumed run redoes only the step that was
interrupted, after dropping its partial output, so nothing is stored twice.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gold import labelers, prompts
from gold.energy import select_band, steering_shares
from gold.evaluation import evaluate_student, metric_name, task_metric
from gold.faults import failpoint
from gold.specs import Example, GoldSettings, TaskSpec
from gold.store import training_roles
from gold.students.base import TrainExample, TrainingArgs
from gold.teachers.base import BudgetExceeded, GenerationSettings, NoLogprobs
from gold.worker import RunContext

TRAIN_IDS = "train_ids.json"
STEP_ORDER = ("generate", "label", "train", "probe", "score", "select", "measure", "done")
HIST_BINS = 20

_TEACHERS: dict[tuple, Any] = {}


class RunError(RuntimeError):
    """A run cannot go on for a reason the user can act on; the message is shown on the run as is."""  # loaded once per worker process, shared by its runs


# -- model loading (cached per process) ----------------------------------------------------------------------

def get_teacher(settings: GoldSettings):
    t = settings.teacher
    key = (t.backend, t.engine, t.model, t.base_url, t.price_in_per_m, t.price_out_per_m, t.budget_usd, t.max_concurrency,
           t.timeout_s, settings.labeler.votes)
    if key not in _TEACHERS:
        if t.backend == "openai":
            from gold.teachers.remote import OpenAITeacher

            _TEACHERS[key] = OpenAITeacher(
                model=t.model, base_url=t.base_url or None, max_concurrency=t.max_concurrency, timeout_s=t.timeout_s,
                price_prompt_per_1m=t.price_in_per_m or None, price_completion_per_1m=t.price_out_per_m or None,
                budget_usd=t.budget_usd or None, label_votes=settings.labeler.votes,
            )
        else:
            from gold.teachers import local_teacher

            _TEACHERS[key] = local_teacher(t.model, t.engine)
    return _TEACHERS[key]


def scoring_teacher(settings: GoldSettings):
    """The teacher that reads samples back (soft labels). llama.cpp generates faster but this binding gives no
    per-position log-likelihoods cheaply, so a llama.cpp run scores with the same GGUF under transformers."""
    t = settings.teacher
    if t.backend == "local" and t.engine == "llama.cpp":
        return get_teacher(replace(settings, teacher=replace(t, engine="transformers")))
    return get_teacher(settings)


def new_student(task: TaskSpec, settings: GoldSettings, checkpoint: Path | None = None):
    """The round's student: loaded from a checkpoint when resuming or warm-starting, else fresh."""
    if task.kind == "classification":
        from gold.students.classifier import ClassifierStudent

        if checkpoint is not None:
            return ClassifierStudent.load(checkpoint)
        model = settings.student.model
        return ClassifierStudent(task.labels, base=None if model.startswith("embedded:") else model)
    from gold.students.seq2seq import Seq2SeqStudent

    if checkpoint is not None:
        return Seq2SeqStudent.load(checkpoint)
    model = settings.student.model
    return Seq2SeqStudent(base=None if model.startswith("embedded:") else model)


def load_checkpoint(store, run_id: int, round_n: int):
    """The student a finished round saved (classifier or seq2seq, told apart by its sidecar)."""
    run = store.get_run(run_id)
    task = store.get_task(run["task_id"]).spec
    ckpt = store.run_dir(run_id) / f"round-{round_n}" / "student"
    if not ckpt.exists():
        if ((store.round(run_id, round_n) or {}).get("metrics") or {}).get("checkpoint_deleted"):
            raise RunError(f"Round {round_n}'s student of run {run_id} was deleted to save space (the run keeps "
                           "only its best and last rounds' checkpoints); pick one of those rounds.")
        raise RunError(f"Round {round_n} of run {run_id} has no saved student.")
    return new_student(task, GoldSettings.from_dict(run["settings"]), ckpt)


def training_args(settings: GoldSettings, warm: bool, round_n: int) -> TrainingArgs:
    """Round n's recipe; the last round (and a retrain, numbered after it) trains the final student."""
    return settings.student.training_args(seed=settings.seed * 1000 + round_n, warm_start=warm,
                                          final=round_n >= settings.rounds)


def generation_settings(settings: GoldSettings, round_n: int, salt: int) -> GenerationSettings:
    t = settings.teacher
    return GenerationSettings(
        max_new_tokens=t.max_new_tokens, temperature=t.temperature, top_p=t.top_p,
        repetition_penalty=t.repetition_penalty, seed=settings.seed * 100_003 + round_n * 101 + salt,
        batch_size=t.batch_size,
    )


# -- the run ------------------------------------------------------------------------------------------------

@dataclass
class RoundState:
    """What the steps of one round hand each other."""

    n: int
    student: Any = None
    checkpoint: Path | None = None


def execute_run(ctx: RunContext, after_round: Callable[[int], None] | None = None) -> str:
    """Run (or resume) every round of a run; returns the final status ('done' or 'stopped: budget').
    `after_round(n)` is called when round n is done and before the next starts: the place where a reviewer
    (bench/quality.py's simulated one) vetoes samples, which the next round's training then leaves out."""
    store, run_id = ctx.store, ctx.run_id
    run = store.get_run(run_id)
    settings = GoldSettings.from_dict(run["settings"])
    task = store.get_task(run["task_id"]).spec
    teacher = None  # loaded only when a round still has to generate
    ctx.check()  # cancelled before it began, or no disk space: stop before loading anything
    try:
        for n in range(1, settings.rounds + 1):
            existing = store.round(run_id, n)
            if existing and existing["status"] == "done":
                continue
            if teacher is None:
                ctx.progress(None, "Loading the teacher…")
                teacher = get_teacher(settings)
            run_round(ctx, task, settings, teacher, n, done_step=(existing or {}).get("step"))
            if after_round is not None:
                after_round(n)
        if store.get_run(run_id)["retrain_requested"]:
            retrain(ctx, task, settings)
    except BudgetExceeded as e:
        ctx.progress(None, f"Budget reached: {e}", level="warning")
        return "stopped: budget"
    return "done"


def retrain(ctx: RunContext, task: TaskSpec, settings: GoldSettings) -> None:
    """An extra round with no generation: train the student again on today's data (vetoes applied),
    then score, measure and map as usual. Feedback and noise flags are left as the last round set them."""
    store, run_id = ctx.store, ctx.run_id
    rounds = store.rounds(run_id)
    last = rounds[-1] if rounds else None
    if last and last["status"] != "done" and last["metrics"].get("retrain"):
        n, done_step = last["n"], last["step"]  # an interrupted retrain: resume it
    else:
        n, done_step = (last["n"] if last else 0) + 1, "generate"
        store.start_round(run_id, n)
        store.set_round_step(run_id, n, "generate", {"retrain": True, "gen_kept": 0})
    ctx.progress(None, f"Retraining the student as round {n} with the current vetoes…")
    # Baseline mode for this round: nothing generated or probed, and the flags are left as they are.
    run_round(ctx, task, replace(settings, mode="baseline"), teacher=None, n=n, done_step=done_step)
    store.clear_retrain(run_id)


def _after(done_step: str | None, step: str) -> bool:
    """True when `step` still has to run, given the last finished step of the round."""
    if done_step is None:
        return True
    return STEP_ORDER.index(step) > STEP_ORDER.index(done_step)


def probing(settings: GoldSettings, n: int) -> bool:
    """Whether round n writes probes. GOLD mode does, except, with `train_on_probes`, in its last round: no
    round follows to take feedback from them or train on them, so that share of the budget buys samples."""
    if settings.mode != "gold":
        return False
    return not (settings.train_on_probes and n >= settings.rounds)


def run_round(ctx: RunContext, task: TaskSpec, settings: GoldSettings, teacher, n: int, done_step: str | None) -> None:
    store, run_id = ctx.store, ctx.run_id
    store.start_round(run_id, n)
    state = RoundState(n=n)
    gold_mode = settings.mode == "gold"
    ckpt = store.run_dir(run_id) / f"round-{n}" / "student"
    metrics: dict[str, Any] = {}

    if _after(done_step, "generate"):
        ctx.check()
        store.delete_samples(run_id, n, "train")  # partial output of an interrupted generate step
        budget = settings.samples_per_round + (0 if probing(settings, n) else settings.probe_size)
        feedback = feedback_examples(store, run_id, n) if gold_mode else {}
        shares = steered_shares(store, run_id, n) if gold_mode and settings.steer_labels else None
        if shares:
            metrics["label_shares"] = shares
            ctx.progress(None, f"Round {n}: label shares steered by the student's energy: "
                               + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
        t0 = time.perf_counter()
        stats = generate_samples(ctx, task, settings, teacher, n, budget, role="train", feedback=feedback,
                                 label_shares=shares)
        if stats["kept"] == 0 and budget > 0:
            reasons = ", ".join(f"{k} {v}" for k, v in store.reject_reasons(run_id).items())
            raise RunError(f"Round {n}: none of the teacher's {stats['prompts']} replies was usable ({reasons}). "
                           "Check the teacher model and the task's instruction and seeds, then resume the run.")
        metrics.update(generate_seconds=round(time.perf_counter() - t0, 1), **{f"gen_{k}": v for k, v in stats.items()})
        store.set_round_step(run_id, n, "generate", metrics)

    if _after(done_step, "label"):
        ctx.check()
        if wants_soft_labels(task, settings):
            metrics.update(label_step(ctx, task, settings, n))
        store.set_round_step(run_id, n, "label", metrics)

    if _after(done_step, "train"):
        ctx.check()
        train, train_ids, relabeled = training_set(store, run_id, task, with_ids=True,
                                                   relabel_noise=settings.relabel_noise,
                                                   with_probes=settings.train_on_probes)
        prev = store.run_dir(run_id) / f"round-{n - 1}" / "student"
        args = training_args(settings, settings.student.warm_start and n > 1 and prev.exists(), n)
        state.student = new_student(task, settings, prev if args.warm_start else None)
        judge = [TrainExample(task.format_input(ex.inputs), ex.output) for ex in task.eval_set]
        ctx.progress(None, f"Round {n}: training the student on {len(train)} examples…")
        t0 = time.perf_counter()

        def on_step(frac: float, msg: str) -> None:
            failpoint("train")  # weights half-updated, no checkpoint saved
            if int(frac * 100) % 20 == 0:
                ctx.check()

        report = state.student.fit(train, args, progress=on_step, eval_examples=judge)
        state.student.save(ckpt)
        # Which samples this student saw, so an export can ship its exact training set later.
        (ckpt.parent / TRAIN_IDS).write_text(json.dumps({"seeds": len(task.seeds), "sample_ids": train_ids,
                                                         "relabeled": {str(k): v for k, v in relabeled.items()}}))
        metrics.update(train_size=len(train), train_seconds=round(time.perf_counter() - t0, 1),
                       train_steps=report.steps, train_loss=round(report.final_loss, 4))
        if report.best_step is not None:  # early stopping chose an epoch on the evaluation rows
            metrics.update(best_step=report.best_step, selected_on_eval=True)
        store.set_round_step(run_id, n, "train", metrics, checkpoint=str(ckpt))
    else:
        state.student = new_student(task, settings, ckpt)

    if _after(done_step, "probe"):
        ctx.check()
        store.delete_samples(run_id, n, "probe")
        if probing(settings, n) and settings.probe_size > 0:
            stats = generate_samples(ctx, task, settings, teacher, n, settings.probe_size, role="probe",
                                     feedback={}, probe=True)
            metrics.update({f"probe_{k}": v for k, v in stats.items()})
        store.set_round_step(run_id, n, "probe", metrics)

    if _after(done_step, "score"):
        ctx.check()
        ctx.progress(None, f"Round {n}: scoring every sample with the new student…")
        metrics.update(score_samples(store, run_id, task, settings, state.student))
        store.set_round_step(run_id, n, "score", metrics)

    if _after(done_step, "select"):
        ctx.check()
        metrics.update(select(store, run_id, n, task, settings) if gold_mode else {"feedback": 0, "noise": 0})
        store.set_round_step(run_id, n, "select", metrics)

    if _after(done_step, "measure"):
        ctx.check()
        metrics.update(measure(store, run_id, n, task, settings, state.student))
        store.finish_round(run_id, n, metrics)
        name = metrics.get("metric_name")
        ctx.progress(None, f"Round {n} done" + (f": {name} {metrics['metric']:.1%}" if name else "."))

    prune_checkpoints(ctx, settings)

    if settings.map_after_round and n not in store.mapped_rounds(run_id):
        ctx.check()
        draw_map(ctx, n, settings.seed)


def prune_checkpoints(ctx: RunContext, settings: GoldSettings) -> list[int]:
    """With `keep_checkpoints` "best_and_last", delete the student folder (round-N/student, ~90 MB) of every
    finished round that is neither the last finished one (the next round and a retrain warm-start from it) nor
    the best by the evaluation metric (export.best_round, the round Export picks by default). The round's
    train_ids.json and metrics stay, and the store records the deletion. Idempotent, so a resumed run finishes
    an interrupted pruning. Returns the rounds whose checkpoint went."""
    if settings.keep_checkpoints != "best_and_last":
        return []
    from gold.export import best_round

    store, run_id = ctx.store, ctx.run_id
    done = [r for r in store.rounds(run_id) if r["status"] == "done"]
    if not done:
        return []
    keep = {done[-1]["n"], best_round(done)["n"]}
    pruned = []
    for r in done:
        if r["n"] in keep:
            continue
        folder = store.run_dir(run_id) / f"round-{r['n']}" / "student"
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # saving space must never fail the run
            if folder.exists():
                ctx.progress(None, f"Round {r['n']}'s checkpoint {folder} could not be deleted; it stays.",
                             level="warning")
                continue
            pruned.append(r["n"])
        if not r["metrics"].get("checkpoint_deleted"):
            store.mark_checkpoint_deleted(run_id, r["n"])
    if pruned:
        ctx.progress(None, "Deleted the checkpoints of round " + ", ".join(map(str, pruned)) + " to save space "
                           "(the run keeps its best and last rounds' students).")
    return pruned


def draw_map(ctx: RunContext, n: int, seed: int) -> None:
    """The round's UMAP map, so the Explore page never waits; a failure here never fails the run."""
    from gold.maps import compute_map

    ctx.progress(None, f"Round {n}: drawing the map…")
    try:
        points = compute_map(ctx.store, ctx.run_id, n, seed=seed)
        ctx.progress(None, f"Round {n}: map of {points} points ready.")
    except Exception as e:  # noqa: BLE001 — the map is a view; the run's data is already safe
        ctx.progress(None, f"Round {n}: the map could not be drawn ({type(e).__name__}: {e}).", level="warning")


# -- generate ---------------------------------------------------------------------------------------------------

def generate_samples(ctx: RunContext, task: TaskSpec, settings: GoldSettings, teacher, n: int, count: int, role: str,
                     feedback: dict[str, list[Example]], probe: bool = False,
                     label_shares: dict[str, float] | None = None) -> dict[str, int]:
    """Ask the teacher for `count` samples, parse them strictly, and store every reply: kept ones as samples,
    rejected ones with their reason. Returns counts."""
    rng = random.Random(settings.seed * 7919 + n * 31 + (1 if probe else 0))
    requests = prompts.plan_requests(task, count, style=teacher.prompt_style, rng=rng, feedback=feedback,
                                     feedback_count=settings.feedback_count, feedback_rate=settings.feedback_rate,
                                     probe=probe, label_shares=label_shares)
    base = generation_settings(settings, n, 1 if probe else 0)
    seen = prompts.SeenTexts.from_examples(task.seeds)
    for row in ctx.store.samples(ctx.run_id, kept_only=True):
        seen.add(row["inputs"])
    kept = rejected = 0
    batch = max(1, base.batch_size)
    total = len(requests)
    for start in range(0, total, batch):
        ctx.check()
        chunk = requests[start : start + batch]
        # run_requests writes multi-line blocks (premise/hypothesis, question/answer) one line at a time.
        completions = prompts.run_requests(teacher, chunk, base.with_(seed=base.seed + start))
        rows = []
        for req, comp in zip(chunk, completions):
            for item in prompts.parse_request(task, req, comp.text, seen):
                rows.append({"inputs": item.inputs or {}, "output": item.output, "reject_reason": item.reject_reason,
                             "raw": comp.text[:2000]})
                if item.reject_reason:
                    rejected += 1
                else:
                    kept += 1
        ctx.store.add_samples(ctx.run_id, n, role, rows)
        failpoint("generate")  # part of the step's samples stored, the step not yet finished
        usage = {"prompt_tokens": sum(c.prompt_tokens for c in completions),
                 "completion_tokens": sum(c.completion_tokens for c in completions)}
        ctx.store.add_usage(ctx.run_id, **usage, cost_usd=teacher.usage.cost_of(**usage))
        done = min(total, start + batch)
        ctx.progress(done / total, f"Round {n}: {'probing' if probe else 'generating'} {done}/{total} prompts "
                                   f"({kept} kept, {rejected} rejected)")
    return {"kept": kept, "rejected": rejected, "prompts": total}


def steered_shares(store, run_id: int, n: int) -> dict[str, float] | None:
    """The label shares the previous round's measure step derived from its student's energy (None in round 1)."""
    prev = store.round(run_id, n - 1) if n > 1 else None
    return (prev or {}).get("metrics", {}).get("next_label_shares") or None


def label_energies(task: TaskSpec, rows: list[Example], energies) -> dict[str, list[float]]:
    """The student's energies on labeled rows, grouped by their true label (every label present, maybe empty)."""
    out: dict[str, list[float]] = {label: [] for label in task.labels}
    for ex, e in zip(rows, energies):
        if ex.output in out:
            out[ex.output].append(float(e))
    return out


def feedback_examples(store, run_id: int, n: int) -> dict[str, list[Example]]:
    """The previous rounds' samples flagged 'feedback' and not vetoed, grouped by label (output)."""
    out: dict[str, list[Example]] = {}
    for row in store.samples(run_id, kept_only=True):
        if row["flag"] == "feedback" and not row["vetoed"] and row["round"] < n:
            out.setdefault(row["output"] if row["output"] is not None else "", []).append(
                Example(inputs=row["inputs"], output=row["output"] or ""))
    return out


# -- label ----------------------------------------------------------------------------------------------------

LABEL_CHUNK = 64


def wants_soft_labels(task: TaskSpec, settings: GoldSettings) -> bool:
    """Soft labels apply to classification with a soft-label weight above 0 and a labeler that reads labels
    (every labeler but "none"); elsewhere the student trains on the given labels, as the settings' help says."""
    return (task.kind == "classification" and settings.student.soft_label_weight > 0
            and labelers.planned_name(settings) != labelers.NONE)


def round_labeler(ctx: RunContext, task: TaskSpec, settings: GoldSettings, n: int) -> tuple[Any, dict[str, Any]]:
    """The labeler of round n and what to record about it: the planned one, or, with pick "choose", the one
    chosen on the evaluation rows in the first round that labels (stored in that round's metrics, so a resumed
    run and every later round use the same one)."""
    name = labelers.planned_name(settings)
    record: dict[str, Any] = {}
    if name is None:
        earlier = [r["metrics"].get("labeler_choice") for r in ctx.store.rounds(ctx.run_id) if r["n"] < n]
        choice = next((c for c in earlier if c), None)
        if choice is None:
            rows, source = evaluation_rows(task)
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


def label_step(ctx: RunContext, task: TaskSpec, settings: GoldSettings, n: int) -> dict[str, Any]:
    """Pick the round's labeler, then read back every sample that has no soft label yet. A remote labeler whose
    server gives no log-probabilities (and no votes were asked for) leaves the round on the given labels."""
    labeler, record = round_labeler(ctx, task, settings, n)
    if labeler is None:
        return {**record, "soft_labeled": 0}
    try:
        return {**record, **label_samples(ctx, task, settings, labeler, n)}
    except NoLogprobs as e:
        ctx.progress(None, f"Round {n}: {e} The student trains on the labels the teacher was asked to write.",
                     level="warning")
        return {**record, "soft_labeled": 0, "label_method": "given"}


def label_samples(ctx: RunContext, task: TaskSpec, settings: GoldSettings, labeler, n: int) -> dict[str, Any]:
    """The labeler's calibrated label probabilities for every training sample that has none yet (this round's,
    or all of them when soft labels were switched on for a retrain). Why: the label a small teacher was asked
    to write is often not the one it believes once it reads the text back (about 30% of the embedded teacher's
    generated labels are wrong); distilling that belief is the knowledge-distillation half of GOLD."""
    roles = training_roles(settings.train_on_probes)
    rows = [r for r in ctx.store.samples(ctx.run_id, kept_only=True)
            if r["role"] in roles and r["teacher_probs"] is None]
    batch = settings.student.soft_label_calibration == "batch"
    before = labeler.stats()
    reads: list[list[np.ndarray]] = []
    for start in range(0, len(rows), LABEL_CHUNK):  # chunks: progress, and a cancel is honoured between them
        ctx.check()
        chunk = rows[start : start + LABEL_CHUNK]
        read = labeler.read(task, [r["inputs"] for r in chunk], settings.seed)
        reads.append(read)
        if not batch:  # batch calibration needs the whole batch: stored once below
            probs = labeler.combine(read, None)
            ctx.store.set_teacher_probs({r["id"]: q.tolist() for r, q in zip(chunk, probs)})
        done = min(len(rows), start + LABEL_CHUNK)
        ctx.progress(done / len(rows), f"Round {n}: {labeler.name} reads back {done}/{len(rows)} samples")
    if not rows:
        return {"soft_labeled": 0, "teacher_agrees": None}
    members = [np.concatenate([r[i] for r in reads]) for i in range(len(labeler.scorers))]
    if batch:
        from gold.teachers import fewshot

        probs = labeler.combine(members, fewshot.label_mix(task, [r["output"] for r in rows]))
        ctx.store.set_teacher_probs({r["id"]: q.tolist() for r, q in zip(rows, probs)})
    else:
        probs = labeler.combine(members, None)
    agree = sum(task.labels[int(q.argmax())] == r["output"] for r, q in zip(rows, probs))
    after = labeler.stats()
    out: dict[str, Any] = {"soft_labeled": len(rows), "teacher_agrees": round(agree / len(rows), 4)}
    if after:  # a remote labeler: how often a label had no probability from the server and got a floor
        delta = {k: after[k] - before.get(k, 0) for k in after}
        out.update(label_floored=delta.get("floored", 0), label_rows_floored=delta.get("rows_floored", 0),
                   label_failed=delta.get("failed", 0))
    return out


def soft_labels_for_batch(task: TaskSpec, probs: np.ndarray, asked: list[str]) -> np.ndarray:
    """Batch calibration of the teacher's read-back: its label probabilities for a batch of generated samples,
    rescaled so that the batch carries the mix of labels the teacher was asked to write (`fewshot.match_prior`).
    Contextual calibration alone leaves the 135M teacher calling ~half of TREC's generated questions
    "location"; the asked mix is known exactly, so the batch's own bias can be divided out."""
    from gold.teachers import fewshot

    return fewshot.match_prior(probs, fewshot.label_mix(task, asked))


# -- train ----------------------------------------------------------------------------------------------------

def training_set(store, run_id: int, task: TaskSpec, with_ids: bool = False, relabel_noise: bool = False,
                 with_probes: bool = False):
    """Seeds + every trainable generated sample (kept, role train — or probe too, with_probes — not vetoed, not
    noise).
    relabel_noise (classification): noise-flagged samples come back under the label the last student predicted
    for them. Why: the prototype measured that dropping flagged rows costs 3–8 points (volume beats
    cleanliness), while a high-energy sample's given label is wrong far more often than the average one; the
    student that flagged it never trained on it after the flag, so its prediction is a second opinion.
    with_ids=True also returns the sample ids used (seeds have none) and {id: new label} of the relabeled."""
    rows = [TrainExample(task.format_input(ex.inputs), ex.output) for ex in task.seeds]
    ids, relabeled = [], {}
    for row in store.samples(run_id, trainable_only=True, with_probes=with_probes):
        rows.append(TrainExample(task.format_input(row["inputs"]), row["output"], soft=row["teacher_probs"]))
        ids.append(row["id"])
    if relabel_noise:
        for row in relabel_candidates(store, run_id, task, with_probes=with_probes):
            rows.append(TrainExample(task.format_input(row["inputs"]), row["prediction"]))
            ids.append(row["id"])
            relabeled[row["id"]] = row["prediction"]
    return (rows, ids, relabeled) if with_ids else rows


def relabel_candidates(store, run_id: int, task: TaskSpec, with_probes: bool = False) -> list[dict[str, Any]]:
    """The samples `relabel_noise` trains under the student's label: kept training samples (probes too, in a run
    that trains on them) flagged as noise, not vetoed by a person, whose last prediction is one of the task's
    labels (classification only)."""
    if task.kind != "classification":
        return []
    roles = training_roles(with_probes)
    return [r for r in store.samples(run_id, kept_only=True)
            if r["role"] in roles and r["flag"] == "noise" and not r["vetoed"] and r["prediction"] in task.labels]


# -- score, select, measure --------------------------------------------------------------------------------------

def score_samples(store, run_id: int, task: TaskSpec, settings: GoldSettings, student) -> dict[str, Any]:
    rows = store.samples(run_id, kept_only=True)
    if not rows:
        return {"scored": 0}
    texts = [task.format_input(r["inputs"]) for r in rows]
    outputs = [r["output"] for r in rows]
    if task.kind == "classification":  # energy and predictions from one forward pass over every sample
        scored = student.score(texts, temperature=settings.energy_temperature)
        energies, preds = np.asarray(scored.energy, dtype=float), student.predictions(scored.probs)
    else:  # teacher-forced energy on the given outputs, then the student's own answers
        energies = np.asarray(student.energy(texts, outputs, temperature=settings.energy_temperature), dtype=float)
        preds = student.predict(texts)
    scores = []
    for r, e, p in zip(rows, energies, preds):
        label_prob = p.probs.get(r["output"]) if p.probs else None
        scores.append({"id": r["id"], "energy": float(e) if math.isfinite(e) else None, "prediction": p.output,
                       "confidence": float(p.confidence), "label_prob": label_prob})
    store.set_scores(scores)
    failpoint("score")  # scores written, the step not yet recorded: it is redone on resume
    finite = energies[np.isfinite(energies)]
    return {"scored": len(rows), "energy_mean": round(float(finite.mean()), 4) if len(finite) else None,
            "energy_std": round(float(finite.std()), 4) if len(finite) else None}


def select(store, run_id: int, n: int, task: TaskSpec, settings: GoldSettings) -> dict[str, Any]:
    """Flag this round's feedback band and the run's noise (above hi), per label."""
    rows = [r for r in store.samples(run_id, kept_only=True) if r["energy"] is not None]
    flags: dict[int, str] = {}
    # Noise: among every training sample of the run (probes too, when they train), per label, above hi.
    if settings.noise_filter:
        roles = training_roles(settings.train_on_probes)
        train = [r for r in rows if r["role"] in roles]
        band = select_band([r["energy"] for r in train], settings.band_lo, settings.band_hi,
                           groups=[r["output"] for r in train] if task.kind == "classification" else None)
        for i in band.noise:
            flags[train[i]["id"]] = "noise"
    # Feedback: among this round's samples (train + probe), per label, inside the band.
    current = [r for r in rows if r["round"] == n and not r["vetoed"] and flags.get(r["id"]) != "noise"]
    band = select_band([r["energy"] for r in current], settings.band_lo, settings.band_hi,
                       groups=[r["output"] for r in current] if task.kind == "classification" else None)
    for i in band.feedback:
        r = current[i]
        if settings.feedback_needs_agreement and task.kind == "classification" and r["prediction"] != r["output"]:
            continue
        flags[r["id"]] = "feedback"
    store.set_flags(run_id, flags)
    values = list(flags.values())
    return {"feedback": values.count("feedback"), "noise": values.count("noise"),
            "band_lo_energy": _r(band.lo_value), "band_hi_energy": _r(band.hi_value)}


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def evaluation_rows(task: TaskSpec) -> tuple[list[Example], str]:
    return (task.eval_set, "eval") if task.eval_set else (task.seeds, "seeds")


def measure(store, run_id: int, n: int, task: TaskSpec, settings: GoldSettings, student) -> dict[str, Any]:
    rows, source = evaluation_rows(task)
    steering = task.kind == "classification" and settings.mode == "gold" and settings.steer_labels
    steer = {}
    if steering and rows:  # one forward pass gives both the metric and the per-label energies
        scored = student.score([task.format_input(ex.inputs) for ex in rows], temperature=settings.energy_temperature)
        value = task_metric(task, [p.output for p in student.predictions(scored.probs)], rows)
        by_label = label_energies(task, rows, scored.energy)
        steer = {"label_energy": {k: _r(float(np.mean(v))) if v else None for k, v in by_label.items()},
                 "next_label_shares": {k: round(v, 4) for k, v in steering_shares(by_label).items()}}
    else:
        value = evaluate_student(student, task, rows)
    round_rows = [r for r in store.samples(run_id, round_n=n, kept_only=True) if r["energy"] is not None]
    energies = np.asarray([r["energy"] for r in round_rows], dtype=float)
    hist = None
    if len(energies):
        counts, edges = np.histogram(energies, bins=HIST_BINS)
        hist = {"counts": counts.tolist(), "edges": [round(float(e), 4) for e in edges]}
    counts_all = store.sample_counts(run_id)
    return {**steer, "metric_name": metric_name(task), "metric": value, "metric_on": source,
            "metric_rows": len(rows), "energy_hist": hist, "generated": counts_all["generated"],
            "kept": counts_all["kept"], "rejected": counts_all["rejected"], "vetoed": counts_all["vetoed"]}

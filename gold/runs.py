"""Runs as a user sees them: starting one (validated settings, optional paired baseline), and an overview
of its progress for the Runs page and the CLI. The loop itself is gold/loop.py; the process is gold/worker.py.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pandas as pd

from gold import labelers
from gold.estimate import RunEstimate, estimate_run
from gold.models import resolve
from gold.records import Round, Run, RunSummary
from gold.specs import GoldSettings, SpecError, TeacherSpec, name_problems
from gold.steps import STEPS
from gold.store import ACTIVE_STATUSES, Store
from gold.teachers import resolved_engine
from gold.teachers.gguf_weights import resolved_weights

# Rough share of a round's time per step, so the bar moves at about the pace of the work: a 64-sample round with the
# embedded teacher on 2 CPU cores took 177 s, of which 84 s generating and 62 s training (bench/results/speed.json).
STEP_WEIGHTS = {"generate": 0.45, "label": 0.1, "train": 0.3, "probe": 0.1, "score": 0.02, "select": 0.01,
                "measure": 0.02}


def start_run(store: Store, task_id: int, settings: GoldSettings, name: str = "", with_baseline: bool = False,
              held: bool = False, key_given: bool = False) -> list[int]:
    """Validate and queue a run (and, optionally, a baseline twin with the same budget). Returns the ids.
    held=True: the runs wait for a worker of their own (`worker.spawn_keyed_worker`), not the shared one.
    key_given: the caller holds an API key for that worker (typed in the page), so none is needed here."""
    problems = settings.problems()
    if name.strip():  # an empty run name is fine (it gets a date); else the same rules as task names
        problems += [p.replace("give the task a name", "give the run a name") for p in name_problems(name)]
    task = store.get_task(task_id).spec
    has_key = key_given or bool(os.environ.get("OPENAI_API_KEY"))
    if settings.teacher.backend == "openai" and not has_key and not settings.teacher.base_url:
        problems.append("The OpenAI teacher needs an API key: type it in, or set OPENAI_API_KEY.")
    if task.kind == "seq2seq":
        # The encoder classifier cannot write outputs: a seq2seq task gets the causal-LM student, trained with
        # plain CE (SCE is a classification loss; the seq2seq student would ignore it anyway).
        student = settings.student
        if student.model.startswith("embedded:all-minilm"):
            student = replace(student, model="embedded:smollm2-135m-instruct")
        settings = replace(settings, student=replace(student, loss="ce"))
    if settings.teacher.backend == "local":
        problems += _model_problem(settings.teacher.model, "teacher")
        if resolved_engine(settings.teacher.engine, settings.teacher.model) == "llama.cpp":
            problems += _llamacpp_problem(settings.teacher.model)
        if not problems:
            settings = replace(settings, teacher=queued_teacher(settings.teacher))
    if not settings.student.model.startswith("embedded:"):
        problems += _model_problem(settings.student.model, "student")
    if problems:
        raise SpecError(problems)
    ids = [store.create_run(task_id, settings.to_dict(), name=name, mode=settings.mode, held=held)]
    if with_baseline and settings.mode == "gold":
        twin = replace(settings, mode="baseline")
        ids.append(store.create_run(task_id, twin.to_dict(), name=(name or "run") + " (baseline)", mode="baseline",
                                    held=held))
    return ids


def queued_teacher(teacher: TeacherSpec) -> TeacherSpec:
    """A local teacher's settings as a queued run stores them: the engine it runs on, not "auto", and on llama.cpp
    the GGUF weights "auto" chose for its file, so a run's settings say what ran, on any machine."""
    teacher = replace(teacher, engine=resolved_engine(teacher.engine, teacher.model))
    if teacher.engine == "llama.cpp":
        teacher = replace(teacher, gguf_weights=resolved_weights(teacher.gguf_weights, resolve(teacher.model).weights))
    return teacher


def run_estimate(store: Store, task_id: int, settings: GoldSettings) -> RunEstimate:
    """What one run of the task with these settings asks of the teacher (`gold.estimate`): the Runs page's
    *Estimate* button and `gold run` show it before anything starts."""
    return estimate_run(store, store.get_task(task_id).spec, settings)


def _model_problem(model: str, role: str) -> list[str]:
    from gold.models import ModelNotFound, resolve

    try:
        resolve(model)
    except ModelNotFound as e:
        return [f"The {role} model: {e}"]
    return []


def _llamacpp_problem(model: str) -> list[str]:
    from gold.models import ModelNotFound, resolve
    from gold.teachers.llamacpp import INSTALL_HINT, available

    if not available():
        return [f"The llama.cpp engine is not installed: {INSTALL_HINT}. Or pick the transformers engine."]
    try:
        if not resolve(model).gguf_file:
            return ["The llama.cpp engine runs GGUF files only: give a .gguf file, or pick the transformers engine."]
    except ModelNotFound:
        pass  # already reported by _model_problem
    return []


def describe_status(run: Run) -> str:
    status = run.status
    if status == "running" and run.heartbeat:
        return f"running (heartbeat {time.time() - run.heartbeat:.0f} s ago)"
    if status == "running":
        return "running (waiting for a worker)"
    if status in ("held", "reserved"):
        return "waiting for its own worker (started with a typed API key)"
    return status


# The run's sample counts as the Runs page shows them, in order: `Store.sample_counts` key -> (label, what it
# counts). generated = kept + probes + rejected; noise and feedback are flags on kept samples and probes.
SAMPLE_COUNTS: dict[str, tuple[str, str]] = {
    "generated": ("generated", "Every reply of the teacher, stored whether it was usable or not."),
    "kept": ("kept", "Usable samples written as training data (the seeds are not counted)."),
    "probe": ("probes", "Usable samples written toward other styles and perspectives for the student to score; "
                        "they are not trained on unless Train on probes is set."),
    "rejected": ("rejected", "Replies that could not be used: unparseable, empty, too short or long, an unknown "
                             "label, a duplicate or a copy of a seed (the reasons are listed below)."),
    "noise": ("noise", "Samples the noise strategy flagged (above the energy band); with drop they stay out of "
                       "training."),
    "feedback": ("feedback", "Kept samples or probes chosen as in-context examples for the next round's prompts."),
    "vetoed": ("vetoed", "Samples you vetoed on the Explore page: out of training from the next round or retrain on."),
}


@dataclass
class RunOverview:
    run: Run
    progress: float
    progress_text: str
    counts: dict[str, int]
    rounds_table: pd.DataFrame | None
    metric_name: str | None
    reject_reasons: dict[str, int]
    events: list[dict[str, Any]]
    usage: dict[str, float]
    eta_s: float | None
    histograms: dict[int, dict[str, list[float]]]
    rounds_done: int = 0  # finished rounds, counted as `Store.list_runs` counts them
    selected_on_eval: list[int] = field(default_factory=list)  # rounds whose student early stopping chose
    averaged: dict[int, list[int]] = field(default_factory=dict)  # round -> the rounds its student averages
    labeler: str | None = None  # who read the soft labels (the last round that read any)
    labeler_choice: dict[str, Any] | None = None  # the "choose on my rows" table, when the run chose


def eta_seconds(rounds: list[Round], total_rounds: int, now: float | None = None) -> float | None:
    """Remaining time from the mean duration of finished rounds (None until one has finished)."""
    now = now or time.time()
    done = [r for r in rounds if r.status == "done" and r.started_at and r.finished_at]
    if not done:
        return None
    per_round = sum(r.finished_at - r.started_at for r in done) / len(done)
    current = next((r for r in rounds if r.status != "done"), None)
    elapsed = now - current.started_at if current and current.started_at else 0.0
    remaining = max(0, total_rounds - len(done))
    return max(0.0, remaining * per_round - elapsed)


def metric_curves(store: Store, run_id: int) -> pd.DataFrame:
    """Evaluation metric per round for this run and its siblings of the same task (GOLD and baseline runs
    with the same budget), so both show on one chart. Columns: run, mode, round, metric."""
    run = store.get_run(run_id)
    settings = GoldSettings.from_dict(run.settings)
    rows = []
    for other in store.list_runs(task_id=run.task_id):
        o = GoldSettings.from_dict(store.get_run(other.id).settings)
        same_budget = (o.rounds, o.samples_per_round, o.probe_size) == (settings.rounds, settings.samples_per_round,
                                                                         settings.probe_size)
        if other.id != run_id and not same_budget:
            continue
        for r in store.rounds(other.id):
            if r.metrics.metric is not None:
                rows.append({"run": f"#{other.id} {other.name}", "mode": other.mode, "round": r.n,
                             "metric": r.metrics.metric})
    return pd.DataFrame(rows, columns=["run", "mode", "round", "metric"])


def round_fraction(current: Round | None, events: list[dict[str, Any]]) -> float:
    """How far the round in progress is, from 0 to 1: the weights of its finished steps, plus the running step's
    weight times that step's own fraction, read from the newest event ("generating 48/64 prompts" carries 0.75).
    Why the newest event only: a later event without a fraction (a step announcing its start) means the step it
    came from is over. A fraction of 1 closes its step and says nothing of the next one; an event from before the
    round started belongs to an earlier round. `events` is newest first, as Store.events returns them."""
    if current is None:
        return 0.0
    position = STEPS.index(current.step) + 1 if current.step in STEPS else 0
    finished = sum(STEP_WEIGHTS[s] for s in STEPS[:position])
    if position >= len(STEPS):
        return finished
    last = next((e for e in events if e["level"] != "debug"), None)
    fraction = 0.0
    if last and last["progress"] is not None and last["ts"] >= (current.started_at or 0):
        fraction = float(last["progress"]) if 0 <= last["progress"] < 1 else 0.0
    return finished + STEP_WEIGHTS[STEPS[position]] * fraction


def run_overview(store: Store, run_id: int) -> RunOverview:
    run = store.get_run(run_id)
    settings = GoldSettings.from_dict(run.settings)
    rounds = store.rounds(run_id)
    done = sum(1 for r in rounds if r.status == "done")
    current = next((r for r in rounds if r.status != "done"), None)
    events = store.events(run_id, limit=200)
    progress = 1.0
    if run.status != "done":
        progress = min(1.0, (done + round_fraction(current, events)) / max(1, settings.rounds))
    last = next((e for e in events if e["level"] != "debug"), None)
    text = f"round {min(done + 1, settings.rounds)} of {settings.rounds}"
    if run.status == "done":
        text = f"done: {settings.rounds} rounds"
    elif last:
        text += f" · {last['message']}"
    rows = []
    metric_name = None
    for r in rounds:
        m = r.metrics
        metric_name = metric_name or m.metric_name
        rows.append({
            "round": r.n, "status": r.status, "step": r.step,
            "generated": m.generated, "kept": m.kept, "train size": m.train_size, "noise": m.noise,
            "feedback": m.feedback, **({m.metric_name: m.metric} if m.metric_name else {}),
            "energy mean": m.energy_mean, "energy std": m.energy_std,
            "generate s": m.generate_seconds, "label s": (m.step_seconds or {}).get("label"),
            "train s": m.train_seconds,
            "round s": round(sum(m.step_seconds.values()), 1) if m.step_seconds else None,
        })
    table = pd.DataFrame(rows) if rows else None
    if table is not None and metric_name and metric_name not in table:
        table[metric_name] = None
    eta = eta_seconds(rounds, settings.rounds) if run.status in ACTIVE_STATUSES else None
    if eta is not None:
        text += f" · about {eta / 60:.0f} min left" if eta >= 60 else f" · about {eta:.0f} s left"
    hists = {r.n: r.metrics.energy_hist for r in rounds if r.metrics.energy_hist}
    labeler, labeler_choice = labelers.recorded(rounds)
    return RunOverview(run=run, progress=progress, progress_text=text, counts=store.sample_counts(run_id),
                       rounds_table=table, metric_name=metric_name, reject_reasons=store.reject_reasons(run_id),
                       events=events, usage=run.usage, eta_s=eta, histograms=hists, rounds_done=done,
                       selected_on_eval=[r.n for r in rounds if r.metrics.selected_on_eval],
                       averaged={r.n: r.metrics.averaged_rounds for r in rounds if r.metrics.averaged_rounds},
                       labeler=labeler, labeler_choice=labeler_choice)


def default_run_id(runs: list[RunSummary]) -> int | None:
    """The run a page opens when nothing else says which: the newest one with a finished round (a cancelled or
    just-queued run has nothing to show yet), else the newest. `runs` is newest first, as Store.list_runs gives."""
    if not runs:
        return None
    return next((r.id for r in runs if r.rounds_done), runs[0].id)


def runs_table(runs: list[RunSummary]) -> pd.DataFrame:
    """The runs as the Runs page lists them: one row each, newest first, with their status and finished rounds."""
    return pd.DataFrame(
        [{"id": r.id, "name": r.name, "task": r.task_name, "mode": r.mode, "status": r.status,
          "rounds done": r.rounds_done, "created": datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M")}
         for r in runs],
        columns=["id", "name", "task", "mode", "status", "rounds done", "created"],
    )


def human_size(n_bytes: float) -> str:
    """A byte count as people read it (1.2 GB, 91 MB, 12 kB): for the data folder's size and a run's."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            value = n_bytes / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n_bytes)} bytes"


def soft_label_check(store: Store, task_id: int, settings: GoldSettings, api_key: str | None = None) -> list[str]:
    """One sentence per remote labeler of the run (a server that is to read labels back): whether it gives
    log-probabilities, so soft labels work, and what the run does instead when it does not. One small
    request each, made before the run is queued; the Runs page and `gold run` show the sentences."""
    from gold.steps.label import wants_soft_labels
    from gold.teachers import fewshot

    task = store.get_task(task_id).spec
    if not wants_soft_labels(task, settings):
        return []
    remote = []
    for ref in labelers.refs(settings):
        if ref.kind == "openai":
            remote.append(ref)
        elif ref.kind == labelers.TEACHER and settings.teacher.backend == "openai":
            remote.append(labelers.LabelerRef("openai", settings.teacher.model, settings.teacher.base_url))
    if not remote:
        return []
    from gold.teachers.remote import OpenAITeacher
    from gold.teachers.base import TeacherError

    prompt = fewshot.fewshot_prefix(task, settings.seed) + fewshot.row_prompt(task, task.seeds[0].inputs)
    sentences = []
    for ref in remote:
        try:
            teacher = OpenAITeacher(model=ref.model, base_url=ref.base_url or None, api_key=api_key or None,
                                    timeout_s=min(settings.teacher.timeout_s, 30.0), label_votes=settings.labeler.votes)
        except TeacherError as e:
            sentences.append(f"{ref}: {e}")
            continue
        try:
            support = teacher.soft_label_support(prompt, [f" {label}" for label in task.labels])
        finally:
            teacher.close()
        sentences.append(f"{ref.model} @ {ref.base_url or 'the OpenAI API'}: {support.sentence}")
    return sentences

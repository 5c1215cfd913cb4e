"""The GOLD loop: a run is its rounds, a round is its steps (gold/steps, in the order `steps.STEPS` gives).

Each finished step is recorded in the store with the round's metrics so far (`Round.step`); a resumed run skips
finished rounds and, in the round it stopped in, redoes only the step that was interrupted, after that step drops
its own partial output, so nothing is stored twice. After every round, `RunHooks.after_round` runs: the product's
draws the round's UMAP map, so the Explore page never waits; the bench passes its own (a simulated reviewer).
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import replace

from gold import checkpoints
from gold.context import RunContext
from gold.records import RoundMetrics
from gold.specs import GoldSettings, TaskSpec
from gold.steps import STEPS, RoundState
from gold.teachers.base import BudgetExceeded
from gold.teachers.cache import get_teacher

STEP_MODULES = {name: importlib.import_module(f"gold.steps.{name}") for name in STEPS}


class RunHooks:
    """What happens between rounds. Subclass it to add to a run without changing the loop (the bench's reviewer).
    draw_maps=False (`gold worker --no-maps`): no map between rounds; the Explore page draws one when asked.
    background=True (the worker's): round n's map is drawn in a thread of its own while round n+1 runs, so the
    next round does not wait for UMAP; one map is drawn at a time, and a run that finishes waits for its last."""

    _drawing: threading.Thread | None = None  # the map being drawn in the background (a class default, so a
    # subclass that sets up its own __init__ still has it)

    def __init__(self, draw_maps: bool = True, background: bool = False):
        self.draw_maps = draw_maps
        self.background = background

    def after_round(self, ctx: RunContext, n: int, settings: GoldSettings) -> None:
        """Draw round n's map (embedded with the cached encoder); a failure here never fails the run."""
        if not self.draw_maps or n in ctx.store.mapped_rounds(ctx.run_id):
            return
        ctx.check()
        if not self.background:
            draw_map(ctx.store, ctx.run_id, n, settings.seed)
            return
        self.wait()
        # its own connection to the store: a thread never shares the run's (gold.store: one per thread of work)
        self._drawing = threading.Thread(target=_draw_apart, args=(ctx.store.home, ctx.run_id, n, settings.seed),
                                         name=f"map-{ctx.run_id}-{n}", daemon=True)
        self._drawing.start()

    def wait(self) -> None:
        """Wait for the map being drawn in the background, if any."""
        if self._drawing is not None:
            self._drawing.join()
            self._drawing = None


def draw_map(store, run_id: int, n: int, seed: int) -> None:
    """Round n's map, with its progress as run events; a failure is a warning, never a failed run."""
    from gold.maps import compute_map  # umap loads only when a map is drawn

    store.add_event(f"Round {n}: drawing the map…", run_id=run_id)
    try:
        points = compute_map(store, run_id, n, seed=seed)
        store.add_event(f"Round {n}: map of {points} points ready.", run_id=run_id)
    except Exception as e:  # noqa: BLE001 — the map is a view; the run's data is already safe
        store.add_event(f"Round {n}: the map could not be drawn ({type(e).__name__}: {e}).", run_id=run_id,
                        level="warning")


def _draw_apart(home, run_id: int, n: int, seed: int) -> None:
    """The background map: marked as this process's background work, so the teacher generating the next round
    leaves it a core (`gold.cpu`)."""
    from gold import cpu
    from gold.store import Store

    store = Store(home)
    try:
        with cpu.background():
            draw_map(store, run_id, n, seed)
    finally:
        store.close()


def execute_run(ctx: RunContext, hooks: RunHooks | None = None) -> str:
    """Run (or resume) every round of a run, then a retrain when one was asked for; returns the final status
    ('done' or 'stopped: budget')."""
    hooks = hooks or RunHooks()
    store, run_id = ctx.store, ctx.run_id
    run = store.get_run(run_id)
    settings = GoldSettings.from_dict(run.settings)
    task = store.get_task(run.task_id).spec
    ctx.check()  # cancelled before it began, or no disk space: stop before loading anything

    loaded: list = []  # the teacher, once a round needs it (a run resumed past its last generating step never does)

    def load_teacher():
        if not loaded:
            ctx.progress(None, "Loading the teacher…")
            loaded.append(get_teacher(settings))
        return loaded[0]

    try:
        for n in range(1, settings.rounds + 1):
            existing = store.round(run_id, n)
            if existing and existing.status == "done":
                continue
            run_round(ctx, task, settings, n, existing.step if existing else None, load_teacher, hooks)
        if store.get_run(run_id).retrain_requested:
            retrain(ctx, task, settings, hooks)
        status = "done"
    except BudgetExceeded as e:
        ctx.progress(None, f"Budget reached: {e}", level="warning")
        status = "stopped: budget"
    hooks.wait()  # the run finishes with its maps drawn
    return status


def run_round(ctx: RunContext, task: TaskSpec, settings: GoldSettings, n: int, done_step: str | None,
              load_teacher, hooks: RunHooks) -> None:
    """Round n from the step after `done_step` (None: from the start) to its end."""
    store, run_id = ctx.store, ctx.run_id
    store.start_round(run_id, n)
    stored = store.round(run_id, n)
    state = RoundState(task=task, settings=settings, n=n, run_dir=store.run_dir(run_id),
                       metrics=stored.metrics if stored else RoundMetrics(), load_teacher=load_teacher)
    start = STEPS.index(done_step) + 1 if done_step in STEPS else (len(STEPS) if done_step == "done" else 0)
    for name in STEPS[start:]:
        ctx.check()
        started = time.perf_counter()
        result = STEP_MODULES[name].run(ctx, state)
        metrics = result.metrics()
        # every step's wall time, kept with the round (a resumed step counts its last attempt): where a round's
        # time goes, on the Runs page and in bench/round_profile.py
        metrics["step_seconds"] = {**(state.metrics.step_seconds or {}), name: round(time.perf_counter() - started, 2)}
        state.metrics.update(metrics)
        if name == "measure":
            store.finish_round(run_id, n, state.metrics)
            m = state.metrics
            ctx.progress(None, f"Round {n} done" + (f": {m.metric_name} {m.metric:.1%}" if m.metric is not None else "."))
        else:
            store.set_round_step(run_id, n, name, metrics, checkpoint=result.saved_checkpoint())
    checkpoints.prune(ctx, settings)
    hooks.after_round(ctx, n, settings)


def retrain(ctx: RunContext, task: TaskSpec, settings: GoldSettings, hooks: RunHooks) -> None:
    """An extra round with no generation: train the student again on today's data (vetoes applied), then score,
    measure and map as usual. Feedback and noise flags are left as the last round set them."""
    store, run_id = ctx.store, ctx.run_id
    rounds = store.rounds(run_id)
    last = rounds[-1] if rounds else None
    if last and last.status != "done" and last.metrics.retrain:
        n, done_step = last.n, last.step  # an interrupted retrain: resume it
    else:
        n, done_step = (last.n if last else 0) + 1, "generate"
        store.start_round(run_id, n)
        store.set_round_step(run_id, n, "generate", {"retrain": True, "gen_kept": 0})
    ctx.progress(None, f"Retraining the student as round {n} with the current vetoes…")
    # Baseline mode for this round: nothing generated or probed, and the flags are left as they are.
    run_round(ctx, task, replace(settings, mode="baseline"), n, done_step, load_teacher=_no_teacher, hooks=hooks)
    store.clear_retrain(run_id)


def _no_teacher():
    raise RuntimeError("a retrain round generates nothing, so it never loads the teacher")

"""Select (GOLD mode): the noise strategy flags the run's noise among its training samples, then the feedback
strategy picks the round's feedback among the rest of its scored samples (train and probe), or among the task's
steering rows (`real_errors`). Both are named by a setting (`noise`, `feedback`; see gold/strategies). Baseline
mode flags nothing."""

from __future__ import annotations

from dataclasses import dataclass

from gold.context import RunContext
from gold.maps import embed_cached
from gold.steps import RoundState, StepResult, finite
from gold.store import training_roles
from gold.strategies import feedback_strategy, noise_strategy


@dataclass
class SelectResult(StepResult):
    feedback: int | None = None
    noise: int | None = None
    band_lo_energy: float | None = None
    band_hi_energy: float | None = None
    feedback_rows: list[int] | None = None
    steering_accuracy: float | None = None


def run(ctx: RunContext, state: RoundState) -> SelectResult:
    if not state.gold:
        return SelectResult(feedback=0, noise=0)
    store, run_id, task, settings = ctx.store, ctx.run_id, state.task, state.settings
    rows = [r for r in store.samples(run_id, kept_only=True) if r.energy is not None]
    roles = training_roles(settings.train_on_probes)
    noise_ids = noise_strategy(settings.noise).flag([r for r in rows if r.role in roles], task, settings,
                                                    student=state.trained_student)
    flags: dict[int, str] = {i: "noise" for i in noise_ids}
    pool = [r for r in rows if r.round == state.n and not r.vetoed and flags.get(r.id) != "noise"]
    pick = feedback_strategy(settings.feedback).pick(pool, task, settings, state.trained_student,
                                                     embed=lambda texts: embed_cached(store, texts))
    if pick.note:
        ctx.progress(None, f"Round {state.n}: {pick.note}", level="warning")
    flags.update({i: "feedback" for i in pick.ids})
    store.set_flags(run_id, flags)
    values = list(flags.values())
    return SelectResult(feedback=values.count("feedback") + len(pick.rows), noise=values.count("noise"),
                        band_lo_energy=finite(pick.lo_energy), band_hi_energy=finite(pick.hi_energy),
                        feedback_rows=pick.rows or None, steering_accuracy=finite(pick.steering_accuracy))

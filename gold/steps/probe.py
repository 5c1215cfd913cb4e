"""Probe (GOLD mode): the teacher writes `probe_size` samples asked toward other styles, perspectives and topics.

Probes widen the pool the student scores, so the feedback band can reach past what plain generation writes. They
are not trained on in the round that wrote them; with `train_on_probes` they join training from the next round.
"""

from __future__ import annotations

from dataclasses import dataclass

from gold.context import RunContext
from gold.steps import RoundState, StepResult, probing
from gold.steps.generate import write_samples


@dataclass
class ProbeResult(StepResult):
    probe_kept: int | None = None
    probe_rejected: int | None = None
    probe_prompts: int | None = None


def run(ctx: RunContext, state: RoundState) -> ProbeResult:
    ctx.store.delete_samples(ctx.run_id, state.n, "probe")  # partial output of an interrupted probe step
    if not (probing(state.settings, state.n) and state.settings.probe_size > 0):
        return ProbeResult()
    written = write_samples(ctx, state, state.settings.probe_size, role="probe", feedback={}, probe=True)
    return ProbeResult(probe_kept=written.kept, probe_rejected=written.rejected, probe_prompts=written.prompts)

"""Generate: the teacher writes the round's samples; every reply is stored, kept or rejected with its reason.

The budget of a round is `samples_per_round`, plus `probe_size` in a round that writes no probes (baseline mode
spends the whole teacher budget on plain generation). In GOLD mode from round 2 on, prompts carry the earlier
rounds' feedback examples; with `steer_labels` the labels' shares come from the previous round's measure step
(its student's energy or errors per label).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from gold import prompts
from gold.context import RunContext, RunError
from gold.faults import failpoint
from gold.specs import Example, TaskSpec
from gold.steps import RoundState, StepResult, probing
from gold.teachers.base import GenerationSettings


@dataclass
class Written:
    """What one call to the teacher's prompts gave."""

    kept: int
    rejected: int
    prompts: int


@dataclass
class GenerateResult(StepResult):
    gen_kept: int | None = None
    gen_rejected: int | None = None
    gen_prompts: int | None = None
    generate_seconds: float | None = None
    label_shares: dict[str, float] | None = None


def run(ctx: RunContext, state: RoundState) -> GenerateResult:
    store, run_id, n, settings = ctx.store, ctx.run_id, state.n, state.settings
    store.delete_samples(run_id, n, "train")  # partial output of an interrupted generate step
    budget = settings.samples_per_round + (0 if probing(settings, n) else settings.probe_size)
    feedback = feedback_examples(store, run_id, n, state.task) if state.gold else {}
    shares = steered_shares(store, run_id, n) if state.gold and settings.steer_labels else None
    if shares:
        signal = "errors on the steering rows" if settings.steer_labels_by == "errors" else "energy"
        ctx.progress(None, f"Round {n}: label shares steered by the student's {signal}: "
                           + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    t0 = time.perf_counter()
    written = write_samples(ctx, state, budget, role="train", feedback=feedback, label_shares=shares)
    if written.kept == 0 and budget > 0:
        reasons = ", ".join(f"{k} {v}" for k, v in store.reject_reasons(run_id).items())
        raise RunError(f"Round {n}: none of the teacher's {written.prompts} replies was usable ({reasons}). "
                       "Check the teacher model and the task's instruction and seeds, then resume the run.")
    return GenerateResult(gen_kept=written.kept, gen_rejected=written.rejected, gen_prompts=written.prompts,
                          generate_seconds=round(time.perf_counter() - t0, 1), label_shares=shares or None)


def generation_settings(state: RoundState, salt: int) -> GenerationSettings:
    """The teacher's sampling for this round: the run's teacher settings, and a seed of the run, round and role."""
    return state.settings.teacher.generation_settings(seed=state.settings.seed * 100_003 + state.n * 101 + salt)


def write_samples(ctx: RunContext, state: RoundState, count: int, role: str, feedback: dict[str, list[Example]],
                  probe: bool = False, label_shares: dict[str, float] | None = None) -> Written:
    """Ask the teacher for `count` samples, parse them strictly, and store every reply: kept ones as samples,
    rejected ones with their reason. Stored batch by batch (`teacher.batch_size` prompts), except for a teacher that
    decodes replies together (llama.cpp with several sequences), which gets all the prompts in one call so that
    its slots stay full to the end; a cancel is seen while the teacher writes either way. (A step killed midway is
    redone whole on resume, so the batches are for progress and memory, not for saving work.)"""
    task, settings, n, teacher = state.task, state.settings, state.n, state.teacher
    rng = random.Random(settings.seed * 7919 + n * 31 + (1 if probe else 0))
    options = prompts.PromptOptions(per_prompt=samples_per_prompt(settings, teacher),
                                    per_draw=settings.teacher.prompts_per_draw)
    requests = prompts.plan_requests(task, count, style=teacher.prompt_style, rng=rng, feedback=feedback,
                                     feedback_count=settings.feedback_count, feedback_rate=settings.feedback_rate,
                                     probe=probe, label_shares=label_shares, options=options)
    base = generation_settings(state, 1 if probe else 0)
    seen = prompts.SeenTexts.from_examples(task.seeds)
    for row in ctx.store.samples(ctx.run_id, kept_only=True):
        seen.add(row.inputs)
    kept = rejected = 0
    batch = max(1, len(requests)) if getattr(teacher, "decodes_together", False) else max(1, base.batch_size)
    total = len(requests)
    verb = "probing" if probe else "generating"
    within = ctx.progress_within()
    for start in range(0, total, batch):
        ctx.check()
        chunk = requests[start : start + batch]

        def on_prompts(frac: float, _msg: str, start: int = start, size: int = len(chunk)) -> None:
            if frac < 1.0:  # the batch's end is reported below, with its counts
                ctx.check()  # a cancel stops the teacher mid-batch (it leaves its slots clean)
                done = start + int(frac * size)
                if start:  # counted at each batch's end
                    counts = f" ({kept} kept, {rejected} rejected)"
                else:  # the page's sample counters move only when a batch is stored: say so while they cannot
                    counts = " (stored when the teacher's call ends)" if size == total else " (stored per batch)"
                within(done / total, f"Round {n}: {verb} {done}/{total} prompts{counts}")

        # run_requests writes multi-line blocks (premise/hypothesis, question/answer) one line at a time.
        completions = prompts.run_requests(teacher, chunk, base.with_(seed=base.seed + start), on_prompts)
        rows = []
        for req, comp in zip(chunk, completions):
            for item in prompts.parse_request(task, req, comp.text, seen):
                raw = item.raw if req.n_expected > 1 and req.style == "completion" else comp.text  # its own line
                rows.append({"inputs": item.inputs or {}, "output": item.output, "reject_reason": item.reject_reason,
                             "raw": raw[:2000]})
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
        ctx.progress(done / total, f"Round {n}: {verb} {done}/{total} prompts ({kept} kept, {rejected} rejected)")
    return Written(kept=kept, rejected=rejected, prompts=total)


def samples_per_prompt(settings, teacher) -> int:
    """Samples one completion prompt writes: the run's setting for a teacher that keeps its last sequence's
    key/value cache (llama.cpp), where each line after the first costs only its own tokens; else 1 (on
    transformers or a server every further line would read the whole prompt again, saving nothing)."""
    return settings.teacher.samples_per_prompt if getattr(teacher, "keeps_prefix", False) else 1


def feedback_examples(store, run_id: int, n: int, task: TaskSpec) -> dict[str, list[Example]]:
    """The previous rounds' samples flagged 'feedback' and not vetoed, and the steering rows the previous round
    fed back (with their true labels: that round's student's errors, not every earlier round's), grouped by label
    (output)."""
    out: dict[str, list[Example]] = {}
    for row in store.samples(run_id, kept_only=True):
        if row.flag == "feedback" and not row.vetoed and row.round < n:
            out.setdefault(row.output if row.output is not None else "", []).append(
                Example(inputs=row.inputs, output=row.output or ""))
    prev = store.round(run_id, n - 1) if n > 1 else None
    for i in (prev.metrics.feedback_rows if prev else None) or []:
        if 0 <= i < len(task.eval_set):
            ex = task.eval_set[i]
            out.setdefault(ex.output, []).append(ex)
    return out


def steered_shares(store, run_id: int, n: int) -> dict[str, float] | None:
    """The label shares the previous round's measure step derived from its student's energy (None in round 1)."""
    prev = store.round(run_id, n - 1) if n > 1 else None
    return (prev.metrics.next_label_shares if prev else None) or None

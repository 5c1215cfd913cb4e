"""What a run will cost before it starts: teacher calls, tokens, dollars and time.

Why: a user about to start 4 rounds against a paid API, or a CPU-bound local teacher, should see what they are
asking for. Calls and prompt tokens come from the real prompts the run would send (`prompts.plan_requests` on the
task's seeds; feedback examples add a little to later rounds' prompts, so those are a floor); completion tokens
are counted at `max_new_tokens`, so they and the cost are a ceiling. Time comes from this machine's own finished
rounds with the same teacher (seconds per prompt written, per example trained), and is left out when there are
none: a figure from another machine would mislead more than it helps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gold import labelers, prompts
from gold.labeler_refs import TEACHER
from gold.specs import GoldSettings, TaskSpec
from gold.steps import probing
from gold.steps.label import wants_soft_labels
from gold.store import Store
from gold.teachers import resolved_engine

CHARS_PER_TOKEN = 4.0  # English text, for the prompt-token estimate (real tokenizers differ by ±25%)
HISTORY_ROUNDS = 10  # the newest finished rounds a time estimate learns from


@dataclass
class RunEstimate:
    """The teacher work a run asks for, in all its rounds (a baseline twin doubles it)."""

    generation_calls: int  # requests to the generating teacher (samples and probes)
    samples: int  # samples asked for
    label_reads: int  # texts read back for soft labels (one request each to a remote labeler)
    remote_label_calls: int  # of those reads, requests to a server
    prompt_tokens: int  # at least (the seeds' prompts; feedback examples add to later rounds)
    completion_tokens: int  # at most (max_new_tokens per request)
    cost_usd: float | None  # at most; None without prices
    seconds: float | None  # about, from this machine's finished rounds; None without any
    seconds_from_rounds: int = 0

    def sentence(self) -> str:
        """One line for the Runs page and `gold run`."""
        calls = f"{self.generation_calls:,} teacher calls for {self.samples:,} samples"
        if self.label_reads:
            calls += f", {self.label_reads:,} label reads" + (
                f" ({self.remote_label_calls:,} of them requests to a server)" if self.remote_label_calls else "")
        tokens = f"≥ {self.prompt_tokens:,} prompt and ≤ {self.completion_tokens:,} completion tokens"
        parts = [calls, tokens]
        if self.cost_usd is not None:
            parts.append(f"at most ${self.cost_usd:,.2f}")
        if self.seconds is not None:
            parts.append(f"about {_duration(self.seconds)} on this machine (from its last {self.seconds_from_rounds} "
                         "finished rounds with this teacher)")
        else:
            parts.append("time: shown once the first round has finished")
        return "This run asks for " + "; ".join(parts) + "."


def estimate_run(store: Store, task: TaskSpec, settings: GoldSettings) -> RunEstimate:
    """The estimate of one run of `task` with `settings` (see the module docstring for what is a floor or a ceiling)."""
    t = settings.teacher
    style = "chat" if t.backend == "openai" else "completion"
    calls = samples = prompt_chars = completion_tokens = 0
    for n in range(1, settings.rounds + 1):
        budget = settings.samples_per_round + (0 if probing(settings, n) else settings.probe_size)
        probes = settings.probe_size if probing(settings, n) else 0
        for count, probe in ((budget, False), (probes, True)):
            requests = prompts.plan_requests(task, count, style=style, rng=random.Random(settings.seed * 7919 + n),
                                             probe=probe)
            calls += sum(1 + len(r.next_titles) for r in requests)  # a multi-field block: a call per field
            samples += count
            prompt_chars += sum(_chars(r.prompt) for r in requests)
            completion_tokens += sum(int(t.max_new_tokens * r.length_factor) for r in requests)
    reads = remote_reads = 0
    if wants_soft_labels(task, settings):
        # each training sample is read once: the round's samples, plus its probes where probes train (or where
        # the round spent the probe budget on samples)
        reads = sum(settings.samples_per_round
                    + (settings.probe_size if settings.train_on_probes or not probing(settings, n) else 0)
                    for n in range(1, settings.rounds + 1))
        remote = [r for r in labelers.refs(settings)
                  if r.kind == "openai" or (r.kind == TEACHER and t.backend == "openai")]
        if settings.labeler.pick == "first":
            remote = remote[:1] if labelers.refs(settings)[0] in remote else []
        remote_reads = reads * len(remote) * max(1, settings.labeler.votes)
    prompt_tokens = int(prompt_chars / CHARS_PER_TOKEN)
    cost = None
    if t.price_in_per_m or t.price_out_per_m:
        cost = (prompt_tokens * t.price_in_per_m + completion_tokens * t.price_out_per_m) / 1e6
    seconds, used = _seconds_from_history(store, settings, calls, samples, len(task.seeds))
    return RunEstimate(generation_calls=calls, samples=samples, label_reads=reads, remote_label_calls=remote_reads,
                       prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost,
                       seconds=seconds, seconds_from_rounds=used)


def _seconds_from_history(store: Store, settings: GoldSettings, calls: int, samples: int,
                          seeds: int) -> tuple[float | None, int]:
    """Seconds for the run from this store's newest finished rounds whose teacher is the same model on the same
    backend and engine: generation at their seconds per prompt, training at their seconds per trained example
    (each round trains on everything kept so far, so the examples add up round by round)."""
    t = settings.teacher
    teacher = (t.backend, t.model, resolved_engine(t.engine, t.model))
    gen_rates, train_rates = [], []
    for summary in store.list_runs():
        if len(gen_rates) >= HISTORY_ROUNDS:
            break
        other = GoldSettings.from_dict(store.get_run(summary.id).settings).teacher
        if (other.backend, other.model, resolved_engine(other.engine, other.model)) != teacher:
            continue
        for r in reversed(store.rounds(summary.id)):
            m = r.metrics
            if r.status != "done" or m.retrain:
                continue
            prompts_written = (m.gen_prompts or 0) + (m.probe_prompts or 0)
            if prompts_written and m.generate_seconds:
                gen_rates.append(m.generate_seconds / prompts_written)
            if m.train_size and m.train_seconds:
                train_rates.append(m.train_seconds / m.train_size)
    if not gen_rates or not train_rates:
        return None, 0
    per_round = samples / max(1, settings.rounds)
    trained = sum(seeds + per_round * n for n in range(1, settings.rounds + 1))
    seconds = calls * _mean(gen_rates) + trained * _mean(train_rates)
    return seconds, len(gen_rates)


def _chars(prompt) -> int:
    if isinstance(prompt, str):
        return len(prompt)
    return sum(len(str(m.get("content", ""))) for m in prompt)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

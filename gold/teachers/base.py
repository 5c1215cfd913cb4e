"""The Teacher protocol and the small value types every teacher shares.

A teacher turns prompts into text; nothing more. Prompt building and parsing live in `gold.prompts`, so a
teacher knows nothing of tasks, labels or the store, and the local and remote teachers stay swappable.
A teacher declares the prompt form it follows best (`prompt_style`): docs/architecture.md measured that a 135M model
follows plain-completion few-shot prompts far better than chat prompts, while API models are chat models.

`GenerationSettings` defaults are the sampling recipe (T 0.9, top_p 0.95, repetition penalty 1.2, at most 40 new
tokens, batches of 16, stop at a newline): tiny models loop under greedy decoding, so sampling is the default, and
the newline stop gives "keep the first line" for free. `gold.specs.TeacherSpec` takes its sampling fields'
defaults from here, and `TeacherSpec.generation_settings(seed)` builds the settings a round samples with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Protocol, Sequence, runtime_checkable

PromptStyle = Literal["completion", "chat"]
PROMPT_STYLES: tuple[str, ...] = ("completion", "chat")

# A prompt is a plain string (completion form) or a list of chat messages ({"role": ..., "content": ...}).
Prompt = str | list[dict[str, Any]]

# progress(fraction_done in [0, 1], message) — the same shape as the students' progress callback.
ProgressFn = Callable[[float, str], None]

FINISH_REASONS = ("stop", "length", "error")


class TeacherError(RuntimeError):
    """A teacher could not produce text; the message says what to do about it (never contains a secret)."""


class NoLogprobs(TeacherError):
    """The server answered but gives no log-probabilities, so it cannot read labels back as probabilities; the
    message says what to do (turn on label votes, or use a server that returns `logprobs`)."""


class BudgetExceeded(TeacherError):
    """The next batch could cost more than the run's remaining budget; raised before anything is sent."""


@dataclass(frozen=True)
class GenerationSettings:
    """How a teacher samples.

    Attributes:
        max_new_tokens: tokens per completion at most (the prototype's samples were ~40 tokens).
        temperature: sampling temperature; 0 means greedy (which makes tiny models loop — avoid).
        top_p: nucleus sampling mass.
        repetition_penalty: >1 discourages repeats (HF semantics). API models ignore it unless the teacher is
            told the server accepts it (vLLM, TGI, llama.cpp do; the OpenAI API does not).
        seed: base RNG seed; the same prompts with the same settings give the same replies where the backend
            is deterministic (always for the local teacher on the same machine).
        stop: strings that end a completion; the text from the first one on is cut off. None = the default
            of the prompt style (`default_stop`): a newline for completion form, nothing for chat form.
        batch_size: prompts per forward pass (local) or requests in flight at once (remote).
        top_logprobs: None = no log-probabilities; k >= 0 = each generated token comes back with its own
            log-probability and the k most likely alternatives at its position (`Completion.logprobs`), read
            from the model's raw distribution before temperature and top-p, as OpenAI-compatible servers do.
            This is how a teacher's belief in a label is read over HTTP (soft labels from remote teachers).
    """

    max_new_tokens: int = 40
    temperature: float = 0.9
    top_p: float = 0.95
    repetition_penalty: float = 1.2
    seed: int = 0
    stop: tuple[str, ...] | None = None
    batch_size: int = 16
    top_logprobs: int | None = None

    def __post_init__(self) -> None:
        if self.stop is not None and not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))

    def problems(self) -> list[str]:
        p = []
        if self.max_new_tokens < 1:
            p.append("Max new tokens must be at least 1.")
        if not 0 <= self.temperature <= 5:
            p.append("The temperature must be between 0 and 5.")
        if not 0 < self.top_p <= 1:
            p.append("Top-p must be in (0, 1].")
        if not 0 < self.repetition_penalty <= 5:
            p.append("The repetition penalty must be in (0, 5].")
        if self.batch_size < 1:
            p.append("The batch size must be at least 1.")
        if self.stop is not None and any(not s for s in self.stop):
            p.append("A stop sequence is empty.")
        if self.top_logprobs is not None and not 0 <= self.top_logprobs <= 20:
            p.append("top_logprobs must be between 0 and 20 (the OpenAI API's limit).")
        return p

    def validate(self) -> "GenerationSettings":
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def stops_for(self, style: str) -> tuple[str, ...]:
        """The stop strings in force for a prompt style: the explicit ones, else the style's default."""
        return self.stop if self.stop is not None else default_stop(style)

    def with_(self, **changes: Any) -> "GenerationSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty, "seed": self.seed,
            "stop": list(self.stop) if self.stop is not None else None, "batch_size": self.batch_size,
            "top_logprobs": self.top_logprobs,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GenerationSettings":
        known = {k: d[k] for k in cls().to_dict() if k in d}
        if known.get("stop") is not None:
            known["stop"] = tuple(known["stop"])
        return cls(**known)


def default_stop(style: str) -> tuple[str, ...]:
    """Completion form asks for one line at a time, so the newline ends it; a chat reply holds several lines."""
    return ("\n",) if style == "completion" else ()


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share (what a kept key/value cache saves evaluating)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; returns (text, whether a stop was found)."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@dataclass
class TokenLogprob:
    """One token of a reply (or of an echoed prompt) with its log-probability and, when asked for, the most
    likely tokens at its position, best first: the OpenAI `logprobs` content entry as a value type.
    `logprob` is None for a prompt's first token (nothing predicts it); `offset` is the token's character
    offset in the text it belongs to."""

    token: str
    logprob: float | None
    top: list[tuple[str, float]] = field(default_factory=list)
    offset: int = 0


@dataclass
class Completion:
    """One reply: the text (stop string removed), token counts, and why it ended ("stop" | "length" | "error").
    `error` says what went wrong when a teacher returns a failed reply instead of raising. `logprobs`: one entry
    per generated token when `GenerationSettings.top_logprobs` was set (None otherwise)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    error: str | None = None
    logprobs: list[TokenLogprob] | None = None


@dataclass
class Usage:
    """Tokens spent by a teacher, summed over its life, and their cost when prices are known.

    Prices are US dollars per 1M tokens; both None means "free / unknown" (the local teacher) and
    `cost_usd` is then 0.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    failed_requests: int = 0
    price_prompt_per_1m: float | None = None
    price_completion_per_1m: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float:
        return self.cost_of(self.prompt_tokens, self.completion_tokens)

    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        pp = self.price_prompt_per_1m or 0.0
        pc = self.price_completion_per_1m or 0.0
        return (prompt_tokens * pp + completion_tokens * pc) / 1e6

    def add(self, completions: Sequence[Completion]) -> None:
        for c in completions:
            self.prompt_tokens += c.prompt_tokens
            self.completion_tokens += c.completion_tokens
            self.requests += 1
            if c.finish_reason == "error":
                self.failed_requests += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "requests": self.requests, "failed_requests": self.failed_requests, "cost_usd": round(self.cost_usd, 6),
        }


def estimate_tokens(text: str) -> int:
    """A conservative token count for budgeting when no tokenizer is at hand (English BPE averages ~4 chars
    per token; we assume 3 so an estimate errs high)."""
    return max(1, math.ceil(len(text) / 3))


def plain_transcript(messages: list[dict[str, Any]]) -> str:
    """Chat messages for a model without a chat template (a base model): a transcript it can continue."""
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"


def prompt_text(prompt: Prompt) -> str:
    """All the text of a prompt, for estimates and logs."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(m.get("content", "")) for m in prompt)


@runtime_checkable
class Teacher(Protocol):
    """Anything that turns a batch of prompts into completions, one per prompt, in order: what the engine calls
    on every teacher. Reading labels back is a capability some teachers add: `isinstance(t, LabelScorer)`."""

    name: str
    prompt_style: str  # "completion" or "chat": the form this teacher follows best
    usage: Usage

    def generate(
        self, prompts: list[Prompt], settings: GenerationSettings, progress: ProgressFn | None = None
    ) -> list[Completion]: ...


@dataclass
class LabelReadStats:
    """How a teacher's label read-out went, summed over the rows it read (a remote teacher fills it per call).

    Attributes:
        rows: rows read.
        floored: (row, label) entries with no probability from the server (the label was not among its top
            tokens), given a floor probability instead.
        rows_floored: rows with at least one floored label.
        failed: rows the server gave no usable distribution for (they fall back to a uniform read).
        method: how the probabilities were read: "loglik" (local model), "logprobs" (the server's top tokens),
            "votes" (shares of K sampled answers).
    """

    rows: int = 0
    floored: int = 0
    rows_floored: int = 0
    failed: int = 0
    method: str = "loglik"

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "floored": self.floored, "rows_floored": self.rows_floored,
                "failed": self.failed, "method": self.method}


@runtime_checkable
class LabelScorer(Protocol):
    """A teacher that reads a text back as a few-shot classifier: the log-probability of each candidate
    continuation (label word, with its leading space) after each prompt. The local teachers compute it from
    the model; a remote one reads it from the server's `logprobs`. `gold.teachers.fewshot.label_probs` turns it
    into calibrated label probabilities (soft labels, and the teacher's own few-shot accuracy)."""

    name: str

    def label_loglik(self, prompts: Sequence[str], candidates: Sequence[str], prefix: str = "",
                     batch_size: int = 16, normalize: bool = False) -> Any: ...

"""Reading a label's probability from what an OpenAI-compatible server returns: its top first tokens
(`logprobs`), or, for a server without log-probabilities, the shares of sampled answers (votes).

Why its own module: this is pure parsing and arithmetic, no network. A server sees only the first token of a
label, so each listed token is credited to the labels it starts (split between labels sharing a first piece,
counted as ambiguous), and a label outside the listed tokens gets a floor (counted), so the caller can tell how
much of a read-out was guessed. `gold.teachers.remote.OpenAITeacher.label_loglik` is the one caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gold.teachers.base import LabelReadStats, TokenLogprob

FLOOR_SHARE = 0.5  # a label the server did not list gets half the smallest probability (or vote share) it did
_ANSWER_WRAPPING = "\"'*`_ \t"  # quotes and markdown a chat model may wrap its one-word answer in


@dataclass
class RemoteLabelStats(LabelReadStats):
    """`LabelReadStats` plus `ambiguous`: rows where one listed token began several labels (labels sharing their
    first piece, which a single-token read cannot tell apart) and its probability was split between them."""

    ambiguous: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ambiguous": self.ambiguous}


@dataclass(frozen=True)
class SoftLabelSupport:
    """What a server offers for soft labels, from one probe request (`OpenAITeacher.soft_label_support`).

    Attributes:
        mode: "logprobs" (read from the server's top tokens), "votes" (no log-probabilities; estimated from
            sampled answers, as the teacher was told to) or "none" (no soft labels from this server).
        top_logprobs: alternatives per token the server actually returned (0 when it returned none).
        endpoint: "completions" or "chat", the endpoint the labels are read through.
        sentence: one sentence for the Runs page and the CLI: what the server supports and what a run will do.
    """

    mode: Literal["logprobs", "votes", "none"]
    top_logprobs: int
    endpoint: str
    sentence: str


@dataclass(frozen=True)
class LabelRead:
    """One row's label probabilities (not normalised: `fewshot.label_probs` does that), and how they were got."""

    probs: np.ndarray
    floored: int = 0
    ambiguous: bool = False


def label_keys(candidates: Sequence[str]) -> list[str]:
    """Candidates as servers' tokens are compared with them: stripped and case-folded. Two candidates that
    read the same would share every token, so they are refused."""
    if not candidates:
        raise ValueError("label_loglik needs at least one candidate.")
    keys = [c.strip().casefold() for c in candidates]
    if any(not k for k in keys):
        raise ValueError("A candidate is empty: every candidate needs some text besides spaces.")
    if len(set(keys)) < len(keys):
        raise ValueError(f"Two candidates read the same once case and spaces are ignored: {list(candidates)}.")
    return keys


def matching_labels(piece: str, keys: Sequence[str]) -> list[int]:
    """The labels a piece of reply (a token, or an answer) stands for: every label it is a non-empty prefix of
    (several when labels share a first piece), else the longest label it starts with ("positive." is
    positive)."""
    text = piece.lstrip().casefold()
    if not text:
        return []
    starts = [k for k, key in enumerate(keys) if key.startswith(text)]
    if starts:
        return starts
    within = [k for k, key in enumerate(keys) if text.startswith(key)]
    return [max(within, key=lambda k: len(keys[k]))] if within else []


def first_token_distribution(entry: TokenLogprob) -> list[tuple[str, float]]:
    """The reply's first-token distribution as listed: the alternatives and the chosen token (a server asked
    for 0 alternatives lists only that one), each token text once, most likely first."""
    seen: dict[str, float] = {}
    for token, logprob in [*entry.top, (entry.token, entry.logprob)]:
        if logprob is not None:
            seen.setdefault(token, float(logprob))
    return sorted(seen.items(), key=lambda kv: -kv[1])


def read_top_tokens(top: Sequence[tuple[str, float]], keys: Sequence[str]) -> LabelRead:
    """Each label's probability from the server's top first tokens: a token gives its probability to the label
    it starts (split equally between labels sharing it); variants of one label (" Positive", "positive")
    add up; a label no listed token starts gets `FLOOR_SHARE` of the smallest listed probability, since its
    true probability is below everything listed."""
    probs = np.zeros(len(keys))
    seen = np.zeros(len(keys), dtype=bool)
    ambiguous = False
    for token, logprob in top:
        labels = matching_labels(token, keys)
        for k in labels:
            probs[k] += math.exp(logprob) / len(labels)
            seen[k] = True
        ambiguous |= len(labels) > 1
    smallest = min(math.exp(logprob) for _, logprob in top)
    probs[~seen] = max(FLOOR_SHARE * smallest, np.finfo(np.float64).tiny)  # never log(0): rows stay finite
    return LabelRead(probs, int((~seen).sum()), ambiguous)


def answer_labels(answer: str, keys: Sequence[str]) -> list[int]:
    """The labels a sampled answer names: its first line, else that line's first word, matched as tokens are."""
    line = next((x for x in answer.splitlines() if x.strip()), "").strip(_ANSWER_WRAPPING)
    labels = matching_labels(line, keys)
    if not labels and line.split():
        labels = matching_labels(line.split()[0].strip(_ANSWER_WRAPPING), keys)
    return labels


def read_votes(answers: Sequence[str], keys: Sequence[str]) -> LabelRead:
    """Label probabilities as the share of answers naming each label (an answer naming several splits its
    vote); a label nobody named gets `FLOOR_SHARE` of one vote, the resolution K samples have."""
    votes = np.zeros(len(keys))
    ambiguous = False
    for answer in answers:
        labels = answer_labels(answer, keys)
        for k in labels:
            votes[k] += 1 / len(labels)
        ambiguous |= len(labels) > 1
    missing = votes == 0
    votes[missing] = FLOOR_SHARE
    return LabelRead(votes / len(answers), int(missing.sum()), ambiguous)


def parse_logprobs(block: object) -> list[TokenLogprob] | None:
    """A choice's `logprobs` in either OpenAI shape — chat (`content`: entries with `top_logprobs` lists; also
    what llama-server sends on /v1/completions) or legacy completions (parallel `tokens`, `token_logprobs`,
    `top_logprobs` dicts, `text_offset`) — as TokenLogprob entries. None when the server sent none."""
    if not isinstance(block, dict):
        return None
    if isinstance(block.get("content"), list):
        return [_chat_entry(e) for e in block["content"] if isinstance(e, dict)]
    tokens = block.get("tokens")
    if not isinstance(tokens, list):
        return None
    values = _list(block.get("token_logprobs"))
    tops = _list(block.get("top_logprobs"))
    offsets = _list(block.get("text_offset"))
    return [TokenLogprob(str(token), _float(_at(values, i)), _pairs(_at(tops, i)), _int(_at(offsets, i)))
            for i, token in enumerate(tokens)]


def _chat_entry(e: dict[str, Any]) -> TokenLogprob:
    alternatives = [(str(a.get("token", "")), _float(a.get("logprob"))) for a in _list(e.get("top_logprobs"))
                    if isinstance(a, dict)]
    return TokenLogprob(str(e.get("token", "")), _float(e.get("logprob")),
                        [(t, lp) for t, lp in alternatives if lp is not None])


def _pairs(top: object) -> list[tuple[str, float]]:
    if not isinstance(top, dict):
        return []
    pairs = [(str(t), _float(lp)) for t, lp in top.items()]
    return sorted(((t, lp) for t, lp in pairs if lp is not None), key=lambda p: -p[1])


def _list(x: object) -> list[Any]:
    return x if isinstance(x, list) else []


def _at(items: list[Any], i: int) -> Any:
    return items[i] if i < len(items) else None


def _float(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return None
    return float(x)


def _int(x: object) -> int:
    try:
        return max(0, int(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0

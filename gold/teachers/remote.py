"""OpenAITeacher: chat completions from the OpenAI API or any OpenAI-compatible server (vLLM, TGI, llama.cpp),
and the teacher's belief in each label read from the server's log-probabilities (soft labels).

Why it is built this way:
- The SDK's own retries are switched off (`max_retries=0`) and done here, so every retry is counted, the
  backoff is ours (exponential with jitter, honouring Retry-After), and a run can report what happened.
- The API key lives only inside the SDK client. It is never in `repr`/`str`, never in an error message
  (server texts are scrubbed of it, and of anything shaped like a key), and SDK exceptions — whose request
  carries the Authorization header — are not chained onto ours.
- The response body is parsed here rather than by the SDK's lenient models, so a malformed body or an empty
  `choices` list becomes a clear `TeacherError` instead of an AttributeError deep in a worker.
- A budget is checked *before* each batch with a conservative estimate (prompt chars/3 + max_new_tokens per
  request), so a run never starts a batch it cannot pay for.
- Labels are read the way a server can give them (`label_loglik`): one request per row for a single token at
  temperature 0 with the top-k alternatives, each label credited with the tokens it starts with. A server sees
  only the first token of a label, so labels sharing a first piece split it (counted), and a label outside the
  top k gets a floor (counted), so the caller can tell how much the read-out guessed. A server with no
  log-probabilities at all is either refused with a sentence saying what to do, or (opt-in) read by votes:
  the share of sampled answers naming each label. The reading itself (tokens to labels, floors, votes) is
  `gold.teachers.label_reads`; this module sends the requests.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import openai

from gold.teachers.base import (
    BudgetExceeded,
    Completion,
    GenerationSettings,
    NoLogprobs,
    ProgressFn,
    Prompt,
    TeacherError,
    Usage,
    default_stop,
    estimate_tokens,
    prompt_text,
    truncate_at_stop,
)
from gold.teachers.label_reads import (
    LabelRead,
    RemoteLabelStats,
    SoftLabelSupport,
    first_token_distribution,
    label_keys,
    parse_logprobs,
    read_top_tokens,
    read_votes,
)

T = TypeVar("T")

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_KEYLIKE = re.compile(r"\b(sk|pk|rk|key)[-_][A-Za-z0-9_\-*]{6,}")
MAX_STOPS = 4  # the OpenAI API accepts at most 4 stop sequences
MAX_TOP_LOGPROBS = 20  # the OpenAI API's cap on alternatives per token
LABEL_ENDPOINTS = ("auto", "completions", "chat")
_LOGPROB_WORDS = re.compile(r"log.?prob", re.IGNORECASE)

Endpoint = Literal["chat", "completions"]
STOP_STYLE = {"chat": "chat", "completions": "completion"}  # whose default stops an endpoint's replies follow


class _Retryable(Exception):
    """Internal: a failure worth another try; `wait_s` is the server's Retry-After when it gave one."""

    def __init__(self, reason: str, wait_s: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


@dataclass
class RetryPolicy:
    """Retries for transient failures (429, 5xx, timeouts, dropped connections).

    Waits grow as base·2^attempt (capped at `max_wait_s`) with full jitter in [50%, 100%], so many workers
    hitting one rate limit do not retry in lock-step; a Retry-After header overrides the computed wait.
    """

    max_retries: int = 4
    base_s: float = 1.0
    max_wait_s: float = 60.0

    def wait_for(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_wait_s)
        return min(self.base_s * (2**attempt), self.max_wait_s) * random.uniform(0.5, 1.0)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None if absent."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAITeacher:
    """A chat model behind an OpenAI-compatible endpoint. Prefers chat-form prompts; a plain string prompt
    is sent as a single user message. Reads labels back (`label_loglik`) from the server's log-probabilities."""

    prompt_style = "chat"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        price_prompt_per_1m: float | None = None,
        price_completion_per_1m: float | None = None,
        budget_usd: float | None = None,
        send_seed: bool = True,
        send_repetition_penalty: bool = False,
        token_param: str | None = None,
        errors: str = "raise",
        label_endpoint: str = "auto",
        label_top_logprobs: int = MAX_TOP_LOGPROBS,
        label_votes: int = 0,
    ):
        """
        Args:
            model: the model name the server knows (e.g. "gpt-4o-mini", or what vLLM was started with).
            api_key: the key; else OPENAI_API_KEY. Held in memory only. A custom `base_url` may go without one.
            base_url: an OpenAI-compatible endpoint ending in /v1; None = the OpenAI API.
            timeout_s: per-request timeout; a timed-out request is retried.
            max_concurrency: requests in flight at most (also bounded by `settings.batch_size`).
            price_*_per_1m: US dollars per 1M tokens, for `usage.cost_usd` and the budget.
            budget_usd: stop (BudgetExceeded) before a batch whose worst case would pass this total.
            send_repetition_penalty: pass `repetition_penalty` in the body (vLLM/TGI/llama.cpp accept it;
                the OpenAI API rejects unknown fields).
            token_param: "max_tokens" or "max_completion_tokens"; default: the latter for the OpenAI API
                (its newer models refuse the former), the former for other servers (older ones ignore the latter).
            errors: "raise" (default) — a malformed or empty reply raises TeacherError; "return" — it becomes a
                Completion with finish_reason "error" and `.error` set, so one bad reply does not end a batch.
                Bad key, unknown model and budget always raise.
            label_endpoint: where `label_loglik` reads labels: "completions" (the few-shot text continued, as the
                local teacher reads it; vLLM, llama-server, SGLang, Ollama and `gold serve` have it), "chat"
                (one user message asking for one of the labels; the OpenAI API's chat models), or "auto": the
                former with a `base_url`, the latter for the OpenAI API.
            label_top_logprobs: alternatives asked for per label read (the OpenAI API allows at most 20); a
                label outside them gets a floor probability.
            label_votes: 0 = off. Else, where the server gives no log-probabilities, each row's label
                probabilities are the shares of this many answers sampled at temperature 1 (that many times
                the requests).
        """
        if not model or not model.strip():
            raise TeacherError("No model name given: say which model the server should use (e.g. 'gpt-4o-mini').")
        if errors not in ("raise", "return"):
            raise ValueError("errors must be 'raise' or 'return'")
        if label_endpoint not in LABEL_ENDPOINTS:
            raise ValueError(f"label_endpoint must be one of {', '.join(LABEL_ENDPOINTS)}")
        if not 0 <= label_top_logprobs <= MAX_TOP_LOGPROBS:
            raise ValueError(f"label_top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
        if label_votes < 0:
            raise ValueError("label_votes must be 0 (off) or more")
        if budget_usd is not None and not (price_prompt_per_1m or price_completion_per_1m):
            # without prices every cost is $0 and the budget could never stop anything
            raise TeacherError("A budget needs the model's prices: give the price per 1M prompt and completion tokens.")
        key = api_key or os.environ.get("OPENAI_API_KEY") or ""
        if not key:
            if base_url is None:
                raise TeacherError(
                    "No OpenAI API key: pass one in the teacher settings or set the OPENAI_API_KEY environment variable."
                )
            key = "EMPTY"  # local OpenAI-compatible servers usually need no key, but the SDK requires one
        self.model = model.strip()
        self.base_url = base_url
        self.name = f"{self.model} @ {base_url or 'api.openai.com'}"
        self.timeout_s = float(timeout_s)
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max(1, int(max_concurrency))
        self.budget_usd = budget_usd
        self.send_seed = send_seed
        self.send_repetition_penalty = send_repetition_penalty
        self.token_param = token_param or ("max_completion_tokens" if base_url is None else "max_tokens")
        self.errors = errors
        auto: Endpoint = "completions" if base_url else "chat"
        self.label_endpoint: Endpoint = (
            auto if label_endpoint == "auto" else label_endpoint  # type: ignore[assignment]
        )
        self.label_top_logprobs = int(label_top_logprobs)
        self.label_votes = int(label_votes)
        # label reads summed over the teacher's life (a caller takes differences around its calls); `method` is
        # the last call's
        self.label_stats = RemoteLabelStats(method="logprobs")
        self.usage = Usage(price_prompt_per_1m=price_prompt_per_1m, price_completion_per_1m=price_completion_per_1m)
        self.retries = 0  # transient failures retried, over the teacher's life
        self._usage_lock = threading.Lock()
        self._secrets = (key,) if key != "EMPTY" else ()
        self._client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=self.timeout_s)

    def __repr__(self) -> str:
        return f"OpenAITeacher(model={self.model!r}, base_url={self.base_url!r})"

    __str__ = __repr__

    def __getstate__(self) -> dict:
        raise TypeError("OpenAITeacher holds an API key and is not picklable; build a new one where it is needed.")

    def close(self) -> None:
        self._client.close()

    # -- messages and estimates ----------------------------------------------------------------------------------
    @staticmethod
    def messages(prompt: Prompt) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)

    def estimate_cost(self, prompts: list[Prompt], settings: GenerationSettings) -> float:
        """Worst-case cost of sending `prompts`: estimated prompt tokens (+4 per message of overhead) and the
        full `max_new_tokens` for every reply."""
        p = sum(estimate_tokens(prompt_text(x)) + 4 * len(self.messages(x)) for x in prompts)
        return self.usage.cost_of(p, settings.max_new_tokens * len(prompts))

    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "[redacted]")
        return _KEYLIKE.sub("[redacted]", text)

    # -- generation ----------------------------------------------------------------------------------------------
    def generate(
        self, prompts: list[Prompt], settings: GenerationSettings | None = None, progress: ProgressFn | None = None
    ) -> list[Completion]:
        """One completion per prompt, in order; batches of `min(batch_size, max_concurrency)` requests in flight.
        With `settings.top_logprobs` set, each completion carries the server's token log-probabilities.

        Raises BudgetExceeded before a batch that could pass the budget; the completions finished so far are
        on the exception (`.completions`), so the caller keeps what it paid for.
        """
        settings = (settings or GenerationSettings()).validate()
        return self._run(prompts, settings, "chat", progress)

    def _run(self, prompts: list[Prompt], settings: GenerationSettings, endpoint: Endpoint,
             progress: ProgressFn | None = None) -> list[Completion]:
        """The requests of `generate` (and of the label reads) in order, through one endpoint; prompt i is
        seeded `settings.seed + i`."""
        width = min(settings.batch_size, self.max_concurrency)
        out: list[Completion] = []
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="openai-teacher") as pool:
            for start in range(0, len(prompts), width):
                chunk = prompts[start : start + width]
                self._check_budget(chunk, settings, out)
                futures = [pool.submit(self._one, p, settings, start + j, endpoint) for j, p in enumerate(chunk)]
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
                if any(not f.cancelled() and f.exception() is not None for f in done):
                    for f in pending:
                        f.cancel()
                    wait(futures)  # let requests already in flight finish, so their usage is counted
                    # the first failure in prompt order, so the error a run reports is reproducible
                    raise next(f.exception() for f in futures if not f.cancelled() and f.exception() is not None)
                out.extend(f.result() for f in futures)
                if progress:
                    progress(len(out) / len(prompts), f"teacher: {len(out)}/{len(prompts)} replies")
        return out

    def _check_budget(self, chunk: list[Prompt], settings: GenerationSettings, done: list[Completion]) -> None:
        if self.budget_usd is None:
            return
        with self._usage_lock:
            spent = self.usage.cost_usd
        worst = self.estimate_cost(chunk, settings)
        if spent + worst > self.budget_usd:
            err = BudgetExceeded(
                f"Stopped before the next {len(chunk)} requests: they could cost up to ${worst:.4f}, and "
                f"${spent:.4f} of the ${self.budget_usd:.2f} budget is spent. Raise the budget or lower the "
                "number of samples or max new tokens."
            )
            err.completions = list(done)  # type: ignore[attr-defined]
            raise err

    def _one(self, prompt: Prompt, settings: GenerationSettings, index: int,
             endpoint: Endpoint = "chat") -> Completion:
        try:
            c = self._retrying(lambda: self._request(prompt, settings, index, endpoint))
        except TeacherError as e:
            if self.errors == "return" and getattr(e, "recoverable", False):
                c = Completion("", 0, 0, "error", error=str(e))
            else:
                raise
        with self._usage_lock:
            self.usage.add([c])
        return c

    def _retrying(self, send: Callable[[], T]) -> T:
        """`send()` until it does not fail transiently, waiting per the retry policy; every retry is counted."""
        attempt = 0
        while True:
            try:
                return send()
            except _Retryable as r:
                if attempt >= self.retry.max_retries:
                    raise TeacherError(
                        f"The teacher server kept failing ({r.reason}) after {attempt + 1} tries; "
                        "try again later, lower the concurrency, or check the server."
                    ) from None
                time.sleep(self.retry.wait_for(attempt, r.wait_s))
                attempt += 1
                with self._usage_lock:
                    self.retries += 1

    def _body(self, prompt: Prompt, settings: GenerationSettings, index: int, endpoint: Endpoint) -> dict[str, Any]:
        """The request body. /v1/completions takes the prompt text, `max_tokens` and `logprobs: k`; chat takes
        messages, the configured token parameter and `logprobs: true, top_logprobs: k`."""
        body: dict[str, Any] = {"model": self.model, "n": 1}
        if endpoint == "chat":
            body.update(messages=self.messages(prompt), **{self.token_param: settings.max_new_tokens})
            if settings.top_logprobs is not None:
                body.update(logprobs=True, top_logprobs=settings.top_logprobs)
        else:
            body.update(prompt=prompt_text(prompt), max_tokens=settings.max_new_tokens)
            if settings.top_logprobs is not None:
                body["logprobs"] = settings.top_logprobs
        if settings.temperature > 0:
            body.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            body.update(temperature=0.0)
        stops = settings.stops_for(STOP_STYLE[endpoint])[:MAX_STOPS]
        if stops:
            body["stop"] = list(stops)
        if self.send_seed:
            body["seed"] = settings.seed + index  # distinct per prompt: identical prompts must not collapse
        return body

    def _request(self, prompt: Prompt, settings: GenerationSettings, index: int,
                 endpoint: Endpoint = "chat") -> Completion:
        body = self._body(prompt, settings, index, endpoint)
        extra = {"repetition_penalty": settings.repetition_penalty} if self.send_repetition_penalty else None
        resource = self._client.chat.completions if endpoint == "chat" else self._client.completions
        try:
            raw = resource.with_raw_response.create(**body, extra_body=extra, timeout=self.timeout_s)
            text = raw.text
        except openai.APITimeoutError:
            raise _Retryable(f"no reply within {self.timeout_s:g} s") from None
        except openai.APIConnectionError:
            raise _Retryable(f"could not connect to {self.base_url or 'the OpenAI API'}") from None
        except openai.APIStatusError as e:
            raise self._status_error(e) from None
        return self._parse(text, settings, prompt, endpoint)

    # -- label read-out ------------------------------------------------------------------------------------------
    def label_loglik(self, prompts: Sequence[str], candidates: Sequence[str], prefix: str = "",
                     batch_size: int = 16, normalize: bool = False) -> np.ndarray:
        """Log-probability of each candidate label after each prompt, read from the server: shape
        (len(prompts), len(candidates)), for `fewshot.label_probs` (whose softmax normalises over candidates).

        The same meaning as `LocalTeacher.label_loglik` for labels their first token tells apart: per row, one
        token of `prefix + prompt` at temperature 0 with its top `label_top_logprobs` alternatives
        (`label_endpoint`), each candidate credited with the tokens it starts with (`read_top_tokens`). A
        server shows one token, so `normalize` (the local per-token average over a candidate's tokens) has
        nothing to average and changes nothing. Rows go `min(batch_size, max_concurrency)` at a time, with the
        retries and the budget check of `generate`. How the reads went is added to `self.label_stats`.

        Raises NoLogprobs (a TeacherError) when the server gives no log-probabilities and `label_votes` is 0;
        BudgetExceeded before requests the budget cannot pay for.
        """
        keys = label_keys(candidates)
        self.label_stats.method = "logprobs"
        if not len(prompts):
            return np.zeros((0, len(keys)))
        asks = [self._label_prompt(prefix + p, candidates) for p in prompts]
        settings = self._logprob_settings(batch_size)
        try:  # the first row alone: whether the server gives log-probabilities at all decides the rest
            first = self._run(asks[:1], settings, self.label_endpoint)[0]
        except TeacherError as e:
            refusal = getattr(e, "logprobs_refusal", None)
            if refusal is None:
                raise
            return np.log(self._tally(self._without_logprobs(asks, keys, batch_size, refusal)))
        if first.logprobs is None and first.finish_reason != "error":
            return np.log(self._tally(self._without_logprobs(asks, keys, batch_size, None)))
        replies = [first, *self._run(asks[1:], settings, self.label_endpoint)]
        return np.log(self._tally([self._logprob_read(c, keys) for c in replies]))

    def soft_label_support(self, prompt: str, candidates: Sequence[str]) -> SoftLabelSupport:
        """Whether this server gives soft labels, and what a run will do, from one label read of `prompt` (a
        few-shot row prompt, prefix included, as `label_loglik` sends it), not retried: the Runs page and the
        CLI show its sentence before a run is started. Whatever the server does (unreachable, 404, a refusal)
        becomes the sentence, never an exception."""
        endpoint = self.label_endpoint
        settings = self._logprob_settings(1)
        ask = self._label_prompt(prompt, candidates)
        try:
            self._check_budget([ask], settings, [])
            c = self._request(ask, settings, 0, endpoint)
        except _Retryable as r:
            return SoftLabelSupport("none", 0, endpoint, f"Could not reach the teacher server to check for soft "
                                                         f"labels ({r.reason}): check that it runs and the base URL.")
        except TeacherError as e:
            refusal = getattr(e, "logprobs_refusal", None)
            if refusal is not None:
                return self._support_without_logprobs(endpoint, refusal)
            return SoftLabelSupport("none", 0, endpoint, f"Could not check the teacher server for soft labels: {e}")
        with self._usage_lock:
            self.usage.add([c])
        if c.logprobs is None:
            return self._support_without_logprobs(endpoint, None)
        listed = len(c.logprobs[0].top) if c.logprobs else 0
        asked = self.label_top_logprobs
        if listed >= asked:
            sentence = (f"This server returns log-probabilities (top {listed} tokens): the teacher's belief in "
                        "each label becomes the student's soft targets.")
        else:
            sentence = (f"This server returns log-probabilities, but only the top {listed} of the {asked} tokens "
                        "asked for: the teacher's belief in each label becomes the student's soft targets, and a "
                        "label outside them gets a floor probability.")
        return SoftLabelSupport("logprobs", listed, endpoint, sentence)

    def _support_without_logprobs(self, endpoint: str, refusal: str | None) -> SoftLabelSupport:
        why = f" ({refusal})" if refusal else ""
        if self.label_votes:
            v = self.label_votes
            return SoftLabelSupport("votes", 0, endpoint, f"This server returns no log-probabilities{why}: the "
                                    f"student's soft targets will be estimated from {v} sampled answers per text "
                                    f"({v}× the requests).")
        return SoftLabelSupport("none", 0, endpoint, f"This server returns no log-probabilities{why}: the student "
                                "will train on the labels the teacher was asked to write (turn on label votes to "
                                "estimate soft labels from 5 samples per text, 5× the requests).")

    def _label_prompt(self, text: str, candidates: Sequence[str]) -> Prompt:
        """A label read as the endpoint takes it: the few-shot text to continue, or one user message that asks
        a chat model for one of the labels (it would otherwise answer in a sentence)."""
        if self.label_endpoint == "completions":
            return text
        labels = ", ".join(c.strip() for c in candidates)
        return [{"role": "user", "content": f"{text}\nAnswer with exactly one of: {labels}."}]

    def _logprob_settings(self, batch_size: int) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=1, temperature=0.0, top_p=1.0, repetition_penalty=1.0, stop=(),
                                  batch_size=batch_size, top_logprobs=self.label_top_logprobs).validate()

    def _logprob_read(self, c: Completion, keys: Sequence[str]) -> LabelRead | None:
        """A row's read from its reply's first-token distribution; None when the reply has none to read."""
        top = first_token_distribution(c.logprobs[0]) if c.logprobs else []
        return read_top_tokens(top, keys) if top else None

    def _without_logprobs(self, asks: list[Prompt], keys: Sequence[str], batch_size: int,
                          refusal: str | None) -> list[LabelRead | None]:
        """The rows' reads from a server that gives no log-probabilities: votes when they are on, else the
        error that says what to do."""
        if not self.label_votes:
            why = refusal or "its replies carry `logprobs: null`"
            raise NoLogprobs(
                f"The teacher server gives no log-probabilities ({why}), so it cannot give soft labels: turn on "
                "label votes (label_votes, e.g. 5 sampled answers per text, 5× the requests) to estimate them, or "
                "use a server that returns `logprobs`."
            )
        self.label_stats.method = "votes"
        v = self.label_votes
        settings = GenerationSettings(
            max_new_tokens=max(estimate_tokens(k) for k in keys) + 2, temperature=1.0, top_p=1.0,
            repetition_penalty=1.0, stop=default_stop(STOP_STYLE[self.label_endpoint]),
            batch_size=batch_size,
        ).validate()
        replies = self._run([a for a in asks for _ in range(v)], settings, self.label_endpoint)  # seeds differ
        answers = [[c.text for c in replies[i * v : (i + 1) * v] if c.finish_reason != "error"]
                   for i in range(len(asks))]
        return [read_votes(a, keys) if a else None for a in answers]

    def _tally(self, reads: list[LabelRead | None]) -> np.ndarray:
        """The rows' probabilities, [N, K], added to `label_stats`; a row without a read is uniform."""
        stats = self.label_stats
        width = next((len(r.probs) for r in reads if r is not None), 1)
        rows = []
        for r in reads:
            stats.rows += 1
            if r is None:
                stats.failed += 1
                rows.append(np.ones(width))
                continue
            stats.floored += r.floored
            stats.rows_floored += r.floored > 0
            stats.ambiguous += r.ambiguous
            rows.append(r.probs)
        return np.vstack(rows)

    def _status_error(self, e: openai.APIStatusError) -> Exception:
        code = e.status_code
        if code in RETRYABLE_STATUS or code >= 500:
            return _Retryable(f"HTTP {code}", parse_retry_after(e.response.headers))
        if code == 401:
            return TeacherError(
                "The server rejected the API key (HTTP 401): check the key in the teacher settings or OPENAI_API_KEY."
            )
        if code == 403:
            return TeacherError(f"The API key may not use model '{self.model}' (HTTP 403): check the key's project and permissions.")
        if code == 404:
            return TeacherError(
                f"The server does not know the model '{self.model}' (HTTP 404): check the model name"
                + (f" and that the base URL ({self.base_url}) ends in /v1." if self.base_url else ".")
            )
        detail = self._scrub(_server_message(e.body) or "")[:300]
        err = TeacherError(f"The server refused the request (HTTP {code})" + (f": {detail}" if detail else "."))
        # a model or engine without log-probabilities often says so with a 400 (o1-style models, llama.cpp under
        # `gold serve`): for a label read that means "no log-probabilities", not a broken request
        refuses = code == 400 and bool(_LOGPROB_WORDS.search(detail))
        err.logprobs_refusal = f"HTTP 400: {detail.rstrip('.')}" if refuses else None  # type: ignore[attr-defined]
        return err

    def _parse(self, text: str, settings: GenerationSettings, prompt: Prompt,
               endpoint: Endpoint = "chat") -> Completion:
        kind, part = ("chat completion", "message content") if endpoint == "chat" else ("text completion", "text")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise _content_error(
                f"The server's reply is not valid JSON (starts with {self._scrub(str(text)[:80])!r}); "
                "is the base URL an OpenAI-compatible /v1 endpoint?"
            ) from None
        if not isinstance(data, dict):
            raise _content_error(f"The server's reply is JSON but not an object; expected a {kind}.")
        choices = data.get("choices")
        if not isinstance(choices, list):
            raise _content_error(f"The server's reply has no 'choices' list; expected a {kind}.")
        if not choices:
            raise _content_error("The server returned no choices (an empty 'choices' list); nothing was generated.")
        choice = choices[0] if isinstance(choices[0], dict) else {}
        content, refused = _choice_text(choice) if endpoint == "chat" else (choice.get("text"), False)
        if content is None and not refused:
            raise _content_error(f"The server's reply has a choice without {part}.")
        content = str(content or "")
        content, hit = truncate_at_stop(content, settings.stops_for(STOP_STYLE[endpoint]))
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        # a server without usage (some compatible ones) still gets counted, by the conservative estimate
        prompt_tokens = _int(usage.get("prompt_tokens")) or estimate_tokens(prompt_text(prompt))
        completion_tokens = _int(usage.get("completion_tokens"))
        finish = str(choice.get("finish_reason") or ("stop" if hit else "length"))
        if refused and not content:
            finish = "error"
        return Completion(
            content,
            prompt_tokens,
            completion_tokens if completion_tokens or not content else estimate_tokens(content),
            "length" if finish == "length" else ("error" if finish == "error" else "stop"),
            logprobs=parse_logprobs(choice.get("logprobs")) if settings.top_logprobs is not None else None,
        )


def _choice_text(choice: dict[str, Any]) -> tuple[object, bool]:
    """A chat choice's message content, and whether the model refused (a refusal may come without content)."""
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    return message.get("content"), bool(message.get("refusal"))


def _content_error(message: str) -> TeacherError:
    """A reply that arrived but cannot be used: with errors='return' it becomes an error completion."""
    e = TeacherError(message)
    e.recoverable = True  # type: ignore[attr-defined]
    return e


def _server_message(body: object) -> str | None:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or "") or None
        return str(err)
    return str(body) if body else None


def _int(x: object) -> int:
    try:
        return max(0, int(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0

"""OpenAITeacher: chat completions from the OpenAI API or any OpenAI-compatible server (vLLM, TGI, llama.cpp).

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
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import openai

from gold.teachers.base import (
    BudgetExceeded,
    Completion,
    GenerationSettings,
    Prompt,
    ProgressFn,
    TeacherError,
    Usage,
    estimate_tokens,
    prompt_text,
    truncate_at_stop,
)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_KEYLIKE = re.compile(r"\b(sk|pk|rk|key)[-_][A-Za-z0-9_\-*]{6,}")
MAX_STOPS = 4  # the OpenAI API accepts at most 4 stop sequences


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
    is sent as a single user message."""

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
        """
        if not model or not model.strip():
            raise TeacherError("No model name given: say which model the server should use (e.g. 'gpt-4o-mini').")
        if errors not in ("raise", "return"):
            raise ValueError("errors must be 'raise' or 'return'")
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

        Raises BudgetExceeded before a batch that could pass the budget; the completions finished so far are
        on the exception (`.completions`), so the caller keeps what it paid for.
        """
        settings = (settings or GenerationSettings()).validate()
        width = min(settings.batch_size, self.max_concurrency)
        out: list[Completion] = []
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="openai-teacher") as pool:
            for start in range(0, len(prompts), width):
                chunk = prompts[start : start + width]
                self._check_budget(chunk, settings, out)
                futures = [pool.submit(self._one, p, settings, start + j) for j, p in enumerate(chunk)]
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

    def _one(self, prompt: Prompt, settings: GenerationSettings, index: int) -> Completion:
        attempt = 0
        while True:
            try:
                c = self._request(prompt, settings, index)
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
                continue
            except TeacherError as e:
                if self.errors == "return" and getattr(e, "recoverable", False):
                    c = Completion("", 0, 0, "error", error=str(e))
                else:
                    raise
            with self._usage_lock:
                self.usage.add([c])
            return c

    def _request(self, prompt: Prompt, settings: GenerationSettings, index: int) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages(prompt),
            self.token_param: settings.max_new_tokens,
            "n": 1,
        }
        if settings.temperature > 0:
            body.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            body.update(temperature=0.0)
        stops = settings.stops_for("chat")[:MAX_STOPS]
        if stops:
            body["stop"] = list(stops)
        if self.send_seed:
            body["seed"] = settings.seed + index  # distinct per prompt: identical prompts must not collapse
        extra = {"repetition_penalty": settings.repetition_penalty} if self.send_repetition_penalty else None
        try:
            raw = self._client.chat.completions.with_raw_response.create(
                **body, extra_body=extra, timeout=self.timeout_s
            )
            text = raw.text
        except openai.APITimeoutError:
            raise _Retryable(f"no reply within {self.timeout_s:g} s") from None
        except openai.APIConnectionError:
            raise _Retryable(f"could not connect to {self.base_url or 'the OpenAI API'}") from None
        except openai.APIStatusError as e:
            raise self._status_error(e) from None
        return self._parse(text, settings, prompt)

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
        return TeacherError(f"The server refused the request (HTTP {code})" + (f": {detail}" if detail else "."))

    def _parse(self, text: str, settings: GenerationSettings, prompt: Prompt) -> Completion:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise _content_error(
                f"The server's reply is not valid JSON (starts with {self._scrub(str(text)[:80])!r}); "
                "is the base URL an OpenAI-compatible /v1 endpoint?"
            ) from None
        if not isinstance(data, dict):
            raise _content_error("The server's reply is JSON but not an object; expected a chat completion.")
        choices = data.get("choices")
        if not isinstance(choices, list):
            raise _content_error("The server's reply has no 'choices' list; expected a chat completion.")
        if not choices:
            raise _content_error("The server returned no choices (an empty 'choices' list); nothing was generated.")
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        content = message.get("content")
        if content is None and not message.get("refusal"):
            raise _content_error("The server's reply has a choice without message content.")
        content = str(content or "")
        content, hit = truncate_at_stop(content, settings.stops_for("chat"))
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        # a server without usage (some compatible ones) still gets counted, by the conservative estimate
        prompt_tokens = _int(usage.get("prompt_tokens")) or estimate_tokens(prompt_text(prompt))
        completion_tokens = _int(usage.get("completion_tokens"))
        finish = str(choice.get("finish_reason") or ("stop" if hit else "length"))
        if message.get("refusal") and not content:
            finish = "error"
        return Completion(
            content,
            prompt_tokens,
            completion_tokens if completion_tokens or not content else estimate_tokens(content),
            "length" if finish == "length" else ("error" if finish == "error" else "stop"),
        )


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

"""`python -m gold serve`: a local teacher (the embedded SmolLM2 by default) behind an OpenAI-compatible HTTP API.

What it is for:
- One loaded teacher shared by several workers (each would otherwise load its own copy: ~15 s and ~1 GB), e.g.
  a GPU machine serving workers elsewhere that point their `openai` teacher at it.
- A real OpenAI-compatible endpoint to exercise the `openai` teacher backend (`gold.teachers.remote`) end to
  end: no network, no cost, real token counts and finish reasons.

Why it is built this way:
- Standard library only (`http.server`): a small server needs no new dependency. `ThreadingHTTPServer`, so a
  long generation never blocks `/v1/models` or `/health`.
- One generation at a time (LocalTeacher holds a lock), and concurrent requests are NOT merged into one batch:
  the OpenAI `seed` is per request while LocalTeacher seeds per batch, so a merged batch would make a reply
  depend on whichever requests happened to arrive beside it. A `/v1/completions` request with a list of
  prompts is one batch, as a client asked for it.
- Sampling defaults follow the OpenAI API, not GOLD's recipe (temperature 1, top_p 1, no repetition penalty,
  no stop, a random seed), so the server behaves like the servers it stands in for; a client that wants the
  recipe sends it (OpenAITeacher does, and sends `repetition_penalty` when told the server accepts it).
- Log-probabilities in the OpenAI shapes (`logprobs`/`top_logprobs` on chat, `logprobs: k` and `echo` on
  completions, with `max_tokens: 0` to score a prompt only, as vLLM allows): a client reading a teacher's belief
  in a label over HTTP (`OpenAITeacher.label_loglik`) gets from here what the in-process teacher computes for
  the same text. An engine without them (llama.cpp) answers a 400 that names the engine that has them, rather than
  a reply silently missing them.
- Errors come in the OpenAI shape (`{"error": {"message", "type", "param", "code"}}`) with the status codes
  clients branch on (400 bad request, 401 key, 404 unknown model or route, 413 body too large, 500 the model
  failed), so SDKs raise their usual exceptions. The key is compared in constant time, never logged and
  never echoed.
"""

from __future__ import annotations

import hmac
import json
import random
import socket
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gold.models import DEFAULT_TEACHER
from gold.teachers.base import Completion, GenerationSettings, Prompt, Teacher, TokenLogprob

API_KEY_ENV = "GOLD_SERVE_API_KEY"
MAX_STOPS = 4  # as the OpenAI API
MAX_TOP_LOGPROBS = 20  # as the OpenAI API
LOGPROB_FLOOR = -9999.0  # what the OpenAI API sends for an impossible token: JSON has no -Infinity
CHAT_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ServeError(RuntimeError):
    """The server could not start (port taken, model missing); the message says what to do."""


@dataclass(frozen=True)
class ServeConfig:
    """How `python -m gold serve` runs.

    Attributes:
        host: interface to bind; loopback by default, like the app (put an authenticating proxy in front, or
            set `api_key`, before binding anything wider).
        port: TCP port; 0 picks a free one (the printed base URL says which).
        model: the model to serve, as typed in the teacher settings (an `embedded:` name, a local folder or a
            .gguf file); it is also the name clients put in `model`.
        threads: CPU threads for generation (None: torch's default; llama.cpp: OMP_NUM_THREADS, else every core).
        engine: "transformers" or "llama.cpp" (GGUF only, optional package; one request at a time either way).
        gguf_weights: llama.cpp only: the file's own weights or an F16 copy (`gold.teachers.gguf_weights`).
        device: "cpu" or "cuda" (None: CUDA when present).
        api_key: when set, every /v1 request must carry `Authorization: Bearer <api_key>` (kept out of repr).
        default_max_tokens: new tokens per reply when a request names none (the OpenAI API has no fixed default).
        max_tokens_limit: the most new tokens one request may ask for.
        max_body_bytes: larger request bodies are refused (413) before they are read.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = DEFAULT_TEACHER
    threads: int | None = None
    engine: str = "transformers"
    gguf_weights: str = "auto"
    device: str | None = None
    api_key: str | None = field(default=None, repr=False)
    default_max_tokens: int = 256
    max_tokens_limit: int = 4096
    max_body_bytes: int = 4 * 1024 * 1024


class ApiError(Exception):
    """A request the server will not serve, answered as an OpenAI-style JSON error."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# -- request parsing (pure: no model needed) -------------------------------------------------------------------

def _number(body: dict[str, Any], name: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"'{name}' must be a number.", param=name)
    if value > hi or value < lo or (lo_open and value == lo):
        raise ApiError(400, f"'{name}' must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], not {value}.", param=name)
    return float(value)


def _integer(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{name}' must be an integer.", param=name)
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be true or false.", param=name)
    return value


def _top_count(body: dict[str, Any], name: str) -> int | None:
    value = _integer(body, name)
    if value is not None and not 0 <= value <= MAX_TOP_LOGPROBS:
        raise ApiError(400, f"'{name}' must be between 0 and {MAX_TOP_LOGPROBS}, not {value}.", param=name)
    return value


def chat_top_logprobs(body: dict[str, Any]) -> int | None:
    """Alternatives per token a chat request asks for (`logprobs: true`, `top_logprobs: k`); None = no
    log-probabilities. `top_logprobs` alone is refused, as the OpenAI API does, so a client that forgot
    `logprobs` learns it instead of getting a reply without them."""
    wanted = _flag(body, "logprobs")
    top = _top_count(body, "top_logprobs")
    if top is not None and not wanted:
        raise ApiError(400, "'top_logprobs' needs 'logprobs': true.", param="top_logprobs")
    return (top or 0) if wanted else None


def completion_top_logprobs(body: dict[str, Any]) -> int | None:
    """Alternatives per token a completions request asks for (`logprobs: k`, the legacy form); None = none."""
    return _top_count(body, "logprobs")


def requested_tokens(body: dict[str, Any], config: ServeConfig, allow_zero: bool = False) -> int:
    """New tokens the request asks for (`max_completion_tokens`, else `max_tokens`, else the server's default).
    0 only where `allow_zero`: with echo, the prompt alone is scored."""
    max_tokens = _integer(body, "max_completion_tokens")
    max_tokens = _integer(body, "max_tokens") if max_tokens is None else max_tokens
    if max_tokens is None:
        return config.default_max_tokens
    lo = 0 if allow_zero else 1
    if not lo <= max_tokens <= config.max_tokens_limit:
        hint = " (0, to score the prompt only, needs 'echo': true on /v1/completions)" if max_tokens == 0 else ""
        raise ApiError(400, f"'max_tokens' must be between {lo} and {config.max_tokens_limit}{hint}.",
                       param="max_tokens")
    return max_tokens


def generation_settings(body: dict[str, Any], config: ServeConfig, batch: int = 1, top_logprobs: int | None = None,
                        max_tokens: int | None = None) -> GenerationSettings:
    """The request's sampling fields as GenerationSettings, with the OpenAI API's defaults and ranges.
    `max_tokens`: already read by the caller (`requested_tokens`); None = read it here."""
    if body.get("stream"):
        raise ApiError(400, "Streaming is not supported by this server; send the request without 'stream'.",
                       param="stream")
    n = _integer(body, "n")
    if n not in (None, 1):
        raise ApiError(400, "Only n=1 is supported: send one request per reply you want.", param="n")
    if max_tokens is None:
        max_tokens = requested_tokens(body, config)
    stop = body.get("stop")
    stops: tuple[str, ...] = ()
    if isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    elif stop is not None:
        raise ApiError(400, "'stop' must be a string or a list of strings.", param="stop")
    if len(stops) > MAX_STOPS or any(not s for s in stops):
        raise ApiError(400, f"'stop' takes at most {MAX_STOPS} non-empty strings.", param="stop")
    seed = _integer(body, "seed")
    return GenerationSettings(
        max_new_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True),
        repetition_penalty=_number(body, "repetition_penalty", 1.0, 0.0, 5.0, lo_open=True),
        seed=random.SystemRandom().randrange(2**31) if seed is None else seed % (2**63),
        stop=stops,  # explicit: an empty tuple means no stop (None would mean GOLD's per-style default)
        batch_size=max(1, min(batch, 16)),
        top_logprobs=top_logprobs,
    )


def chat_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    """`messages` checked and flattened to {role, content} strings (text content parts are joined)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects.", param="messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in CHAT_ROLES:
            raise ApiError(400, f"messages[{i}] needs a role: one of {', '.join(CHAT_ROLES)}.", param="messages")
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text ones can be served by a text model
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise ApiError(400, f"messages[{i}]: only text content parts are supported.", param="messages")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{i}] needs a string 'content'.", param="messages")
        out.append({"role": CHAT_ROLES[m["role"]], "content": content})
    return out


def completion_prompts(body: dict[str, Any]) -> list[str]:
    """`prompt` as a list of strings: one string, or a batch of them (token-id prompts are not supported)."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompt = [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise ApiError(400, "'prompt' must be a string or a non-empty list of strings.", param="prompt")
    if any(not p for p in prompts):
        raise ApiError(400, "A prompt is empty: the model needs at least one token to continue.", param="prompt")
    return prompts


# -- responses ------------------------------------------------------------------------------------------------

def _usage(completions: list[Completion]) -> dict[str, int]:
    p = sum(c.prompt_tokens for c in completions)
    c = sum(c.completion_tokens for c in completions)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _finish(c: Completion) -> str:
    return "length" if c.finish_reason == "length" else "stop"


def _logprob(value: float | None) -> float | None:
    return None if value is None else max(float(value), LOGPROB_FLOOR)


def _entry(token: str, logprob: float | None) -> dict[str, Any]:
    return {"token": token, "logprob": _logprob(logprob), "bytes": list(token.encode("utf-8"))}


def chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    """A chat choice's `logprobs`: one `content` entry per generated token, its alternatives best first."""
    return {"content": [{**_entry(e.token, e.logprob), "top_logprobs": [_entry(t, lp) for t, lp in e.top]}
                        for e in entries]}


def legacy_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    """A completions choice's `logprobs` (the legacy parallel lists). An echoed prompt's first token has no
    log-probability and no alternatives (null, as the OpenAI API sends); alternatives are {token: logprob},
    the first (most likely) kept when two tokens read the same."""
    tops: list[dict[str, float | None] | None] = []
    for e in entries:
        top: dict[str, float | None] = {}
        for t, lp in e.top:
            top.setdefault(t, _logprob(lp))
        tops.append(None if e.logprob is None else top)
    return {"tokens": [e.token for e in entries], "token_logprobs": [_logprob(e.logprob) for e in entries],
            "top_logprobs": tops, "text_offset": [e.offset for e in entries]}


def chat_response(model: str, c: Completion) -> dict[str, Any]:
    logprobs = None if c.logprobs is None else chat_logprobs(c.logprobs)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text}, "logprobs": logprobs,
                     "finish_reason": _finish(c)}],
        "usage": _usage([c]),
    }


def completion_choice(index: int, prompt: str, c: Completion, echo: bool,
                      echoed: list[TokenLogprob] | None = None) -> dict[str, Any]:
    """One completions choice. With `echo` the text starts with the prompt and the logprobs lists with the
    prompt's tokens (`echoed`); `text_offset` always indexes into the choice's own `text`."""
    text = prompt + c.text if echo else c.text
    logprobs = None
    if c.logprobs is not None:
        shift = len(prompt) if echo else 0
        entries = list(echoed or []) + [replace(e, offset=e.offset + shift) for e in c.logprobs]
        logprobs = legacy_logprobs(entries)
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": _finish(c)}


def completions_response(model: str, choices: list[dict[str, Any]], completions: list[Completion]) -> dict[str, Any]:
    return {
        "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model,
        "choices": choices, "usage": _usage(completions),
    }


# -- the server -----------------------------------------------------------------------------------------------

class TeacherServer(ThreadingHTTPServer):
    """The HTTP server: binds at construction (so a taken port fails at once), serves `teacher`."""

    daemon_threads = True  # a client that hangs up mid-generation must not keep the process alive

    def __init__(self, config: ServeConfig, teacher: Teacher | None = None):
        if ":" in config.host:
            self.address_family = socket.AF_INET6
        self.config = config
        self.teacher = teacher
        self.started = int(time.time())
        try:
            super().__init__((config.host, config.port), _Handler)
        except OSError as e:
            raise ServeError(f"Cannot listen on {config.host}:{config.port}: {e.strerror or e}. "
                             "Pick another --port (0 picks a free one).") from None

    @property
    def base_url(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server_address[1]}/v1"

    @property
    def model_ids(self) -> set[str]:
        """Names a request may give in `model`: the one served, and the model's own name."""
        return {self.config.model, str(getattr(self.teacher, "name", self.config.model))}

    def load(self) -> Teacher:
        """Load the configured model (once); ServeError when it cannot be."""
        if self.teacher is None:
            from gold.models import ModelNotFound
            from gold.teachers.base import TeacherError
            from gold.teachers import local_teacher

            try:
                self.teacher = local_teacher(self.config.model, self.config.engine, self.config.device,
                                             threads=self.config.threads, gguf_weights=self.config.gguf_weights)
            except (ModelNotFound, TeacherError) as e:
                raise ServeError(str(e)) from None
        return self.teacher

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that timed out and hung up: expected, not news
        super().handle_error(request, client_address)



def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any] | bytes,
              headers: dict[str, str] | None = None) -> None:
    """One JSON reply (bytes are sent as they are: a test proxy uses this to send deliberately broken JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)

class _Handler(BaseHTTPRequestHandler):
    server: TeacherServer
    protocol_version = "HTTP/1.1"  # keep-alive: the SDKs reuse connections
    server_version = "GOLDServe/1"
    timeout = 300  # an idle keep-alive connection is closed after this long

    # -- plumbing --------------------------------------------------------------------------------------------
    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        try:
            send_json(self, status, body, headers)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True

    def _error(self, e: ApiError) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        self._send(e.status, e.body(), headers)

    def _authorize(self) -> None:
        key = self.server.config.api_key
        if not key:
            return
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            # never echo what was sent: it may be a real key meant for another server
            raise ApiError(401, "Invalid or missing API key: send 'Authorization: Bearer <key>' with the server's key.",
                           code="invalid_api_key")

    def _read_json(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # a body we cannot delimit would corrupt the next request
            raise ApiError(411, "A Content-Length header is required.")
        if int(length) > self.server.config.max_body_bytes:
            self.close_connection = True
            raise ApiError(413, f"The request body is over {self.server.config.max_body_bytes} bytes.")
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"The request body is not valid JSON ({e}).") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return body

    def _model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if model is None:
            return self.server.config.model
        if model not in self.server.model_ids:
            raise ApiError(404, f"The model '{model}' does not exist here; this server serves "
                                f"'{self.server.config.model}'.", code="model_not_found", param="model")
        return str(model)

    # -- routes ------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path == "/health":
                return self._send(200, {"status": "ok"})
            self._authorize()
            model = {"id": self.server.config.model, "object": "model", "created": self.server.started,
                     "owned_by": "gold-studio"}
            if path == "/v1/models":
                return self._send(200, {"object": "list", "data": [model]})
            if path.startswith("/v1/models/"):
                if path[len("/v1/models/"):] in self.server.model_ids:
                    return self._send(200, model)
                raise ApiError(404, "No such model.", code="model_not_found")
            raise ApiError(404, f"No route GET {path}.")
        except ApiError as e:
            self._error(e)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = self._read_json()  # read first, so an error reply leaves the connection usable
            self._authorize()
            if path == "/v1/chat/completions":
                return self._chat(body)
            if path == "/v1/completions":
                return self._completions(body)
            raise ApiError(404, f"No route POST {path}.")
        except ApiError as e:
            self._error(e)

    def _chat(self, body: dict[str, Any]) -> None:
        model = self._model(body)
        prompts: list[Prompt] = [chat_messages(body)]
        top = chat_top_logprobs(body)
        settings = generation_settings(body, self.server.config, top_logprobs=top)
        self._require_logprobs(top)
        self._send(200, chat_response(model, self._generate(prompts, settings)[0]))

    def _completions(self, body: dict[str, Any]) -> None:
        model = self._model(body)
        texts = completion_prompts(body)
        top = completion_top_logprobs(body)
        echo = _flag(body, "echo")
        new_tokens = requested_tokens(body, self.server.config, allow_zero=echo)
        settings = generation_settings(body, self.server.config, batch=len(texts), top_logprobs=top,
                                       max_tokens=max(1, new_tokens))  # unused when 0: nothing is generated
        self._require_logprobs(top)
        echoed = [self._prompt_logprobs(t, top) if echo and top is not None else None for t in texts]
        if new_tokens:
            completions = self._generate(list(texts), settings)
        else:
            completions = [self._prompt_only(t, e) for t, e in zip(texts, echoed)]
        choices = [completion_choice(i, t, c, echo, e) for i, (t, c, e) in enumerate(zip(texts, completions, echoed))]
        self._send(200, completions_response(model, choices, completions))

    def _teacher(self) -> Teacher:
        teacher = self.server.teacher
        if teacher is None:
            raise ApiError(503, "The model is still loading; try again in a moment.", type_="server_error")
        return teacher

    def _require_logprobs(self, top: int | None) -> None:
        """Refuse a log-probability request the engine cannot answer (llama.cpp: its binding gives no
        per-token distribution here), naming the engine that can, rather than reply without them."""
        if top is not None and not callable(getattr(self._teacher(), "prompt_logprobs", None)):
            raise ApiError(400, f"Log-probabilities need --engine transformers: this server runs the "
                                f"{self.server.config.engine} engine, which gives none. Restart it with "
                                "`--engine transformers`, or send the request without logprobs.", param="logprobs")

    def _generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]:
        teacher = self._teacher()
        try:
            return teacher.generate(prompts, settings)
        except Exception as e:  # noqa: BLE001 — the client gets a 500 with the reason; the log gets the trace
            raise _model_failed("generate", e) from None

    def _prompt_logprobs(self, text: str, top: int) -> list[TokenLogprob]:
        teacher = self._teacher()
        try:
            return teacher.prompt_logprobs(text, top_logprobs=top)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001
            raise _model_failed("score the prompt", e) from None

    def _prompt_only(self, text: str, echoed: list[TokenLogprob] | None) -> Completion:
        """The reply to `max_tokens: 0` (with echo): nothing generated, the prompt's tokens counted."""
        if echoed is not None:
            return Completion("", len(echoed), 0, "length", logprobs=[])
        teacher = self._teacher()
        try:
            count = teacher.count_tokens(text)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001
            raise _model_failed("count the prompt's tokens", e) from None
        return Completion("", int(count), 0, "length")

    def do_PUT(self) -> None:
        self.close_connection = True  # its body, if any, is left unread
        self._error(ApiError(405, f"Method {self.command} is not allowed here; use GET or POST."))

    do_DELETE = do_PATCH = do_PUT


def _model_failed(what: str, e: Exception) -> ApiError:
    traceback.print_exc(file=sys.stderr)
    return ApiError(500, f"The model failed to {what}: {type(e).__name__}: {e}", type_="server_error")


def serve(config: ServeConfig) -> int:
    """Bind (a taken port fails at once, before the slow model load), load the model, print the base URL, and
    serve until interrupted (Ctrl-C). Returns an exit code; raises ServeError when the port or the model is
    unusable."""
    server = TeacherServer(config)
    try:
        print(f"Loading {config.model}…", flush=True)
        teacher = server.load()
        print(f"Serving {teacher.name} as '{config.model}' at {server.base_url}"
              + (" (API key required)" if config.api_key else " (no API key)"), flush=True)
        print(f"Use it as a teacher: python -m gold run TASK --teacher openai --base-url {server.base_url} "
              f"--model {config.model}", flush=True)
        if config.host not in ("127.0.0.1", "localhost", "::1") and not config.api_key:
            print(f"warning: listening on {config.host} without an API key: anyone who can reach this port can use "
                  f"the model (set {API_KEY_ENV}).", file=sys.stderr, flush=True)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    finally:
        server.server_close()
    return 0

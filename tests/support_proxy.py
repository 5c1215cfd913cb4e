"""A fault-injecting HTTP proxy for teacher tests (imported as `support_proxy`).

It sits between an OpenAI-compatible client and a real upstream server and, request by request, either
forwards or injects a fault: 401, 429 with Retry-After, 500, a hang past the client's timeout, a dropped
connection, a malformed JSON body, an empty `choices` list. Three more forward and then rewrite the real
reply's log-probabilities, as servers that differ from the OpenAI API do: `nologprobs` (`logprobs: null`, a
server or model that gives none), `fewer_top` (only the `keep_top` best alternatives per token, a server
capping them lower) and `split_label` (the token `split[0]` renamed `split[1]`, a tokenizer that splits a
label word, e.g. " positive" read as " posit" + "ive"). `close()` makes the port refuse connections;
`open()` listens on the same port again. Actions come from a script (one per request, in order) and, once
it is used up, from the standing `mode`; every request is logged with the action it got, and the JSON body
of every request that reached the upstream is kept (`forwarded`), so a test can tell what the server saw.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from gold.serve import send_json

ACTIONS = ("forward", "401", "429", "500", "hang", "drop", "malformed", "empty", "nologprobs", "fewer_top",
           "split_label")


class FaultProxy:
    KEEP_TOP = 2  # alternatives per token that `fewer_top` leaves, unless a test sets `keep_top`
    SPLIT = (" positive", " posit")  # the token `split_label` renames and its new text, unless a test sets `split`

    def __init__(self, upstream: str, retry_after: str = "1", hang_s: float = 5.0):
        """upstream: the real server's origin or base URL (only scheme, host and port are used)."""
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.mode = "forward"
        self.keep_top, self.split = self.KEEP_TOP, self.SPLIT
        self.script: deque[str] = deque()
        self.log: list[tuple[str, str]] = []  # (path, action) per request received
        self.forwarded: list[dict] = []  # the JSON body of every request that reached the upstream
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()  # set on close(): hung handlers give up at once
        self.open()

    # -- control ---------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set(self, mode: str, *first: str) -> None:
        """From now on: the actions `first` for the next requests, then `mode` for every later one."""
        for a in (mode, *first):
            if a not in ACTIONS:
                raise ValueError(f"unknown proxy action {a!r}")
        with self.lock:
            self.mode, self.script = mode, deque(first)

    def reset(self) -> None:
        if self._server is None:
            self.open()
        self.set("forward")
        self.keep_top, self.split = self.KEEP_TOP, self.SPLIT
        with self.lock:
            self.log.clear()
            self.forwarded.clear()

    def count(self, action: str | None = None) -> int:
        with self.lock:
            return sum(1 for _, a in self.log if action is None or a == action)

    def open(self) -> None:
        """Listen (again, on the same port once one was picked)."""
        if self._server is not None:
            return
        self._release.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _ProxyHandler)
        server.daemon_threads = True
        server.proxy = self  # type: ignore[attr-defined]
        server.handle_error = lambda request, client_address: None  # clients that hang up are expected here
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        """Stop listening: connections to the port are refused until `open()`."""
        if self._server is None:
            return
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def _next_action(self, path: str) -> str:
        with self.lock:
            action = self.script.popleft() if self.script else self.mode
            self.log.append((path, action))
            return action


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a fault never leaks into the next request

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def proxy(self) -> FaultProxy:
        return self.server.proxy  # type: ignore[attr-defined]

    def _reply(self, status: int, body: bytes | dict, headers: dict[str, str] | None = None) -> None:
        send_json(self, status, body, headers)

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _handle(self, body: bytes) -> None:
        action = self.proxy._next_action(self.path)
        if action == "forward":
            return self._forward(body)
        if action in REWRITES:
            return self._forward(body, REWRITES[action])
        if action == "401":
            # as the OpenAI API does, the error echoes (part of) the key: it must never reach a user-facing message
            token = self.headers.get("Authorization", "").partition(" ")[2]
            return self._reply(401, {"error": {"message": f"Incorrect API key provided: {token}.",
                                               "type": "invalid_request_error", "code": "invalid_api_key"}})
        if action == "429":
            return self._reply(429, {"error": {"message": "Rate limit reached for requests", "type": "requests"}},
                               {"Retry-After": self.proxy.retry_after})
        if action == "500":
            return self._reply(500, {"error": {"message": "The server had an error while processing your request."}})
        if action == "hang":
            self.proxy._release.wait(self.proxy.hang_s)
            self.close_connection = True
            return None  # never answer: the client must time out
        if action == "drop":
            self.close_connection = True
            return None
        if action == "malformed":
            return self._reply(200, b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "trunc')
        if action == "empty":
            return self._reply(200, {"id": "chatcmpl-x", "object": "chat.completion", "choices": [],
                                     "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}})
        raise AssertionError(action)

    def _forward(self, body: bytes, rewrite: Rewrite | None = None) -> None:
        conn = http.client.HTTPConnection(*self.proxy.upstream, timeout=300)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            if body:
                with self.proxy.lock:
                    self.proxy.forwarded.append(json.loads(body))
            resp = conn.getresponse()
            data = resp.read()
            if rewrite is not None and resp.status == 200:
                reply = json.loads(data)
                for choice in reply.get("choices", []):
                    rewrite(self.proxy, choice)
                data = json.dumps(reply).encode("utf-8")
            passed = {k: v for k, v in resp.getheaders() if k.lower() in ("retry-after", "www-authenticate")}
            self._reply(resp.status, data, passed)
        finally:
            conn.close()


# -- rewrites of a forwarded reply's log-probabilities (both OpenAI shapes) ------------------------------------

Rewrite = Callable[[FaultProxy, dict], None]


def _no_logprobs(proxy: FaultProxy, choice: dict) -> None:
    choice["logprobs"] = None


def _fewer_top(proxy: FaultProxy, choice: dict) -> None:
    block = choice.get("logprobs") or {}
    for entry in block.get("content") or []:  # chat: a list per token, best first
        entry["top_logprobs"] = entry["top_logprobs"][: proxy.keep_top]
    tops = block.get("top_logprobs") or []  # completions: a {token: logprob} dict per token
    for i, top in enumerate(tops):
        if top is not None:
            best = sorted(top.items(), key=lambda kv: -kv[1])[: proxy.keep_top]
            tops[i] = dict(best)


def _split_label(proxy: FaultProxy, choice: dict) -> None:
    whole, piece = proxy.split
    block = choice.get("logprobs") or {}
    for entry in block.get("content") or []:
        for e in [entry, *entry["top_logprobs"]]:
            if e["token"] == whole:
                e["token"], e["bytes"] = piece, list(piece.encode("utf-8"))
    if "tokens" in block:
        block["tokens"] = [piece if t == whole else t for t in block["tokens"]]
    tops = block.get("top_logprobs") or []
    for i, top in enumerate(tops):
        if top is not None:
            tops[i] = {piece if t == whole else t: lp for t, lp in top.items()}


REWRITES: dict[str, Rewrite] = {"nologprobs": _no_logprobs, "fewer_top": _fewer_top, "split_label": _split_label}

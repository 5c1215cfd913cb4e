"""OpenAITeacher against a real local HTTP server speaking the chat-completions protocol.

The server (stdlib, 127.0.0.1, random port, own thread) plays a script per prompt: success with usage,
429 with Retry-After, 500, 401, 404, a hang past the client timeout, malformed JSON, an empty choices list.
Scripts are keyed by the prompt text, so concurrent requests stay deterministic.
"""

from __future__ import annotations

import email.utils
import json
import pickle
import threading
import time
import traceback
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gold.serve import send_json
from gold.teachers.base import BudgetExceeded, GenerationSettings, Teacher, TeacherError
from gold.teachers.remote import OpenAITeacher, RetryPolicy, parse_retry_after

KEY = "sk-test-SECRET-0123456789abcdef"
FAST = RetryPolicy(max_retries=3, base_s=0.01, max_wait_s=5)


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.scripts: dict[str, deque] = defaultdict(deque)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out closes its socket: the broken pipe is expected, not news

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def script(self, prompt: str, *behaviours) -> None:
        self.scripts[prompt].extend(behaviours)

    def count(self, prompt: str) -> int:
        return sum(1 for r in self.requests if r["prompt"] == prompt)


class Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, body: bytes | dict, headers: dict | None = None) -> None:
        send_json(self, code, body, headers)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        srv = self.server
        with srv.lock:
            srv.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body, "prompt": prompt})
            action = srv.scripts[prompt].popleft() if srv.scripts[prompt] else "ok"
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": "no such route"}})
            if self.headers.get("Authorization") != f"Bearer {KEY}" and action != "hang":
                action = "401"
            time.sleep(srv.delay)
            self._act(action, body, prompt)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _act(self, action, body: dict, prompt: str) -> None:
        if isinstance(action, tuple) and action[0] == "429":
            return self._send(429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"Retry-After": action[1]})
        if action == "500":
            return self._send(500, {"error": {"message": "The server had an error"}})
        if action == "401":
            # a real 401 echoes part of the key: it must not reach our messages
            return self._send(401, {"error": {"message": f"Incorrect API key provided: {KEY}.", "code": "invalid_api_key"}})
        if action == "404":
            return self._send(404, {"error": {"message": f"The model `{body['model']}` does not exist", "code": "model_not_found"}})
        if action == "hang":
            time.sleep(1.5)
        if action == "malformed":
            return self._send(200, b'{"choices": [ {"message": ')
        if action == "empty":
            return self._send(200, {"id": "x", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 0}})
        text = f"reply to {prompt}" if action in ("ok", "hang") else str(action)
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        })


@pytest.fixture
def server():
    srv = ScriptedServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def teacher(server: ScriptedServer, **kw) -> OpenAITeacher:
    kw.setdefault("retry", FAST)
    kw.setdefault("timeout_s", 5)
    return OpenAITeacher("tiny-model", api_key=KEY, base_url=server.base_url, **kw)


def settings(**kw) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=16, **kw)


def assert_no_key(*texts: str) -> None:
    for t in texts:
        assert KEY not in t
        assert "SECRET" not in t


def test_success_in_order_with_usage_and_request_shape(server):
    t = teacher(server, price_prompt_per_1m=1.0, price_completion_per_1m=2.0)
    assert isinstance(t, Teacher) and t.prompt_style == "chat"
    prompts = ["p0", "p1", [{"role": "system", "content": "be brief"}, {"role": "user", "content": "p2"}]]
    out = t.generate(prompts, settings(seed=5, stop=("END",)))
    assert [c.text for c in out] == ["reply to p0", "reply to p1", "reply to p2"]
    assert all(c.prompt_tokens == 10 and c.completion_tokens == 5 and c.finish_reason == "stop" for c in out)
    assert (t.usage.prompt_tokens, t.usage.completion_tokens, t.usage.requests) == (30, 15, 3)
    assert t.usage.cost_usd == pytest.approx((30 * 1.0 + 15 * 2.0) / 1e6)
    bodies = sorted((r["body"] for r in server.requests), key=lambda b: b["messages"][-1]["content"])
    assert all(r["path"] == "/v1/chat/completions" and r["auth"] == f"Bearer {KEY}" for r in server.requests)
    assert [b["seed"] for b in bodies] == [5, 6, 7]  # distinct per prompt
    assert all(b["model"] == "tiny-model" and b["max_tokens"] == 16 and b["stop"] == ["END"] for b in bodies)
    assert all(b["temperature"] == 0.9 and b["top_p"] == 0.95 and "repetition_penalty" not in b for b in bodies)
    assert bodies[2]["messages"][0] == {"role": "system", "content": "be brief"}


def test_repetition_penalty_only_when_the_server_takes_it(server):
    teacher(server, send_repetition_penalty=True).generate(["p"], settings())
    assert server.requests[-1]["body"]["repetition_penalty"] == 1.2


def test_429_honours_retry_after_then_succeeds(server):
    server.script("p", ("429", "0.4"))
    t = teacher(server)
    start = time.perf_counter()
    out = t.generate(["p"], settings())
    assert time.perf_counter() - start >= 0.4  # the header's wait, not the 10 ms backoff
    assert out[0].text == "reply to p" and server.count("p") == 2 and t.retries == 1


def test_500_then_success_with_backoff(server):
    server.script("p", "500", "500")
    t = teacher(server)
    assert t.generate(["p"], settings())[0].text == "reply to p"
    assert server.count("p") == 3 and t.retries == 2
    assert t.usage.requests == 1  # the failed tries cost nothing and are not counted as replies


def test_persistent_5xx_gives_up_with_a_clear_error(server):
    server.script("p", *["500"] * 10)
    with pytest.raises(TeacherError, match=r"kept failing \(HTTP 500\) after 4 tries"):
        teacher(server).generate(["p"], settings())
    assert server.count("p") == 4


def test_401_is_not_retried_and_never_shows_the_key(server):
    server.script("p", "401")
    t = teacher(server)
    with pytest.raises(TeacherError) as info:
        t.generate(["p"], settings())
    e = info.value
    assert "401" in str(e) and "API key" in str(e)
    assert server.count("p") == 1
    assert e.__cause__ is None and e.__suppress_context__  # the SDK error (with headers) is not chained
    assert_no_key(str(e), repr(e), "".join(traceback.format_exception(e)), repr(t), str(t))


def test_wrong_key_is_rejected(server):
    t = OpenAITeacher("tiny-model", api_key="sk-wrong-key-000000", base_url=server.base_url, retry=FAST)
    with pytest.raises(TeacherError, match="rejected the API key"):
        t.generate(["p"], settings())


def test_404_names_the_model(server):
    server.script("p", "404")
    with pytest.raises(TeacherError, match="does not know the model 'tiny-model'"):
        teacher(server).generate(["p"], settings())


def test_hang_past_timeout_is_retried_then_fails(server):
    server.script("p", "hang", "hang")
    t = teacher(server, timeout_s=0.3, retry=RetryPolicy(max_retries=1, base_s=0.01))
    start = time.perf_counter()
    with pytest.raises(TeacherError, match=r"no reply within 0.3 s\) after 2 tries"):
        t.generate(["p"], settings())
    assert time.perf_counter() - start < 1.4  # did not wait for the server's 1.5 s
    assert server.count("p") == 2


def test_timeout_then_success(server):
    server.script("p", "hang")
    t = teacher(server, timeout_s=0.3)
    assert t.generate(["p"], settings())[0].text == "reply to p" and t.retries == 1


def test_malformed_json_is_a_clear_error(server):
    server.script("p", "malformed")
    with pytest.raises(TeacherError, match="not valid JSON"):
        teacher(server).generate(["p"], settings())
    assert server.count("p") == 1


def test_empty_choices_is_a_clear_error(server):
    server.script("p", "empty")
    with pytest.raises(TeacherError, match="no choices"):
        teacher(server).generate(["p"], settings())


def test_errors_return_mode_keeps_the_batch_going(server):
    server.script("bad", "malformed")
    server.script("none", "empty")
    out = teacher(server, errors="return").generate(["ok", "bad", "none"], settings())
    assert out[0].text == "reply to ok"
    assert [c.finish_reason for c in out[1:]] == ["error", "error"]
    assert "not valid JSON" in out[1].error and "no choices" in out[2].error


def test_budget_stops_before_the_batch_that_would_exceed_it(server):
    # $1 per 1k tokens: one request's worst case is ~ (prompt + 4 + 16 tokens) => ~$0.02
    t = teacher(server, price_prompt_per_1m=1000.0, price_completion_per_1m=1000.0, budget_usd=0.05)
    worst = t.estimate_cost(["p0", "p1"], settings(batch_size=2))
    assert 0.02 < worst < 0.05
    with pytest.raises(BudgetExceeded) as info:
        t.generate([f"p{i}" for i in range(6)], settings(batch_size=2))
    # batch 1 (2 requests, $0.03 actual) fits; batch 2's worst case would pass $0.05: nothing of it was sent
    assert len(server.requests) == 2
    assert [c.text for c in info.value.completions] == ["reply to p0", "reply to p1"]
    assert t.usage.cost_usd == pytest.approx(0.03)
    assert "budget" in str(info.value)
    with pytest.raises(TeacherError, match="prices"):
        teacher(server, budget_usd=1.0)  # a budget without prices could never stop anything


def test_concurrency_is_bounded(server):
    server.delay = 0.2
    t = teacher(server, max_concurrency=3)
    start = time.perf_counter()
    out = t.generate([f"p{i}" for i in range(6)], settings(batch_size=8))
    elapsed = time.perf_counter() - start
    assert [c.text for c in out] == [f"reply to p{i}" for i in range(6)]
    assert server.max_in_flight <= 3
    assert elapsed < 6 * 0.2  # requests overlapped


def test_key_handling_without_network(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(TeacherError, match="OPENAI_API_KEY"):
        OpenAITeacher("gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    t = OpenAITeacher("gpt-4o-mini")
    assert t.token_param == "max_completion_tokens"  # the OpenAI API's newer models refuse max_tokens
    assert_no_key(repr(t), str(t), repr(vars(t).get("usage")))
    with pytest.raises(TypeError):
        pickle.dumps(t)
    # a local server may go without a key
    monkeypatch.delenv("OPENAI_API_KEY")
    assert OpenAITeacher("m", base_url="http://127.0.0.1:9/v1").token_param == "max_tokens"


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < parse_retry_after({"retry-after": later}) <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None

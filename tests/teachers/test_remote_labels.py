"""Soft labels from a remote teacher: `OpenAITeacher.label_loglik`, its vote fallback and `soft_label_support`,
against a real local HTTP server that plays a label distribution on /v1/completions and /v1/chat/completions
in the shapes real servers send (the OpenAI legacy lists, the chat `content` list, which llama-server also
sends on /v1/completions, `logprobs: null`, a 400 refusing log-probabilities). The same against `gold serve`
and the real model, and through the fault proxy, is in tests/test_serve.py.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from gold.serve import send_json
from gold.teachers.base import BudgetExceeded, NoLogprobs, TokenLogprob
from gold.teachers.label_reads import (
    answer_labels,
    label_keys,
    matching_labels,
    parse_logprobs,
    read_top_tokens,
    read_votes,
)
from gold.teachers.remote import OpenAITeacher, RetryPolicy

FAST = RetryPolicy(max_retries=2, base_s=0.01, max_wait_s=1)
SST2 = [" negative", " positive"]
# the embedded teacher's first-token distribution after an SST-2 few-shot prompt, best first (rounded)
DIST = [(" positive", -0.63), (" negative", -0.79), (" Negative", -6.65), (" positively", -7.2),
        (" Positive", -7.72), ("negative", -8.13), (" neutral", -9.0)]


class LabelServer(ThreadingHTTPServer):
    """Answers label reads from `dist` (per prompt, else `default`), in the shape `mode` says:
    "legacy" | "content" (the chat shape, on either endpoint) | "null" | "refuse" (a 400 to any request for
    log-probabilities). A sampled request
    (no logprobs asked) answers `answers[seed % len(answers)]`."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), LabelHandler)
        self.mode = "legacy"
        self.default = DIST
        self.dist: dict[str, list[tuple[str, float]]] = {}
        self.answers = ["positive"]
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        pass

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class LabelHandler(BaseHTTPRequestHandler):
    server: LabelServer

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        chat = self.path == "/v1/chat/completions"
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        with srv.lock:
            srv.requests.append({"path": self.path, "body": body, "prompt": prompt})
        k = body.get("top_logprobs") if chat else body.get("logprobs")
        if srv.mode == "refuse" and k is not None:
            return send_json(self, 400, {"error": {"message": "logprobs are not supported with this model"}})
        dist = srv.dist.get(prompt, srv.default)
        text = "".join(t for t, _ in dist[:1]) if k is not None else srv.answers[body.get("seed", 0) % len(srv.answers)]
        logprobs = None if k is None or srv.mode == "null" else self._logprobs(dist, k, chat)
        choice = {"index": 0, "logprobs": logprobs, "finish_reason": "length"}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        send_json(self, 200, {"id": "x", "object": "chat.completion" if chat else "text_completion",
                              "choices": [choice], "usage": {"prompt_tokens": 50, "completion_tokens": 1}})

    def _logprobs(self, dist: list[tuple[str, float]], k: int, chat: bool) -> dict:
        """One generated token (the first of `dist`; none when `dist` is empty) with the top k listed."""
        chosen = dist[:1]
        if chat or self.server.mode == "content":
            top = [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in dist[:k]]
            return {"content": [{"token": t, "logprob": v, "bytes": list(t.encode()), "top_logprobs": top}
                                for t, v in chosen]}
        return {"tokens": [t for t, _ in chosen], "token_logprobs": [v for _, v in chosen],
                "top_logprobs": [dict(dist[:k]) for _ in chosen], "text_offset": [0 for _ in chosen]}


@pytest.fixture
def server():
    srv = LabelServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def teacher(server: LabelServer, **kw) -> OpenAITeacher:
    return OpenAITeacher("m", api_key="sk-test-0123456789", base_url=server.base_url, retry=FAST, timeout_s=5, **kw)


def expected(dist: list[tuple[str, float]], k: int = 20) -> np.ndarray:
    """The two SST-2 labels' probabilities from `dist`'s top k by the documented rule, computed by hand."""
    p = {t: math.exp(v) for t, v in dist[:k]}
    neg = p.get(" negative", 0) + p.get(" Negative", 0) + p.get("negative", 0)
    pos = p.get(" positive", 0) + p.get(" positively", 0) + p.get(" Positive", 0)
    return np.array([neg, pos])


# -- the mapping rule on its own -------------------------------------------------------------------------------

def test_tokens_map_to_the_labels_they_start_or_are_started_by():
    keys = label_keys([" positive", " negative", " not sure", " not"])
    assert keys == ["positive", "negative", "not sure", "not"]
    assert matching_labels(" Positive", keys) == [0]
    assert matching_labels(" posit", keys) == [0]  # a label split across tokens: its first piece
    assert matching_labels("positive.", keys) == [0]  # a token the label is a prefix of
    assert matching_labels(" not", keys) == [2, 3]  # labels sharing a first piece: ambiguous
    assert matching_labels(" nothing", keys) == [3]  # the longest label it starts with
    assert matching_labels("\n", keys) == [] and matching_labels(" neutral", keys) == []
    for bad in ([], [" yes", " "], [" Yes", "yes"]):
        with pytest.raises(ValueError):
            label_keys(bad)


def test_a_read_sums_variants_splits_shared_tokens_and_floors_missing_labels():
    read = read_top_tokens(DIST, label_keys(SST2))
    assert np.allclose(read.probs, expected(DIST)) and read.floored == 0 and not read.ambiguous

    top = [(" The", -0.5), (" not", -1.0), (" Yes", -2.0)]
    read = read_top_tokens(top, label_keys([" yes", " not sure", " not really", " no"]))
    assert np.allclose(read.probs[:3], [math.exp(-2.0), math.exp(-1.0) / 2, math.exp(-1.0) / 2])
    assert read.ambiguous and read.floored == 1
    assert read.probs[3] == pytest.approx(0.5 * math.exp(-2.0))  # half the smallest listed probability

    read = read_top_tokens([("\n", -0.1)], label_keys(SST2))  # no label listed at all: uniform floors
    assert read.floored == 2 and read.probs[0] == read.probs[1] > 0


def test_votes_read_the_first_line_or_its_first_word():
    keys = label_keys(SST2)
    assert answer_labels("**Positive**", keys) == [1]
    assert answer_labels("\n negative.\nbecause", keys) == [0]
    assert answer_labels("Negative review", keys) == [0]
    assert answer_labels("I think it is positive", keys) == []
    read = read_votes(["positive", "Positive.", "negative", "no idea"], keys)
    assert np.allclose(read.probs, [0.25, 0.5]) and read.floored == 0
    read = read_votes(["positive"] * 5, keys)
    assert np.allclose(read.probs, [0.1, 1.0]) and read.floored == 1  # zero votes: half of one vote


def test_both_logprobs_shapes_parse_to_the_same_entries():
    legacy = {"tokens": ["A", " b"], "token_logprobs": [None, -0.5], "top_logprobs": [None, {" c": -2.0, " b": -0.5}],
              "text_offset": [0, 1]}
    content = {"content": [{"token": " b", "logprob": -0.5, "bytes": [32, 98],
                            "top_logprobs": [{"token": " b", "logprob": -0.5}, {"token": " c", "logprob": -2.0}]}]}
    first, second = parse_logprobs(legacy)
    assert first == TokenLogprob("A", None, [], 0)
    assert second == TokenLogprob(" b", -0.5, [(" b", -0.5), (" c", -2.0)], 1)
    assert parse_logprobs(content) == [TokenLogprob(" b", -0.5, [(" b", -0.5), (" c", -2.0)], 0)]
    assert parse_logprobs(None) is None and parse_logprobs({"content": None, "refusal": None}) is None


# -- label_loglik over HTTP ------------------------------------------------------------------------------------

def test_completions_read_one_token_per_row_with_the_top_20(server):
    server.dist["P:Label: a"] = [(" negative", -0.2), (" positive", -1.8)]
    t = teacher(server, max_concurrency=2)
    assert t.label_endpoint == "completions"
    ll = t.label_loglik(["Label: a", "Label: b", "Label: c"], SST2, prefix="P:")
    assert ll.shape == (3, 2)
    assert np.allclose(np.exp(ll[0]), [math.exp(-0.2), math.exp(-1.8)])
    assert np.allclose(np.exp(ll[1:]), expected(DIST))
    prompts = [r["prompt"] for r in server.requests]  # the first row alone, then the rest side by side
    assert prompts[0] == "P:Label: a" and sorted(prompts[1:]) == ["P:Label: b", "P:Label: c"]
    for r in server.requests:
        b = r["body"]
        assert r["path"] == "/v1/completions" and b["max_tokens"] == 1 and b["temperature"] == 0
        assert b["logprobs"] == 20 and "stop" not in b and "top_p" not in b
    assert t.label_stats.to_dict() == {"rows": 3, "floored": 0, "rows_floored": 0, "failed": 0,
                                       "method": "logprobs", "ambiguous": 0}
    assert t.usage.requests == 3 and t.usage.completion_tokens == 3
    t.label_loglik(["Label: d"], SST2)
    assert t.label_stats.rows == 4  # summed over calls: a caller takes differences


def test_chat_form_asks_for_one_label_and_reads_the_content_shape(server):
    t = teacher(server, label_endpoint="chat", label_top_logprobs=5)
    ll = t.label_loglik(["Label:"], SST2, prefix="Few shot\n")
    assert np.allclose(np.exp(ll[0]), expected(DIST, 5))
    (r,) = server.requests
    assert r["path"] == "/v1/chat/completions"
    assert r["body"]["messages"] == [{"role": "user", "content": "Few shot\nLabel:\n"
                                                                 "Answer with exactly one of: negative, positive."}]
    assert r["body"]["logprobs"] is True and r["body"]["top_logprobs"] == 5 and r["body"]["max_tokens"] == 1
    # the OpenAI API: chat form unless told otherwise
    assert OpenAITeacher("gpt-4o-mini", api_key="sk-test-0123456789").label_endpoint == "chat"


def test_llama_server_style_content_on_completions_reads_the_same(server):
    server.mode = "content"
    ll = teacher(server).label_loglik(["x"], SST2)
    assert np.allclose(np.exp(ll[0]), expected(DIST))


def test_labels_outside_the_listed_tokens_are_floored_and_counted(server):
    server.dist["few"] = [(" positive", -0.3), (" The", -1.5)]
    t = teacher(server)
    ll = t.label_loglik(["few", "full"], SST2)
    assert np.exp(ll[0, 0]) == pytest.approx(0.5 * math.exp(-1.5))
    stats = t.label_stats
    assert (stats.rows, stats.floored, stats.rows_floored, stats.failed) == (2, 1, 1, 0)


def test_no_logprobs_is_a_sentence_saying_what_to_do(server):
    server.mode = "null"
    t = teacher(server)
    with pytest.raises(NoLogprobs) as e:
        t.label_loglik(["a", "b"], SST2)
    msg = str(e.value)
    assert "gives no log-probabilities" in msg and "turn on label votes" in msg and "`logprobs: null`" in msg
    assert len(server.requests) == 1  # the first row told: nothing more was sent

    server.mode, server.requests = "refuse", []
    with pytest.raises(NoLogprobs, match=r"no log-probabilities \(HTTP 400: logprobs are not supported"):
        t.label_loglik(["a"], SST2)


def test_votes_when_the_server_gives_no_logprobs(server):
    server.mode = "null"
    server.answers = ["positive", " Positive.", "negative", "positive", "I cannot say"]  # by seed
    t = teacher(server, label_votes=5)
    ll = t.label_loglik(["a", "b"], SST2)
    assert np.allclose(np.exp(ll), [[0.2, 0.6], [0.2, 0.6]])
    votes = server.requests[1:]
    assert len(votes) == 2 * 5 and len({r["body"]["seed"] for r in votes}) == 10  # distinct seeds
    assert all(r["body"]["temperature"] == 1.0 and "logprobs" not in r["body"] for r in votes)
    assert all(r["body"]["stop"] == ["\n"] for r in votes)
    assert t.label_stats.method == "votes" and t.label_stats.rows == 2

    server.mode, server.requests = "refuse", []  # a 400 refusing log-probabilities falls back the same way
    assert np.allclose(np.exp(teacher(server, label_votes=5).label_loglik(["a"], SST2)), [[0.2, 0.6]])


def test_a_broken_row_reply_is_a_uniform_failed_row_with_errors_return(server):
    server.dist["b"] = []  # a reply whose logprobs list no token
    t = teacher(server, errors="return")
    ll = t.label_loglik(["a", "b"], SST2)
    assert ll[1, 0] == ll[1, 1] and t.label_stats.failed == 1 and t.label_stats.rows == 2


def test_budget_stops_label_reads_before_sending(server):
    t = teacher(server, price_prompt_per_1m=1000.0, price_completion_per_1m=1000.0, budget_usd=0.001)
    with pytest.raises(BudgetExceeded):
        t.label_loglik(["x" * 3000], SST2)
    assert server.requests == []
    # the estimate: the prompt's tokens (+4 overhead) and 1 new token per row
    assert t.estimate_cost(["x" * 300], t._logprob_settings(1)) == pytest.approx((100 + 4 + 1) * 1000 / 1e6)


# -- the probe -------------------------------------------------------------------------------------------------

def test_the_probe_says_what_a_run_will_do(server):
    s = teacher(server).soft_label_support("Label:", SST2)
    assert (s.mode, s.top_logprobs, s.endpoint) == ("logprobs", 7, "completions")  # DIST lists 7
    assert s.sentence.startswith("This server returns log-probabilities, but only the top 7 of the 20 tokens")
    server.default = [(f" t{i}", -0.1 * i) for i in range(30)]
    s = teacher(server).soft_label_support("Label:", SST2)
    assert s.top_logprobs == 20 and s.sentence == (
        "This server returns log-probabilities (top 20 tokens): the teacher's belief in each label becomes the "
        "student's soft targets.")

    server.mode = "null"
    s = teacher(server).soft_label_support("Label:", SST2)
    assert (s.mode, s.top_logprobs) == ("none", 0)
    assert s.sentence == ("This server returns no log-probabilities: the student will train on the labels the "
                          "teacher was asked to write (turn on label votes to estimate soft labels from 5 samples "
                          "per text, 5× the requests).")
    s = teacher(server, label_votes=3).soft_label_support("Label:", SST2)
    assert s.mode == "votes" and "from 3 sampled answers per text (3× the requests)" in s.sentence
    assert len(server.requests) == 4  # one request per probe


def test_the_probe_turns_server_errors_into_a_sentence(server):
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    t = OpenAITeacher("m", base_url=f"http://127.0.0.1:{port}/v1", retry=FAST, timeout_s=2)
    s = t.soft_label_support("Label:", SST2)
    assert s.mode == "none" and s.sentence.startswith("Could not reach the teacher server to check for soft labels")
    assert "Traceback" not in s.sentence and t.retries == 0  # one request, not retried

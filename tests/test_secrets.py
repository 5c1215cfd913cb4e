"""API keys never reach the database, the events, the logs, exported files or the process list.

A key typed into the Runs page (or set in the shell of `gold run`) goes into the environment of one worker
process made for those runs (`worker.spawn_keyed_worker`); the always-on worker, which has no key, must not
claim them. A real run against a local OpenAI-compatible server that insists on the key proves the key was
used; then every byte the product wrote is searched for it, and so is the process list while it ran.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support import start_worker, tiny_settings, tiny_task

KEY = "sk-test-TYPED-IN-THE-PAGE-5f3c9e1a77"
pytestmark = pytest.mark.slow


class SampleServer(ThreadingHTTPServer):
    """Chat completions that answer every request with distinct, valid JSON-lines samples, completions that read a
    label back with its log-probabilities, and 401 without the key."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.counter = itertools.count()
        self.authorized = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: SampleServer

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self._send(401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
        self.server.authorized += 1
        if "prompt" in body:  # a label read back (soft labels): one token with its top alternatives
            top = {" positive": -0.3, " negative": -1.4}
            return self._send(200, {"id": "t", "object": "text_completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0, "text": " positive", "finish_reason": "length",
                                                 "logprobs": {"tokens": [" positive"], "token_logprobs": [-0.3],
                                                              "top_logprobs": [top], "text_offset": [0]}}],
                                    "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21}})
        prompt = body["messages"][-1]["content"]
        n = int(prompt.split("Write ", 1)[1].split()[0]) if "Write " in prompt else 1
        lines = [json.dumps({"text": f"sample number {next(self.server.counter)} of a film that was really something"})
                 for _ in range(n)]
        self._send(200, {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "\n".join(lines)},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 20, "completion_tokens": 15, "total_tokens": 35}})

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    srv = SampleServer()
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv
    srv.shutdown()


def process_list() -> str:
    return subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout


def test_a_typed_key_reaches_only_its_worker_and_never_any_file_or_ps(home, store, server, monkeypatch, tmp_path):
    from gold.export import export_zip
    from gold.runs import start_run
    from gold.specs import TeacherSpec
    from gold.worker import spawn_keyed_worker

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the page's process has no key of its own
    shared = start_worker(home, env_extra={"OPENAI_API_KEY": ""})  # the always-on worker: keyless
    try:
        task_id = tiny_task(store)
        settings = tiny_settings(rounds=1)
        settings.teacher = TeacherSpec(backend="openai", base_url=server.base_url, model="stub-model", timeout_s=20)
        ids = start_run(store, task_id, settings, name="keyed", with_baseline=True, held=True, key_given=True)
        time.sleep(2)  # held runs are not the shared worker's to take, even given time
        assert all(store.get_run(i).status == "held" for i in ids)
        assert spawn_keyed_worker(home, ids, KEY) > 0
        seen_ps = ""
        deadline = time.time() + 600
        while time.time() < deadline and not all(store.get_run(i).status in ("done", "failed") for i in ids):
            seen_ps += process_list()
            time.sleep(1)
        runs = [store.get_run(i) for i in ids]
        assert [r.status for r in runs] == ["done", "done"], [r.error for r in runs]
        assert all(r.worker is None or r.worker.startswith("keyed-") for r in runs)
        assert server.authorized > 0  # the key was really used…
        assert KEY not in seen_ps  # …and never visible in the process list
        export_zip(store, ids[0], tmp_path / "student.zip")
        store.close()
    finally:
        shared.terminate()
        shared.wait(timeout=30)
    needle = KEY.encode()
    leaks = [str(p) for root in (home, tmp_path) for p in root.rglob("*")
             if p.is_file() and needle in p.read_bytes()]
    assert not leaks, f"the key was written to {leaks}"
    import zipfile

    with zipfile.ZipFile(tmp_path / "student.zip") as z:
        assert not [n for n in z.namelist() if needle in z.read(n)]


def test_a_keyless_worker_never_claims_held_runs(store):
    from gold.specs import GoldSettings

    task_id = tiny_task(store)
    run_id = store.create_run(task_id, GoldSettings().to_dict(), held=True)
    assert store.claim_run("shared", stale_after=0) is None
    assert store.reserve_runs([run_id], "keyed-1") == [run_id]
    assert store.get_run(run_id).status == "reserved"
    assert store.claim_run("shared", stale_after=30) is None  # fresh reservation: not stale
    assert store.claim_run("keyed-1", stale_after=30, only=[run_id]) == run_id  # its own worker takes it
    assert store.get_run(run_id).status == "running"
    assert store.claim_run("keyed-1", stale_after=30, only=[run_id]) is None  # running: not claimed twice

"""A nearly full disk under GOLD_HOME: a clear message at start-up (page, CLI), and the worker stops a run before
writing more instead of failing mid-write; nothing already stored is lost and the run resumes once there is room."""

from __future__ import annotations

import os
import subprocess

from support import PYTHON, ROOT, tiny_settings, tiny_task

FULL = {"GOLD_MIN_FREE_MB": str(10**12)}  # more than any disk has: "nearly full" for the test


def test_page_warns_and_still_reads(home, store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    tiny_task(store)
    monkeypatch.setenv("GOLD_AUTOSTART_WORKER", "0")
    monkeypatch.setenv("GOLD_MIN_FREE_MB", FULL["GOLD_MIN_FREE_MB"])
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("MB free" in w.value and "nothing stored so far is affected" in w.value for w in at.warning)
    assert "Tasks (1)" in [h.value for h in at.subheader]  # the data is still shown


def test_cli_warns_on_stderr(home):
    env = {**os.environ, "GOLD_HOME": str(home), **FULL}
    out = subprocess.run([PYTHON, "-m", "gold", "task", "list"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "warning: The disk holding the data folder" in out.stderr


def test_worker_stops_the_run_cleanly_and_it_resumes_later(home, store, monkeypatch):
    from gold.runs import start_run
    from gold.worker import run_worker

    [run_id] = start_run(store, tiny_task(store), tiny_settings(), name="no room")
    monkeypatch.setenv("GOLD_MIN_FREE_MB", FULL["GOLD_MIN_FREE_MB"])
    import signal

    handler = signal.getsignal(signal.SIGTERM)
    try:
        assert run_worker(home, once=True) == 0
    finally:
        signal.signal(signal.SIGTERM, handler)
    run = store.get_run(run_id)
    assert run.status == "failed" and "MB free" in run.error and "Resume" in run.error
    assert store.samples(run_id) == [] and store.rounds(run_id) == []
    store.resume_run(run_id)
    assert store.get_run(run_id).status == "queued"  # ready for a worker once there is room

"""Shared fixtures: every test gets its own GOLD_HOME (a real SQLite file in a temp folder)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from support import start_worker, tiny_settings, tiny_task  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Pages under test must not spawn background workers; tests that need one start it themselves.
os.environ["GOLD_AUTOSTART_WORKER"] = "0"
# Every test has a data folder of its own, but all share one set of converted model copies (gold/model_copies.py),
# as several data folders of a user may: each worker process a test starts then loads the unpacked teacher in
# ~3 s instead of de-quantizing its GGUF for ~20 s. Kept for the session only (a run of the suite starts clean).
_COPIES = tempfile.TemporaryDirectory(prefix="gold-model-copies-")
os.environ["GOLD_MODEL_COPIES"] = _COPIES.name

@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh data folder, set as GOLD_HOME for code (and subprocesses) that read the environment."""
    h = tmp_path / "gold_home"
    monkeypatch.setenv("GOLD_HOME", str(h))
    return h

@pytest.fixture
def store(home):
    from gold.store import Store

    s = Store(home)
    yield s
    s.close()

@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A tiny GOLD run and its baseline twin on SST-2, finished by one real worker process (`worker --once`)
    on the real embedded models. Shared by every test that reads a finished run: treat it as read-only
    (or undo what you change). Returns (home, gold_run_id, baseline_run_id)."""
    from gold.runs import start_run
    from gold.store import Store

    home = tmp_path_factory.mktemp("finished_home")
    store = Store(home)
    task_id = tiny_task(store)
    gold_id, base_id = start_run(store, task_id, tiny_settings(), name="tiny", with_baseline=True)
    store.close()
    proc = start_worker(home, "--once")
    out, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, out[-3000:]
    return home, gold_id, base_id

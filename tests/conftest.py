"""Shared fixtures: every test gets its own GOLD_HOME (a real SQLite file in a temp folder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PYTHON = sys.executable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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

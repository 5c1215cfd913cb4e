"""The data folder: where the database, the runs' artifacts, the worker's log and the teacher's F16 copy live.

A module of its own because both the store and the model-side code (`gold.teachers.gguf_weights`) need it, and the
store depends on the settings, which depend on the teachers."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = "gold_data"


def gold_home(home: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $GOLD_HOME, else ./gold_data."""
    return Path(home or os.environ.get("GOLD_HOME") or DEFAULT_HOME).expanduser().resolve()

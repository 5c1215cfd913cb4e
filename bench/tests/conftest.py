"""The bench's own tests: bench/ on sys.path, as the bench scripts run from there (`cd bench && python quality.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

"""Failpoints: named places in the worker where a test can make the process die with SIGKILL, deterministically.

`GOLD_FAILPOINTS="train:3"` kills the worker the 3rd time it passes the `train` point (mid-training, weights
half-updated, no checkpoint saved) — the same as `kill -9` from outside, but at an exact moment instead of a
race against a fast tiny run. The points sit where a crash hurts most: after part of a step's output is
written and before the step is recorded as finished. Unset (always, outside tests), a failpoint is one dict
lookup. The idea is the failpoint pattern of etcd's gofail and FoundationDB's simulation.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _armed() -> dict[str, int]:
    spec = os.environ.get("GOLD_FAILPOINTS", "")
    out = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        name, _, nth = item.partition(":")
        out[name] = int(nth or 1)
    return out


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup, no finally blocks) if this point is armed and reached its count."""
    if "GOLD_FAILPOINTS" not in os.environ:
        return
    nth = _armed().get(name)
    if nth is None:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= nth:
        os.kill(os.getpid(), signal.SIGKILL)

"""A fixed-seed run stores the same samples, labels and metrics as the recorded one (fixtures/reproducible_run.json):
reorganising the engine must not change what a run does. The runs are the suite's shared `finished_run` (a GOLD
run and its baseline twin, finished by a real worker on the real embedded models), so this costs no extra run."""

from __future__ import annotations

import json

import pytest

from reproducible import record
from support import FIXTURES

from gold.store import Store


def _close(a, b, path="") -> list[str]:
    """Where two recorded values differ: floats within 2e-3 (another CPU may round the last digit differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in {'recorded' if k in a else 'this run'}" for k in set(a) ^ set(b)]
        for k in set(a) & set(b):
            out += _close(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items recorded, {len(b)} now"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        return [] if a is not None and b is not None and abs(a - b) <= 2e-3 else [f"{path}: {a} recorded, {b} now"]
    return [] if a == b else [f"{path}: {a!r} recorded, {b!r} now"]


@pytest.mark.slow
def test_a_fixed_seed_run_stores_what_it_stored_when_it_was_recorded(finished_run):
    home, gold_id, base_id = finished_run
    expected = json.loads((FIXTURES / "reproducible_run.json").read_text())
    store = Store(home)
    try:
        now = {"gold": record(store, gold_id), "baseline": record(store, base_id)}
    finally:
        store.close()
    differences = _close(expected, now)
    assert not differences, "\n".join(differences[:20])

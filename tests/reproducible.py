"""A fixed-seed run, recorded as the plain values it stores: every sample (text, label, soft label, energy,
prediction, flag) and every round's metrics less their timings. `tests/test_reproducible_run.py` runs it again and
compares with `fixtures/reproducible_run.json`, so a change to how the engine is organised that changes what a run
stores is caught. Regenerate the fixture only for a change meant to change results:
`GOLD_HOME=$(mktemp -d) .venv/bin/python tests/reproducible.py > tests/fixtures/reproducible_run.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMINGS = ("seconds", "_s")


def _round(x, places: int = 4):
    if isinstance(x, float):
        return round(x, places)
    if isinstance(x, list):
        return [_round(v, places) for v in x]
    if isinstance(x, dict):
        return {k: _round(v, places) for k, v in x.items()}
    return x


def record(store, run_id: int) -> dict:
    """What a finished run stored, timings left out (they differ from one run to the next), None values left out
    (a metric that was never measured)."""
    samples = []
    for s in store.samples(run_id):
        samples.append(_round({"round": s.round, "role": s.role, "inputs": s.inputs, "output": s.output,
                               "reject_reason": s.reject_reason, "teacher_probs": s.teacher_probs,
                               "energy": s.energy, "prediction": s.prediction, "flag": s.flag}, 3))
    rounds = []
    for r in store.rounds(run_id):
        m = {k: v for k, v in r.metrics.to_dict().items() if not k.endswith(TIMINGS) and v is not None}
        rounds.append(_round({"n": r.n, "status": r.status, "metrics": m}, 3))
    return {"samples": samples, "rounds": rounds}


def fixed_run(store) -> list[int]:
    """The runs of the suite's `finished_run` fixture: a tiny GOLD run and its baseline twin on SST-2 (support's
    tiny_task and tiny_settings), finished by one worker on the real embedded models."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from support import tiny_settings, tiny_task

    from gold.runs import start_run
    from gold.worker import run_worker

    task_id = tiny_task(store)
    ids = start_run(store, task_id, tiny_settings(), name="tiny", with_baseline=True)
    run_worker(store.home, once=True)
    return ids


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gold.store import Store

    st = Store()
    ids = fixed_run(st)
    print(json.dumps({"gold": record(st, ids[0]), "baseline": record(st, ids[1])}, indent=1, ensure_ascii=False,
                     sort_keys=True))

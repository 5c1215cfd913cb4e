"""Training precision: does bf16 mixed precision train the same student as fp32, and how much faster?

Usage: .venv/bin/python bench/precision.py [--tasks sst2,trec,agnews] [--seeds 0,1,2] [--precisions fp32,bf16]

For each task, the classifier student is fine-tuned with the product's training recipe (`StudentSpec()`) on the
task's seeds plus its validation rows (the labeled rows `bench/quality.py` does not hold out), once per precision
and seed, side by side in one process, and scored on the 200 held-out test rows. The training set is real,
human-labeled text, so the comparison isolates the arithmetic: what the student learns from the same rows in the
same order with the same dropout. Prints a table (accuracy per precision, the paired difference with its 95%
interval, training seconds and their ratio, the mean absolute difference of the test-row probabilities from the
reference precision's student and the share of test rows given the same label) and writes
bench/results/precision.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS, machine, machine_line, write_json  # noqa: I001
from quality import example_task, train_student  # noqa: E402
from report import interval_half  # noqa: E402

from gold.evaluation import evaluate_student  # noqa: E402
from gold.specs import StudentSpec  # noqa: E402


def paired(mine: list[float], theirs: list[float]) -> dict[str, Any]:
    """Mean difference over seeds, its 95% t-interval (n ≥ 2; else the mean twice) and wins–losses."""
    diffs = [x - y for x, y in zip(mine, theirs)]
    m = statistics.mean(diffs)
    half = interval_half(diffs) or 0.0
    return {"mean": round(m, 2), "low": round(m - half, 2), "high": round(m + half, 2),
            "wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs)}


def one_fit(task, precision: str, seed: int) -> dict[str, Any]:
    spec = StudentSpec(precision=precision)
    started = time.perf_counter()
    student = train_student(task.spec, list(task.spec.seeds) + list(task.val), spec, seed)
    seconds = time.perf_counter() - started
    probs = student.score([task.spec.format_input(ex.inputs) for ex in task.test]).probs
    return {"task": task.key, "precision": precision, "seed": seed,
            "accuracy": round(100 * evaluate_student(student, task.spec, task.test), 2),
            "train_s": round(seconds, 2), "train_rows": len(task.spec.seeds) + len(task.val), "_probs": probs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="sst2,trec,agnews")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--precisions", default="fp32,bf16", help="the first is the reference of the differences")
    ap.add_argument("--test-rows", type=int, default=200)
    ap.add_argument("--out", default=str(RESULTS / "precision.json"))
    a = ap.parse_args()
    precisions = [p.strip() for p in a.precisions.split(",") if p.strip()]
    seeds = [int(s) for s in a.seeds.split(",")]
    tasks = [example_task(k.strip(), a.test_rows) for k in a.tasks.split(",") if k.strip()]
    cells = []
    for task in tasks:
        for seed in seeds:
            for precision in precisions:  # interleaved, so both see the same machine
                cell = one_fit(task, precision, seed)
                print(f"{task.key} seed {seed} {precision}: {cell['accuracy']:.1f}% in {cell['train_s']:.1f} s", flush=True)
                cells.append(cell)
    ref = precisions[0]
    for cell in cells:  # how far each student's test-row probabilities are from the reference precision's
        base = next(c for c in cells if c["task"] == cell["task"] and c["seed"] == cell["seed"] and c["precision"] == ref)
        cell["probs_mean_abs_diff"] = float(abs(cell["_probs"] - base["_probs"]).mean())
        cell["argmax_agreement"] = float((cell["_probs"].argmax(1) == base["_probs"].argmax(1)).mean())
    for cell in cells:
        del cell["_probs"]
    summary = []
    for task in tasks:
        for precision in precisions:
            mine = [c for c in cells if c["task"] == task.key and c["precision"] == precision]
            base = [c for c in cells if c["task"] == task.key and c["precision"] == ref]
            row = {"task": task.key, "precision": precision,
                   "accuracy": [c["accuracy"] for c in mine],
                   "mean": round(statistics.mean(c["accuracy"] for c in mine), 2),
                   "train_s": round(statistics.mean(c["train_s"] for c in mine), 2)}
            if precision != ref:
                row["vs_" + ref] = paired([c["accuracy"] for c in mine], [c["accuracy"] for c in base])
                row["probs_mean_abs_diff"] = statistics.mean(c["probs_mean_abs_diff"] for c in mine)
                row["argmax_agreement"] = statistics.mean(c["argmax_agreement"] for c in mine)
                row["time_ratio"] = round(row["train_s"] / statistics.mean(c["train_s"] for c in base), 3)
            summary.append(row)
    info = machine()
    data = {"machine": machine_line(info), "machine_info": info, "cells": cells, "summary": summary,
            "command": "bench/precision.py " + " ".join(sys.argv[1:])}
    print(f"\nStudent trained on seeds + validation rows, accuracy % on {a.test_rows} test rows, seeds {a.seeds}")
    print(f"{'task':<8}{'precision':<10}{'per seed':<22}{'mean':>7}{'train s':>9}{'vs ' + ref:>26}{'time':>7}"
          f"{'mean |Δp|':>11}{'same label':>11}")
    for r in summary:
        diff = r.get("vs_" + ref)
        d = f"{diff['mean']:+.1f} [{diff['low']:+.1f}, {diff['high']:+.1f}] {diff['wins']}-{diff['losses']}" if diff else ""
        print(f"{r['task']:<8}{r['precision']:<10}{' '.join(f'{x:.1f}' for x in r['accuracy']):<22}{r['mean']:>7.1f}"
              f"{r['train_s']:>9.1f}{d:>26}{str(r.get('time_ratio', '')):>7}"
              f"{format(r['probs_mean_abs_diff'], '.1e') if 'probs_mean_abs_diff' in r else '':>11}"
              f"{format(r['argmax_agreement'], '.1%') if 'argmax_agreement' in r else '':>11}")
    write_json(Path(a.out), data)
    print(f"\n{data['machine']}; written {a.out}")


if __name__ == "__main__":
    main()

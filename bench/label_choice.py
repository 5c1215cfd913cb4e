"""Would choosing soft or hard labels per run, on the task's evaluation rows, beat one fixed default?

The question: soft labels lift TREC by ~25 points but leave SST-2 level or lower on the evaluation rows,
so a run could train its round-1 student both ways and keep, for the rest of the run, the label source whose
student scores higher on the evaluation rows (the run sees those rows anyway: per-round metric, early stopping).

No new run is needed to measure this exactly. Round 1 of a run with soft labels and round 1 of the same run with
hard labels generate the same samples (same seeds, no feedback yet; the read-back samples nothing), so their
round-1 evaluation-row scores are exactly what the rule would compare, and the run it would then continue is
exactly the finished cell of the label source it picks. This script reads the finished cells of
`bench/quality.py` (defaults = soft labels; `<method>_hard` = `student.soft_label_weight=0.0`), applies the rule,
and reports the chosen runs' test accuracy next to the two fixed choices. It also reports the choice made at
the end (both runs finished, keep the better on the evaluation rows: twice the cost, an upper bound of
choosing on these rows).

Usage:
  .venv/bin/python bench/label_choice.py                      # 256 samples, SST-2 and TREC, seeds 0, 1, 2
  .venv/bin/python bench/label_choice.py --budget 2048 --seeds 0,1 --engine llama.cpp
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import mean
from typing import Any

from common import RESULTS, WORK, machine, machine_line, write_json

from quality import Cache, Method, cell_key, example_task

HARD = {"student.soft_label_weight": 0.0}
RULES = ("round1", "end")


def choose(soft: list[float], hard: list[float], rule: str) -> str:
    """'soft' or 'hard' from the two runs' evaluation-row curves; a tie keeps the default, soft."""
    i = 0 if rule == "round1" else -1
    return "hard" if hard[i] > soft[i] else "soft"


def pair(cache: Cache, task, base: str, seed: int, budget: int, engine: str) -> tuple[dict, dict] | None:
    """The finished soft-label (defaults) and hard-label cells of one method and seed, or None."""
    extra = {"teacher.engine": engine} if engine != "transformers" else {}
    soft = Method(base, "run", base, dict(extra))
    hard = Method(f"{base}_hard", "run", base, {**HARD, **extra})
    cells = [cache.get(cell_key(task, m, seed, budget, 4, 0.2)) for m in (soft, hard)]
    if not all(c and c.get("val_curve") for c in cells):
        return None
    return cells[0], cells[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="sst2,trec")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", type=int, default=256)
    ap.add_argument("--engine", default="transformers", choices=("transformers", "llama.cpp"))
    ap.add_argument("--work", default=str(WORK / "quality"))
    ap.add_argument("--out", default=None, help="default bench/results/label_choice.json (other budgets: "
                                                "label_choice_<budget>.json)")
    a = ap.parse_args()
    a.out = a.out or str(RESULTS / ("label_choice.json" if a.budget == 256 else f"label_choice_{a.budget}.json"))
    cache = Cache(Path(a.work) / "cells")
    seeds = [int(s) for s in a.seeds.split(",")]
    entry: dict[str, Any] = {}
    for key in a.tasks.split(","):
        task = example_task(key, 200)
        for base in ("gold", "baseline"):
            rows, missing = [], []
            for seed in seeds:
                found = pair(cache, task, base, seed, a.budget, a.engine)
                if found is None:
                    missing.append(seed)
                    continue
                soft, hard = found
                row = {"seed": seed, "soft": soft["test"], "hard": hard["test"],
                       "eval_round1": {"soft": soft["val_curve"][0], "hard": hard["val_curve"][0]},
                       "eval_end": {"soft": soft["val_curve"][-1], "hard": hard["val_curve"][-1]}}
                for rule in RULES:
                    picked = choose(soft["val_curve"], hard["val_curve"], rule)
                    row[f"picked_{rule}"] = picked
                    row[f"chosen_{rule}"] = row[picked]
                rows.append(row)
            if rows:
                entry.setdefault(key, {})[base] = {
                    "seeds": [r["seed"] for r in rows], "missing_seeds": missing, "rows": rows,
                    **{f"mean_{k}": round(100 * mean(r[k] for r in rows), 1)
                       for k in ("soft", "hard", "chosen_round1", "chosen_end")}}
    if not entry:
        sys.exit("No finished soft/hard pairs of cells: run bench/quality.py with the defaults and with "
                 "--variant gold_hard=gold:student.soft_label_weight=0.0 (and baseline_hard) first.")
    info = machine()
    print(f"Soft or hard labels chosen per run on the evaluation rows: {a.budget} samples, "
          f"test % on 200 held-out rows ({machine_line(info)})")
    print(f"{'task':<6} {'method':<9} {'soft':>6} {'hard':>6} {'round 1':>8} {'at end':>7}  picks (round 1 / end)")
    for key, by_base in entry.items():
        for base, e in by_base.items():
            picks = ", ".join(f"s{r['seed']} {r['picked_round1']}/{r['picked_end']}" for r in e["rows"])
            print(f"{key:<6} {base:<9} {e['mean_soft']:>6} {e['mean_hard']:>6} {e['mean_chosen_round1']:>8} "
                  f"{e['mean_chosen_end']:>7}  {picks}")
    write_json(Path(a.out), {"machine": machine_line(info), "machine_info": info, "budget": a.budget,
                             "engine": a.engine, "label_choice": entry,
                             "command": " ".join(["bench/label_choice.py", *sys.argv[1:]])})
    print(f"written {a.out}")


if __name__ == "__main__":
    main()

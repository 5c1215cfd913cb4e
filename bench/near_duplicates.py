"""Near-duplicates in generated training data: how many samples of a finished run say nearly what an earlier sample
or a seed already says, in the map encoder's embedding space (all-MiniLM-L6-v2, cosine).

Usage: .venv/bin/python bench/near_duplicates.py [--work bench/.work/quality] [--thresholds 0.85,0.9,0.95]

Why: exact copies never reach training (parsing rejects a repeat of a seed or of an earlier sample on normalised
text), but a teacher can still write paraphrases of one sentence. Removing near-duplicates before training is only
worth a setting if there are some to remove, so this counts them in the finished cells `bench/quality.py` left
behind (each cell's store under WORK/homes/), without generating anything.

Per cell (task × method × seed × budget): the kept training samples in generation order; for each threshold, how
many have a seed or an earlier sample at cosine similarity ≥ it (what a greedy near-duplicate filter would drop);
and quantiles of each sample's highest similarity to any other sample and to the seeds. Embeddings come from the
store's cache when the run drew maps, else they are computed (and cached there). Prints a table per task and writes
bench/results/near_duplicates.json.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from common import RESULTS, WORK, machine, machine_line, write_json  # noqa: I001

from gold.maps import embed_cached  # noqa: E402
from gold.store import Store  # noqa: E402

CELL = re.compile(r"^(?P<task>[a-z0-9_]+)-(?P<method>.+)-s(?P<seed>\d+)-b(?P<budget>\d+)-[0-9a-f]+$")


def near_copy_counts(earlier: np.ndarray, to_seed: np.ndarray, thresholds: list[float]) -> dict[str, int]:
    """Per threshold, how many samples have an earlier sample (`earlier`: each one's highest cosine similarity to
    the samples before it in generation order) or a seed (`to_seed`) at similarity ≥ it: what a filter keeping
    the first of each near-duplicate group would drop."""
    closest = np.maximum(earlier, to_seed)
    return {f"{t:g}": int((closest >= t).sum()) for t in thresholds}


def measure_cell(home: Path, thresholds: list[float]) -> dict[str, Any] | None:
    """The counts of the one run in the cell's store, or None when the store holds no finished run. The map
    encoder's embeddings are L2-normalised, so dot products are cosine similarities."""
    store = Store(home)
    try:
        runs = [r for r in store.list_runs() if r.status == "done"]
        if not runs:
            return None
        run = store.get_run(runs[0].id)
        task = store.get_task(run.task_id).spec
        kept = [s for s in store.samples(run.id, kept_only=True) if s.role == "train"]
        if len(kept) < 2:
            return None
        vectors = embed_cached(store, [task.format_input(s.inputs) for s in kept])
        seeds = embed_cached(store, [task.format_input(ex.inputs) for ex in task.seeds])
    finally:
        store.close()
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    to_seed = (vectors @ seeds.T).max(axis=1) if len(seeds) else np.full(len(vectors), -1.0)
    earlier = np.where(np.tri(len(vectors), k=-1, dtype=bool), sims, -1.0).max(axis=1)  # row i vs rows 0..i-1
    q = [0.5, 0.9, 0.99, 1.0]
    return {"samples": len(kept),
            "near_copies": near_copy_counts(earlier, to_seed, thresholds),
            "max_sim_to_sample": [round(float(v), 3) for v in np.quantile(sims.max(axis=1), q)],
            "max_sim_to_seed": [round(float(v), 3) for v in np.quantile(to_seed, q)],
            "quantiles": q}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(WORK / "quality"), help="bench/quality.py's --work folder")
    ap.add_argument("--thresholds", default="0.85,0.9,0.95")
    ap.add_argument("--out", default=str(RESULTS / "near_duplicates.json"))
    a = ap.parse_args()
    try:
        thresholds = sorted(float(t) for t in a.thresholds.split(",") if t.strip())
    except ValueError:
        sys.exit(f"error: --thresholds takes numbers like 0.9,0.95; got {a.thresholds!r}.")
    homes = Path(a.work) / "homes"
    if not homes.is_dir():
        sys.exit(f"error: no finished cells under {homes}; run bench/quality.py with --work {a.work} first.")
    cells = []
    for home in sorted(homes.iterdir()):
        m = CELL.match(home.name)
        if not m or not (home / "gold.db").exists():
            continue
        counts = measure_cell(home, thresholds)
        if counts:
            cells.append({"task": m["task"], "method": m["method"], "seed": int(m["seed"]),
                          "budget": int(m["budget"]), **counts})
    if not cells:
        sys.exit(f"error: no finished runs in the cells under {homes}.")
    info = machine()
    print(f"Near-duplicates among kept training samples ({machine_line(info)}; all-MiniLM-L6-v2 cosine, a seed or "
          f"an earlier sample at or above the threshold):\n")
    head = " | ".join(f"≥ {t:g}" for t in thresholds)
    for task in sorted({c["task"] for c in cells}):
        print(f"**{task}**\n\n| method | seed | budget | samples | {head} | max sim to another sample: median / "
              f"p99 / max | to a seed: max |\n|---|---|---|---|{'---|' * len(thresholds)}---|---|")
        for c in [c for c in cells if c["task"] == task]:
            counts = " | ".join(str(c["near_copies"][f"{t:g}"]) for t in thresholds)
            s = c["max_sim_to_sample"]
            print(f"| {c['method']} | {c['seed']} | {c['budget']} | {c['samples']} | {counts} | {s[0]:.3f} / "
                  f"{s[2]:.3f} / {s[3]:.3f} | {c['max_sim_to_seed'][3]:.3f} |")
        print()
    total = sum(c["samples"] for c in cells)
    for t in thresholds:
        n = sum(c["near_copies"][f"{t:g}"] for c in cells)
        print(f"At ≥ {t:g}: {n} of {total:,} samples ({100 * n / total:.2f}%) over {len(cells)} cells.")
    write_json(Path(a.out), {"machine": info, "encoder": "all-MiniLM-L6-v2/mean", "thresholds": thresholds,
                             "cells": cells, "command": " ".join(["bench/near_duplicates.py", *sys.argv[1:]])})


if __name__ == "__main__":
    main()

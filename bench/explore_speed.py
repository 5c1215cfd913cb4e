"""Explore page speed with a large run: how long the page's script takes to render N samples.

    .venv/bin/python bench/explore_speed.py [--samples 10000] [--umap]

It fills a throw-away store with N samples of real SST-2-length text (dev rows with a suffix, so they are
distinct), energies and a map, then runs the Explore page through Streamlit's AppTest: the first run
(cold: imports, plotly figure built) and warm reruns. With --umap the map is a real UMAP of the cached
MiniLM embeddings (and that time is reported too); without it, the layout is random points, which is what
the page's render time depends on. Prints a table and writes bench/results/explore_speed.json.
This is the server-side render time (script + figure serialisation), not the browser's paint time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `python bench/explore_speed.py`


def measure(samples: int = 10_000, reruns: int = 3, umap: bool = False) -> dict:
    """Render the Explore page over a throw-away store of `samples` samples; returns the timings."""
    args = argparse.Namespace(samples=samples, reruns=reruns, umap=umap)
    os.environ["GOLD_AUTOSTART_WORKER"] = "0"
    old_home = os.environ.get("GOLD_HOME")
    import numpy as np
    from streamlit.testing.v1 import AppTest

    from gold.examples import example_spec
    from gold.specs import GoldSettings
    from gold.store import Store

    result: dict = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus", "samples": args.samples}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GOLD_HOME"] = tmp
        store = Store(tmp)
        spec = example_spec("sst2")
        task_id = store.create_task(spec)
        run_id = store.create_run(task_id, GoldSettings().to_dict(), name="bench")
        base = [ex.inputs["text"] for ex in spec.eval_set]
        rng = random.Random(0)
        rows = [{"inputs": {"text": f"{base[i % len(base)]} ({i})"}, "output": rng.choice(spec.labels)}
                for i in range(args.samples)]
        t0 = time.perf_counter()
        ids = []
        for start in range(0, len(rows), 1000):
            ids += store.add_samples(run_id, 1 + start * 4 // len(rows), "train", rows[start : start + 1000])
        result["insert_s"] = round(time.perf_counter() - t0, 2)
        store.set_scores([{"id": i, "energy": rng.gauss(-1.5, 0.5), "prediction": rng.choice(spec.labels),
                           "confidence": rng.random()} for i in ids])
        store.start_round(run_id, 4)
        store.finish_round(run_id, 4, {"metric_name": "accuracy", "metric": 0.6})
        if args.umap:
            from gold.maps import compute_map

            t0 = time.perf_counter()
            compute_map(store, run_id, 4)
            result["map_cold_s"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            compute_map(store, run_id, 4)
            result["map_warm_s"] = round(time.perf_counter() - t0, 2)
        else:
            pts = np.random.default_rng(0).normal(size=(len(ids), 2))
            store.set_map_points(run_id, 4, [("sample", i, x, y) for i, (x, y) in zip(ids, pts)])
        page = str(ROOT / "views" / "explore.py")
        t0 = time.perf_counter()
        at = AppTest.from_file(page, default_timeout=300).run()
        result["render_first_s"] = round(time.perf_counter() - t0, 2)
        assert not at.exception, at.exception
        warm = []
        for _ in range(args.reruns):
            t0 = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t0)
        result["render_warm_s"] = round(min(warm), 2)
        result["render_warm_all_s"] = [round(w, 2) for w in warm]
        result["shown"] = at.metric[0].value
        store.close()
    if old_home is None:
        os.environ.pop("GOLD_HOME", None)
    else:
        os.environ["GOLD_HOME"] = old_home
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--umap", action="store_true", help="lay the map out with real UMAP (slow) instead of random")
    ap.add_argument("--reruns", type=int, default=3)
    args = ap.parse_args()
    result = measure(args.samples, args.reruns, args.umap)
    print(f"{'measure':<22} {'value':>10}")
    for k in ("samples", "insert_s", "map_cold_s", "map_warm_s", "render_first_s", "render_warm_s"):
        if k in result:
            print(f"{k:<22} {result[k]:>10}")
    out = ROOT / "bench" / "results" / "explore_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

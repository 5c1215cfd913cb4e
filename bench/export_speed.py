"""What a user gets from an export: the student's size on disk, and how fast plain `transformers` runs it on CPU.

Usage: .venv/bin/python bench/export_speed.py [--home GOLD_HOME] [--run ID|latest] [--threads 1,2] [--texts 300]
Prints a table and writes bench/results/export_speed.json. Not a test: timings depend on the machine and its
neighbours, so the load average is recorded beside every row (and CPU-time rates, steadier on a shared machine).

The student comes from a finished run in --home when there is one; otherwise a throw-away store gets the SST-2
example task and one round whose student is a freshly initialised MiniLM classifier (the same architecture,
size and speed as a trained one). Rows: the export itself (folder, zip), the folder's size, loading it with
`pipeline("text-classification")`, and examples/s of that pipeline at batch 1, 8 and 32 on the SST-2 dev texts,
beside the in-app student's `predict` (length-sorted batches of 64) for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, exported_run  # noqa: I001 — puts the repository on sys.path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from gold import export  # noqa: E402
from gold.modelcard import safetensors_parameters  # noqa: E402

DEV = ROOT / "gold" / "example_data" / "sst2" / "dev.jsonl"
OUT = RESULTS / "export_speed.json"


def untrained_student(spec):
    """A freshly initialised MiniLM classifier: the same architecture, size and speed as a trained one."""
    from gold.students.classifier import ClassifierStudent

    return ClassifierStudent(spec.labels)


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes in files, bytes of allocated blocks) of a folder, like `du -b` and `du -B1`."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), sum(p.stat().st_blocks * 512 for p in files)


def rate(fn, n: int, repeat: int = 2) -> dict:
    """Best of `repeat` timed calls after one warm-up: wall and CPU-time examples/s."""
    fn()
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or wall < best[0]:
            best = (wall, cpu)
    wall, cpu = best
    return {"examples_per_s": n / wall, "examples_per_cpu_s": n / cpu if cpu > 0 else None, "seconds": wall,
            "load_avg_1m": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="a GOLD_HOME with a finished classification run (default: a throw-away one)")
    ap.add_argument("--run", default="latest", help="run id or 'latest' (with --home)")
    ap.add_argument("--threads", default=None, help="torch thread counts, comma-separated (default: 1 and all)")
    ap.add_argument("--texts", type=int, default=300, help="texts per throughput row")
    a = ap.parse_args()

    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from gold.students.classifier import ClassifierStudent

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    threads = [int(t) for t in (a.threads or f"1,{torch.get_num_threads()}").split(",")]
    threads = sorted(set(threads))
    texts = [json.loads(line)["text"] for line in DEV.read_text().splitlines() if line.strip()]
    texts = (texts * (a.texts // len(texts) + 1))[: a.texts]

    work = Path(tempfile.mkdtemp(prefix="gold-export-bench-"))
    try:
        run = exported_run(Path(a.home) if a.home else None, a.run, work, untrained_student,
                           "untrained MiniLM classifier (same size and speed as a trained one)")
        store, run_id, round_n, source = run.store, run.run_id, run.round_n, run.source
        rows: list[dict] = []

        t = time.perf_counter()
        folder = export.export_student(store, run_id, work / "student", round_n).path
        export_s = time.perf_counter() - t
        t = time.perf_counter()
        zipped = export.export_zip(store, run_id, work / "student.zip", round_n).path
        zip_s = time.perf_counter() - t
        size, blocks = disk_usage(folder)
        weights = (folder / "model.safetensors").stat().st_size
        params = safetensors_parameters(folder)
        print(f"student: {source}, round {round_n}")
        print(f"{'export folder':<34} {export_s:8.2f} s")
        print(f"{'export zip':<34} {zip_s:8.2f} s")
        print(f"{'folder size on disk':<34} {size / 1e6:8.1f} MB  ({blocks / 1e6:.1f} MB allocated; "
              f"model.safetensors {weights / 1e6:.1f} MB, {params / 1e6:.1f} M parameters fp32)")
        print(f"{'zip size':<34} {zipped.stat().st_size / 1e6:8.1f} MB")

        t = time.perf_counter()
        clf = pipeline("text-classification", model=str(folder), device=-1)
        load_s = time.perf_counter() - t
        print(f"{'pipeline load':<34} {load_s:8.2f} s")
        student = ClassifierStudent.load(folder, device="cpu")

        print(f"\n{'throughput on CPU (SST-2 dev texts)':<34} {'threads':>7} {'ex/s':>8} {'ex/cpu-s':>9} {'load':>6}")
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            cases = [(f"pipeline, batch {b}", lambda b=b: clf(texts, truncation=True, batch_size=b)) for b in (1, 8, 32)]
            cases.append(("in-app student.predict (ref.)", lambda: student.predict(texts)))
            for name, fn in cases:
                r = rate(fn, len(texts))
                r.update(case=name, threads=n_threads)
                rows.append(r)
                cpu = f"{r['examples_per_cpu_s']:9.1f}" if r["examples_per_cpu_s"] else f"{'—':>9}"
                print(f"{name:<34} {n_threads:>7} {r['examples_per_s']:8.1f} {cpu} {r['load_avg_1m']:6.2f}", flush=True)

        import transformers

        result = {
            "meta": {
                "student": source, "round": round_n, "cpu_count": os.cpu_count(), "torch": torch.__version__,
                "transformers": transformers.__version__, "python": platform.python_version(),
                "texts": f"{len(texts)} SST-2 dev texts (gold/example_data/sst2/dev.jsonl)",
            },
            "size": {"folder_bytes": size, "folder_allocated_bytes": blocks, "weights_bytes": weights,
                     "zip_bytes": zipped.stat().st_size, "parameters": params,
                     "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())},
            "timings_s": {"export_folder": export_s, "export_zip": zip_s, "pipeline_load": load_s},
            "throughput": rows,
        }
        store.close()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2))
        print(f"\nwritten {OUT.relative_to(ROOT)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

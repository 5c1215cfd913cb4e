"""How fast the classifier student trains and scores on SST-2-length texts.

Usage: .venv/bin/python bench/student_speed.py [--threads 1,2] [--steps 20] [--infer 300]
Prints a table and writes bench/results/student_speed.json. Not a test: timings depend on the machine and
on its neighbours, so the load average is recorded beside every row.

Rows (each run twice, the first as warm-up): training in fp32 with dynamic padding (the student's recipe), the
same in bf16 mixed precision (what `precision = auto` picks on a CPU with native bf16; measured only there: torch
emulates bf16 elsewhere and the row would take minutes), with unfused AdamW and with every batch padded to 64
tokens (what the student avoids, for comparison), inference (`predict`) and embeddings (`embed`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gold.students import classifier as clf  # noqa: E402
from gold.students import training  # noqa: E402
from gold.students.base import TrainExample, TrainingArgs  # noqa: E402

DATA = ROOT / "gold" / "example_data" / "sst2" / "dev.jsonl"
OUT = ROOT / "bench" / "results" / "student_speed.json"


def load_rows() -> list[dict]:
    if not DATA.is_file():
        sys.exit(f"SST-2 dev rows not found at {DATA}")
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def measure(fn, n: int) -> dict:
    """Wall-clock and CPU-time rates. On a shared machine the wall rate depends on the neighbours; with one
    thread the CPU-time rate is close to what an idle core would do, so it is the figure to compare."""
    fn()  # warm-up: first calls allocate and pick kernels
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"examples_per_s": n / wall, "examples_per_cpu_s": n / cpu, "seconds": wall, "cpu_seconds": cpu}


def train_rate(student: clf.ClassifierStudent, examples: list[TrainExample], args: TrainingArgs) -> dict:
    return measure(lambda: student.fit(examples, args), training.steps_examples(len(examples), args.batch_size, args.max_steps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default=f"1,{torch.get_num_threads()}", help="torch thread counts to try, comma-separated")
    ap.add_argument("--steps", type=int, default=12, help="training steps per row (batch 16)")
    ap.add_argument("--infer", type=int, default=300, help="texts per inference row")
    a = ap.parse_args()

    rows = load_rows()
    labels = sorted({r["label"] for r in rows})
    examples = [TrainExample(r["text"], r["label"]) for r in rows]
    texts = [r["text"] for r in rows]
    texts = (texts * (a.infer // len(texts) + 1))[: a.infer]
    student = clf.ClassifierStudent(labels)
    tok_lens = [len(x) for x in student.tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
    args = TrainingArgs(epochs=1, min_steps=a.steps, max_steps=a.steps, batch_size=16, seed=0, warm_start=True,
                        loss="ce", precision="fp32")
    bf16 = dataclasses.replace(args, precision="bf16")

    fused_adamw, collate = training.adamw, clf.ClassifierStudent._collate

    def unfused(model, targs):
        return torch.optim.AdamW(training.param_groups(model, targs.weight_decay), lr=targs.learning_rate)

    def padded64(self, ids):
        batch = collate(self, ids + [[0] * 64])  # a dummy row forces width 64 (all texts here are shorter)
        return {k: v[:-1] for k, v in batch.items()}

    results = []
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        cases = [
            ("train, dynamic padding", lambda: train_rate(student, examples, args)),
            ("train, unfused AdamW", lambda: (setattr(training, "adamw", unfused), train_rate(student, examples, args))[1]),
            ("train, padded to 64", lambda: (setattr(clf.ClassifierStudent, "_collate", padded64), train_rate(student, examples, args))[1]),
            ("predict", lambda: measure(lambda: student.predict(texts), len(texts))),
            ("embed", lambda: measure(lambda: student.embed(texts), len(texts))),
        ]
        if training.compute_precision(student.device, "auto") == "bf16":  # elsewhere torch emulates bf16: minutes
            cases.insert(2, ("train, bf16 mixed", lambda: train_rate(student, examples, bf16)))
        for name, run in cases:
            try:
                r = run()
            finally:
                training.adamw, clf.ClassifierStudent._collate = fused_adamw, collate
            r.update(case=name, threads=threads, load_avg_1m=os.getloadavg()[0])
            results.append(r)
            print(
                f"{name:<24} threads={threads}  {r['examples_per_s']:7.1f} ex/s wall  {r['examples_per_cpu_s']:7.1f} ex/cpu-s"
                f"  (load {r['load_avg_1m']:.2f})",
                flush=True,
            )

    meta = {
        "device": str(student.device),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "texts": "SST-2 dev (gold/example_data/sst2/dev.jsonl)",
        "mean_tokens": float(np.mean(tok_lens)),
        "max_tokens": int(np.max(tok_lens)),
        "batch_size": 16,
        "train_steps": a.steps,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"\nmean {meta['mean_tokens']:.1f} tokens/text (max {meta['max_tokens']}); {meta['cpu_count']} CPUs; written {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

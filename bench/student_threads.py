"""The student's torch threads on a shared machine: one thread, every core, and the product's adaptive count
(`training.TorchThreads`, governed by `gold.cpu` as the teacher's are), on an idle machine and beside processes
that keep cores busy.

Usage: .venv/bin/python bench/student_threads.py [--steps 30] [--busy 0,1] [--repeats 1]

For each load (`--busy K`: K processes spinning in a Python loop, started before and stopped after), the three
modes take turns `--repeats` times fitting the classifier student on the same 72 SST-2 rows (a round-1 sized
set, batch 16, fp32), and the table keeps each mode's best pass: seconds, examples/s and the thread counts the
steps ran with. Run it on an otherwise idle machine. Writes bench/results/student_threads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from common import RESULTS, ROOT  # noqa: I001
from teacher_threads import by_load, finish

import torch

from gold.students import training
from gold.students.base import TrainExample, TrainingArgs
from gold.students.classifier import ClassifierStudent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per fit (batch 16)")
    ap.add_argument("--busy", default="0,1", help="numbers of busy processes to measure beside, comma-separated")
    ap.add_argument("--repeats", type=int, default=1, help="passes per mode and load (the best is kept)")
    ap.add_argument("--out", default=str(RESULTS / "student_threads.json"))
    a = ap.parse_args()

    cores = os.cpu_count() or 1
    path = ROOT / "gold" / "example_data" / "sst2" / "dev.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:72]
    labels = sorted({r["label"] for r in rows})
    examples = [TrainExample(r["text"], r["label"]) for r in rows]
    student = ClassifierStudent(labels)
    args = TrainingArgs(min_steps=a.steps, max_steps=a.steps, warm_start=True, precision="fp32")
    used: list[set[int]] = []
    real = training.TorchThreads

    class Recorded(real):  # the adaptive mode, with the counts its steps ran with kept for the table
        def __init__(self, device: torch.device, adapt: bool = True):
            super().__init__(device, adapt)
            used.append(self.used)

    modes = {"1 thread": (1, False), f"{cores} threads": (cores, False), f"adaptive (at most {cores})": (cores, True)}
    student.fit(examples, TrainingArgs(min_steps=2, max_steps=2, warm_start=True, precision="fp32"))  # warm-up

    def fit(threads: int, adapt: bool) -> dict[str, Any]:
        torch.set_num_threads(threads)
        training.TorchThreads = lambda device, adapt_=True, allowed=adapt: Recorded(device, adapt_ and allowed)
        used.clear()
        try:
            t0 = time.perf_counter()
            report = student.fit(examples, args)
            secs = time.perf_counter() - t0
        finally:
            training.TorchThreads = real
        return {"seconds": round(secs, 2), "examples_per_s": round(report.examples_per_second, 1),
                "threads_used": sorted(used[0]) if used else [threads]}

    out: dict[str, Any] = {"examples": len(examples), "steps": a.steps, "cores": cores, "out": a.out}
    out["by_busy"] = by_load(a.busy, a.repeats, {name: (lambda m=m: fit(*m)) for name, m in modes.items()})
    finish(out, "student_threads.py", f"{len(examples)} SST-2 rows, {a.steps} steps of 16, fp32, best of {a.repeats}",
           ("examples_per_s", "examples/s"), ("threads_used", "threads the steps ran with"))


if __name__ == "__main__":
    main()

"""The llama.cpp teacher's threads on a shared machine: one thread, every core, and the product's adaptive count
(`gold.cpu`), each on an idle machine and beside processes that keep cores busy.

Usage: .venv/bin/python bench/teacher_threads.py [--prompts 16] [--busy 0,1,2] [--repeats 2]

For each load (`--busy K`: K processes spinning in a Python loop, started before and stopped after), the three
modes take turns `--repeats` times on the same generation prompts (SST-2, as a run plans them), and the table keeps
each mode's best pass: seconds, completion tokens/s, and the thread count the adaptive teacher ran with at the end.
Run it on an otherwise idle machine: what it measures is the other processes' effect. Writes
bench/results/teacher_threads.json.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from common import RESULTS, machine, machine_line, write_json  # noqa: I001

from gold import prompts
from gold.examples import example_spec
from gold.teachers.base import GenerationSettings

SPIN = "while True: pass"


def busy_processes(k: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(k)]
    time.sleep(1.0)  # let them reach the scheduler before the first pass
    return procs


def by_load(busy: str, repeats: int, modes: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, Any]:
    """For each load in `busy` ("0,1": that many spinning processes beside), every mode's best pass of `repeats`:
    each mode is a pass that returns its row, with its "seconds"."""
    out: dict[str, Any] = {}
    for k in [int(x) for x in busy.split(",")]:
        procs = busy_processes(k)
        try:
            rows: dict[str, Any] = {}
            for _ in range(repeats):
                for name, run in modes.items():
                    row = run()
                    if name not in rows or row["seconds"] < rows[name]["seconds"]:
                        rows[name] = row
        finally:
            for p in procs:
                p.kill()
                p.wait()
        out[str(k)] = rows
    return out


def finish(out: dict[str, Any], script: str, title: str, rate: tuple[str, str], threads: tuple[str, str]) -> None:
    """Each row's time against one thread's under the same load, the JSON written to `out["out"]`, the table
    printed. `rate` and `threads` are (key in a row, column heading)."""
    for rows in out["by_busy"].values():
        base = rows["1 thread"]["seconds"]
        for row in rows.values():
            row["time_vs_1_thread"] = round(row["seconds"] / base, 2)
    info = machine()
    out["machine"] = machine_line(info)
    out["machine_info"] = info
    out["command"] = f"bench/{script} " + " ".join(sys.argv[1:])
    write_json(Path(out.pop("out")), out)
    print(f"\n{title}, {out['machine']}\n")
    print(f"| busy processes | mode | seconds | {rate[1]} | × time of 1 thread | {threads[1]} |")
    print("|---|---|---|---|---|---|")
    for k, rows in out["by_busy"].items():
        for name, r in rows.items():
            value = r[threads[0]]
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            print(f"| {k} | {name} | {r['seconds']} | {r[rate[0]]} | {r['time_vs_1_thread']} | {shown} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=16, help="SST-2 generation prompts per pass")
    ap.add_argument("--busy", default="0,1,2", help="numbers of busy processes to measure beside, comma-separated")
    ap.add_argument("--repeats", type=int, default=2, help="passes per mode and load (the best is kept)")
    ap.add_argument("--out", default=str(RESULTS / "teacher_threads.json"))
    a = ap.parse_args()

    from gold.teachers.llamacpp import LlamaCppTeacher

    cores = os.cpu_count() or 1
    reqs = prompts.plan_requests(example_spec("sst2"), a.prompts, style="completion", rng=random.Random(0))
    texts = [r.prompt for r in reqs]
    settings = GenerationSettings(seed=0, max_new_tokens=40)
    teachers = {"1 thread": LlamaCppTeacher(threads=1, adapt=False),
                f"{cores} threads": LlamaCppTeacher(threads=cores, adapt=False),
                f"adaptive (at most {cores})": LlamaCppTeacher(threads=cores)}
    for t in teachers.values():
        t.generate(texts[:1], settings)  # warm-up
    def generate(teacher: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        comps = teacher.generate(texts, settings)
        secs = time.perf_counter() - t0
        tokens = sum(c.completion_tokens for c in comps)
        return {"seconds": round(secs, 2), "tokens_per_s": round(tokens / secs, 1),
                "threads_at_end": teacher.running_threads}

    out: dict[str, Any] = {"prompts": len(texts), "cores": cores, "settings": settings.to_dict(), "out": a.out}
    out["by_busy"] = by_load(a.busy, a.repeats, {name: (lambda t=t: generate(t)) for name, t in teachers.items()})
    finish(out, "teacher_threads.py", f"{len(texts)} SST-2 prompts, llama.cpp teacher, best of {a.repeats} passes",
           ("tokens_per_s", "tokens/s"), ("threads_at_end", "threads at the end"))


if __name__ == "__main__":
    main()

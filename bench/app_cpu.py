"""What the app itself costs while a user watches: the Streamlit process's CPU seconds with a browser tab open, and
how long the worker's first round takes beside it, with Streamlit's source watcher on (its default) and off (the
project's `.streamlit/config.toml`), side by side in one run.

Usage:
  .venv/bin/python bench/app_cpu.py                 # ~10 minutes on 2 cores: two first rounds of a default run
  .venv/bin/python bench/app_cpu.py --window 30 --watchers none

For each watcher setting, a fresh data folder inside the app's folder (where `make run` keeps `./gold_data`), the
app started as `make run` starts it, then three states, each the app's CPU seconds per minute of wall time:
  idle          the app up, no browser tab;
  round_1       one Chromium tab (Playwright, headless) on the Runs page of a default SST-2 run, while the worker
                that page load starts (as for a user) runs the first round; the wall seconds from the page load to
                round 1 done and the worker's CPU seconds are reported beside it;
  finished      the same tab after the run is cancelled (a page that has nothing left to refresh).
Nothing in the page is clicked: the tab only stays open, as a user's does while they wait. Prints a table and writes
bench/results/app_cpu.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import RESULTS, ROOT, WORK, machine, machine_line, wait_for, write_json  # noqa: I001

import psutil

from gold.store import ACTIVE_STATUSES, Store
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS

PYTHON = sys.executable


def own_cpu(proc: psutil.Process) -> float:
    """CPU seconds of this process alone (the app's worker is its child, and measured apart)."""
    t = proc.cpu_times()
    return t.user + t.system


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and every descendant still alive, plus the children it has already reaped."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        except psutil.NoSuchProcess:
            pass
    return total


def stop(worker: psutil.Process) -> None:
    """Stop the app's worker. It is the app's child, not ours: gone once it has exited (a zombie until the app
    reaps it), so its exit is polled rather than waited on."""
    def ended() -> bool:
        try:
            return worker.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    worker.terminate()
    try:
        wait_for(ended, 60, "the worker's exit")
    except SystemExit:
        worker.kill()


def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200
    except OSError:
        return False


def cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([PYTHON, "-m", "gold", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: gold {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def per_minute(cpu_s: float, wall_s: float) -> float:
    return round(60 * cpu_s / wall_s, 1) if wall_s > 0 else 0.0


def measure(watcher: str, port: int, window_s: float, timeout_s: float, page_factory) -> dict[str, Any]:
    """One watcher setting: the three states, in order, on a fresh data folder inside the app's folder."""
    home = WORK / "app_cpu" / watcher / "gold_data"
    shutil.rmtree(home.parent, ignore_errors=True)
    env = {**os.environ, "GOLD_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    app = subprocess.Popen([PYTHON, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                            "--server.fileWatcherType", watcher], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    out: dict[str, Any] = {"watcher": watcher}
    try:
        wait_for(lambda: healthy(url), 120, "the app's health check")
        app_p = psutil.Process(app.pid)
        time.sleep(3)
        c0, t0 = own_cpu(app_p), time.perf_counter()
        time.sleep(window_s)
        out["idle"] = {"app_cpu_per_min": per_minute(own_cpu(app_p) - c0, time.perf_counter() - t0)}

        cli(env, "task", "example", "sst2")
        store = Store(home)
        task_id = max(t.id for t in store.list_tasks())
        cli(env, "run", str(task_id), "--detach")
        run_id = max(r.id for r in store.list_runs())
        page = page_factory()
        page.goto(f"{url}/runs?run={run_id}", wait_until="networkidle")  # the app starts its worker, as for a user
        wait_for(lambda: any(w["pid"] for w in store.live_workers()), 120, "the app's worker")
        worker = psutil.Process(next(w["pid"] for w in store.live_workers() if w["pid"]))
        c0, t0 = own_cpu(app_p), time.perf_counter()

        def round_1_done() -> bool:
            run = store.get_run(run_id)
            if run.status in ("failed", "cancelled"):
                sys.exit(f"error: the run ended {run.status}: {run.error}")
            return any(r.n == 1 and r.status == "done" for r in store.rounds(run_id))

        wait_for(round_1_done, timeout_s, "round 1")
        wall = time.perf_counter() - t0
        first = next(r for r in store.rounds(run_id) if r.n == 1)
        out["round_1"] = {"app_cpu_per_min": per_minute(own_cpu(app_p) - c0, wall),
                          "worker_cpu_s": round(tree_cpu(worker), 1),
                          "wall_s": round(wall, 1), "step_seconds": first.metrics.step_seconds,
                          "metric": first.metrics.metric}
        print(f"  round 1 done in {wall:.0f} s", flush=True)
        store.request_cancel(run_id)
        wait_for(lambda: store.get_run(run_id).status not in ACTIVE_STATUSES, timeout_s, "the run's cancellation")
        stop(worker)
        worker = None
        time.sleep(5)  # the page notices the run stopped and redraws once
        c0, t0 = own_cpu(app_p), time.perf_counter()
        time.sleep(window_s)
        out["finished"] = {"app_cpu_per_min": per_minute(own_cpu(app_p) - c0, time.perf_counter() - t0)}
        page.close()
        store.close()
    finally:
        for w in Store(home).live_workers(within=3600) if home.exists() else []:
            try:  # the page's reruns start a worker whenever none is alive, as the app does for a user
                stop(psutil.Process(w["pid"]))
            except psutil.NoSuchProcess:
                pass
        if worker is not None:
            stop(worker)
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
        shutil.rmtree(home.parent, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--watchers", default="none,auto", help="Streamlit fileWatcherType values, in order")
    ap.add_argument("--window", type=float, default=60, help="seconds measured in the idle and finished states")
    ap.add_argument("--port", type=int, default=8611)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds round 1 may take")
    ap.add_argument("--out", default=str(RESULTS / "app_cpu.json"))
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for w in a.watchers.split(","):
            print(f"watcher {w}: idle, then round 1 of a default SST-2 run with a tab open, then finished…", flush=True)
            rows.append(measure(w, a.port, a.window, a.timeout,
                                lambda: browser.new_page(viewport={"width": 1400, "height": 1000})))
            print(f"  {rows[-1]}", flush=True)
        browser.close()

    info = machine()
    print("\nThe app's CPU seconds per minute (60 = one whole core), and the first round beside it:")
    print(f"{'watcher':<8} {'idle':>6} {'round 1':>8} {'finished':>9} {'round 1 wall s':>15} {'worker CPU s':>13}")
    for r in rows:
        print(f"{r['watcher']:<8} {r['idle']['app_cpu_per_min']:>6} {r['round_1']['app_cpu_per_min']:>8} "
              f"{r['finished']['app_cpu_per_min']:>9} {r['round_1']['wall_s']:>15} {r['round_1']['worker_cpu_s']:>13}")
    print(machine_line(info))
    write_json(Path(a.out), {"rows": rows, "window_s": a.window, "machine": machine_line(info), "machine_info": info,
                             "command": "bench/app_cpu.py " + " ".join(sys.argv[1:])})
    print(f"written {a.out}")


if __name__ == "__main__":
    main()

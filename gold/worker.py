"""The background worker: `python -m gold worker`.

It claims queued runs from the store and executes them round by round (gold/loop.py). It survives page
reloads (it is its own process), its own crash (another worker resumes a run whose heartbeat went stale) and
restarts (each round step is checkpointed in the store). A heartbeat thread keeps the run's and the worker's
heartbeats fresh while a long step (loading a model, training) blocks the main thread; cancellation is
checked between steps and batches. Models are loaded once per process and cached across runs.

`ensure_worker()` is what the app calls on start-up: it spawns a detached worker when none is alive.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

from gold.context import Cancelled, DiskFull, RunContext, RunError, Superseded
from gold.store import Store

HEARTBEAT_S = float(os.environ.get("GOLD_HEARTBEAT_S", "5"))
# A run whose heartbeat is older than this is presumed orphaned (its worker died) and is resumed.
STALE_AFTER_S = float(os.environ.get("GOLD_WORKER_STALE_S", "30"))
POLL_S = 1.0


class _Heartbeat(threading.Thread):
    """Beats for the worker (and its current run) from a separate store connection."""

    def __init__(self, home: Path, worker_id: str, reserved: list[int] | None = None):
        super().__init__(daemon=True, name="gold-heartbeat")
        self.home, self.worker_id = home, worker_id
        self.run_id: int | None = None
        self.reserved: set[int] = set(reserved or [])  # runs waiting for this worker: kept fresh too
        self.stop_event = threading.Event()

    def run(self) -> None:
        store = Store(self.home)
        try:
            while not self.stop_event.wait(HEARTBEAT_S):
                try:
                    store.worker_heartbeat(self.worker_id, self.run_id)
                    for run_id in {self.run_id, *self.reserved} - {None}:
                        store.heartbeat_run(run_id, self.worker_id)
                except Exception:  # a locked or busy moment must not kill the beat; try again next time
                    pass
        finally:
            store.close()


def run_worker(home: str | Path | None = None, once: bool = False, idle_exit_s: float | None = None,
               only: list[int] | None = None, worker_id: str | None = None, draw_maps: bool = True) -> int:
    """Serve runs until interrupted. once=True: process what is queued now, then exit (tests, CLI).
    only: serve just these run ids (`python -m gold run --inline`). worker_id: the id runs were reserved
    for (`spawn_keyed_worker`); by default a fresh one. draw_maps=False: no UMAP map after each round (a worker on
    a busy or remote machine; the Explore page draws a round's map when it is opened)."""
    from gold.loop import RunHooks, execute_run  # imported here: torch loads only in the worker
    from gold.models import ModelNotFound
    from gold.teachers.base import TeacherError

    USER_ERRORS = (RunError, TeacherError, ModelNotFound, DiskFull)
    threads = os.environ.get("GOLD_TORCH_THREADS", "").strip()
    if threads:  # on a CPU shared with other busy processes, fewer threads can be much faster (no spin-waiting)
        import torch

        torch.set_num_threads(max(1, int(threads)))

    store = Store(home)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    store.register_worker(worker_id, os.getpid(), socket.gethostname())
    store.remove_worker(f"starting-{os.getpid()}")  # the placeholder ensure_worker() wrote for us
    beat = _Heartbeat(store.home, worker_id, reserved=only)
    beat.start()
    stopping = threading.Event()

    def on_signal(signum, frame):  # SIGTERM: finish the current step's transaction, then stop
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    idle_since = time.time()
    try:
        while not stopping.is_set():
            run_id = store.claim_run(worker_id, stale_after=STALE_AFTER_S, only=only)
            if run_id is None:
                if once or (idle_exit_s is not None and time.time() - idle_since > idle_exit_s):
                    return 0
                time.sleep(POLL_S)
                continue
            beat.run_id = run_id
            ctx = RunContext(store, run_id, worker_id)
            try:
                status = execute_run(ctx, hooks=RunHooks(draw_maps=draw_maps, background=True))
                store.finish_run(run_id, status)
            except Cancelled:
                store.finish_run(run_id, "cancelled")
            except Superseded:
                pass
            except KeyboardInterrupt:
                # Leave the run 'running' with a stale heartbeat: the next worker resumes it.
                store.add_event("Worker stopped; the run resumes when a worker starts again.", run_id=run_id)
                raise
            except USER_ERRORS as e:  # a reason the user can act on: shown as is
                store.finish_run(run_id, "failed", error=str(e))
            except MemoryError:
                store.finish_run(run_id, "failed", error="Out of memory: lower the batch sizes or the max length, "
                                                         "or use a smaller model, then resume the run.")
            except Exception as e:  # a run's failure must not kill the worker
                store.add_event(traceback.format_exc(limit=8), run_id=run_id, level="debug")
                store.finish_run(run_id, "failed", error=f"{type(e).__name__}: {e}")
            finally:
                beat.run_id = None
                beat.reserved.discard(run_id)
                idle_since = time.time()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        beat.stop_event.set()
        store.remove_worker(worker_id)
        store.close()


def autostart_enabled() -> bool:
    """GOLD_AUTOSTART_WORKER=0 keeps the app from spawning workers (you run `python -m gold worker` yourself,
    e.g. on a GPU machine sharing the store, or in tests that drive their own worker)."""
    return os.environ.get("GOLD_AUTOSTART_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")


def ensure_worker(home: str | Path | None = None, log: Path | None = None, force: bool = False) -> int | None:
    """Start a detached worker process unless one is alive for this GOLD_HOME (or autostart is off and not
    `force`d); returns its pid, or None. The worker outlives the page (and a Streamlit restart)."""
    if not (force or autostart_enabled()):
        return None
    store = Store(home)
    try:
        if store.live_workers(within=STALE_AFTER_S):
            return None
        log = log or store.home / "worker.log"
        env = {**os.environ, "GOLD_HOME": str(store.home)}
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gold", "worker"], stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=Path(__file__).resolve().parents[1], start_new_session=True,
            )
        # Register at once so a page rerun in the next second does not start a second worker.
        store.register_worker(f"starting-{proc.pid}", proc.pid, socket.gethostname())
        return proc.pid
    finally:
        store.close()


def spawn_keyed_worker(home: str | Path | None, run_ids: list[int], api_key: str, log: Path | None = None) -> int:
    """Start a worker that serves only `run_ids`, with the API key in its environment and nowhere else.

    A key typed into the page must reach the process that calls the teacher without touching the database, the
    events, the logs or the process list (a command-line argument would be visible in `ps`). The key goes into
    this one child's environment; the runs are reserved for the child first, so the always-on worker (which
    has no key) never claims them. The child exits when its runs end. If it dies, the runs go stale, a keyless
    worker fails them with a clear "no API key" message, and Resume with the key typed again continues them.
    """
    store = Store(home)
    try:
        worker_id = f"keyed-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        reserved = store.reserve_runs(run_ids, worker_id)
        if not reserved:
            return 0
        log = log or store.home / "worker.log"
        env = {**os.environ, "GOLD_HOME": str(store.home), "OPENAI_API_KEY": api_key}
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gold", "worker", "--once", "--only", ",".join(map(str, reserved)),
                 "--id", worker_id], stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=Path(__file__).resolve().parents[1], start_new_session=True,
            )
        return proc.pid
    finally:
        store.close()

"""What a running run may ask of the process running it: report progress, and learn that it must stop.

Its own module so that the loop, the steps and the worker all import it and none of them imports another for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gold.store import Store

PROGRESS_EVERY_S = 2.0  # within a step, at most one progress event this often: the bar moves, the log stays short


class Cancelled(Exception):
    """Raised inside a run when the user asked to cancel it; the run ends as 'cancelled'."""


class DiskFull(RuntimeError):
    """The data folder's disk is nearly full: the run stops before writing more (a message the user acts on)."""


class Superseded(Exception):
    """Raised when another worker has taken this run over (we were presumed dead); stop quietly."""


class RunError(RuntimeError):
    """A run cannot go on for a reason the user can act on; the message is shown on the run as is."""


@dataclass
class RunContext:
    """The store, the run, and the worker that holds it."""

    store: Store
    run_id: int
    worker_id: str

    def check(self) -> None:
        """Call between steps and batches: raises Cancelled or Superseded when the run must stop, DiskFull
        when the data folder's disk is nearly full (the run fails cleanly and resumes once there is space)."""
        problem = self.store.free_space_problem()
        if problem:
            raise DiskFull(problem + " Then press Resume.")
        run = self.store.get_run(self.run_id)
        if run.worker != self.worker_id:
            raise Superseded()
        if run.cancel_requested:
            raise Cancelled()

    def progress(self, fraction: float | None, message: str, level: str = "info") -> None:
        """An event on the run: the Runs page shows the newest, and its fraction moves the round's bar."""
        self.store.add_event(message, run_id=self.run_id, level=level, progress=fraction)

    def progress_within(self, every_s: float | None = None) -> Callable[[float, str], None]:
        """A progress callback for work inside a step (a batch of teacher prompts, training steps) that reports
        at most once every `every_s` seconds (default PROGRESS_EVERY_S), and always the end (fraction 1)."""
        every_s = PROGRESS_EVERY_S if every_s is None else every_s
        last = [time.monotonic()]

        def report(fraction: float, message: str) -> None:
            now = time.monotonic()
            if fraction >= 1.0 or now - last[0] >= every_s:
                last[0] = now
                self.progress(fraction, message)

        return report

"""How many cores the local teacher (and the student's fit, `training.TorchThreads`) may use right now: the cores
nobody else has been using.

Why it matters: llama.cpp's threads meet at a barrier many times per token. When another process (the browser,
the app, a second run) or this worker's own background map holds one of the cores, the thread on that core waits
for its time slice at every barrier, and the others wait for it. On 2 cores beside one busy process, two threads
generated 6.9× slower than one, where on an idle machine they are 1.6× faster (`bench/teacher_threads.py`). A
fixed count is therefore wrong on a shared machine in one direction or the other; the teacher asks `FreeCores`
before each prompt (at most every `RECHECK_S`) and runs that many threads, at least one and at most its own
setting.

How it counts, on Linux: busy time of all cores (`/proc/stat`) since the last look, less this process's own CPU
time (`/proc/self/stat`, every thread), is what others used; each job this process runs in the background
(`background()`, the map drawn while the next round generates) counts as one more busy core, since its CPU time is
this process's own. Elsewhere (no `/proc`), nothing is known and the teacher keeps its setting.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

RECHECK_S = 0.5  # how often the teacher looks again; one look costs two small file reads (~50 µs)
SLACK = 0.25  # cores others may use before one fewer thread runs: a busy core costs far more than an idle one gains

_background = 0
_lock = threading.Lock()


@contextmanager
def background() -> Iterator[None]:
    """Mark work this process does beside the teacher (one core's worth), so the teacher leaves a core to it."""
    global _background
    with _lock:
        _background += 1
    try:
        yield
    finally:
        with _lock:
            _background -= 1


def background_jobs() -> int:
    return _background


@dataclass(frozen=True)
class CpuTimes:
    """Jiffies since boot: all cores' busy and total time, and this process's own CPU time (every thread)."""

    busy: int
    total: int
    own: int


def read_times() -> CpuTimes | None:
    """The kernel's counters now, or None where there is no /proc (macOS, Windows) or it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        with open("/proc/self/stat", encoding="ascii") as f:
            own = f.read().rsplit(")", 1)[1].split()  # the command name may hold spaces; fields after it
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return CpuTimes(busy=total - idle, total=total, own=int(own[11]) + int(own[12]))  # utime + stime


class FreeCores:
    """Cores that others left free since the last call to `sample` (see the module docstring)."""

    def __init__(self, cores: int | None = None, reader: Callable[[], CpuTimes | None] = read_times):
        self.cores = cores or os.cpu_count() or 1
        self.reader = reader
        self.last = reader()

    def sample(self) -> float | None:
        """Cores free of others' work over the time since the last sample (None when it cannot be known)."""
        now = self.reader()
        before, self.last = self.last, now
        if now is None or before is None or now.total <= before.total:
            return None
        per_core = (now.total - before.total) / self.cores  # elapsed jiffies
        others = max(0.0, (now.busy - before.busy) - (now.own - before.own)) / per_core
        return max(0.0, self.cores - others - background_jobs())


def threads_for(free: float | None, most: int) -> int:
    """Threads to run given the free cores: every free core (with SLACK), at least 1, at most `most`."""
    if free is None:
        return most
    return max(1, min(most, math.floor(free + SLACK)))


class ThreadGovernor:
    """Picks a thread count for the teacher from `FreeCores`, at most once every RECHECK_S seconds."""

    def __init__(self, most: int, free: FreeCores | None = None, clock: Callable[[], float] = time.monotonic):
        self.most = most
        self.free = free or FreeCores()
        self.clock = clock
        self.current = most  # until there is a first interval to measure (one prompt at most)
        self.checked = clock()

    def threads(self) -> int:
        """The count to run now (the last one when it was chosen less than RECHECK_S ago)."""
        if self.most > 1 and self.clock() - self.checked >= RECHECK_S:
            self.current = threads_for(self.free.sample(), self.most)
            self.checked = self.clock()
        return self.current

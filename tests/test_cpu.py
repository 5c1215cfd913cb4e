"""gold.cpu: the cores others leave free, from the kernel's counters, and the thread count the teacher runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gold import cpu
from gold.cpu import FreeCores, ThreadGovernor, threads_for
from support import Counters


def test_free_cores_are_what_others_left_and_background_work_takes_one():
    counters = Counters(cores=2)
    free = FreeCores(cores=2, reader=counters)
    assert free.sample() is None  # no time has passed: nothing to measure
    counters.tick(others=0.0, own=2.0)  # this process alone, on both cores
    assert free.sample() == pytest.approx(2.0)
    counters.tick(others=1.0, own=1.0)  # someone else holds a core
    assert free.sample() == pytest.approx(1.0)
    counters.tick(others=0.1, own=1.0)
    with cpu.background():  # the map drawn beside the teacher: its CPU time is this process's own
        assert cpu.background_jobs() == 1
        assert free.sample() == pytest.approx(0.9)
    assert cpu.background_jobs() == 0


def test_threads_leave_a_busy_core_alone_and_stay_within_the_setting():
    assert threads_for(2.0, 2) == 2 and threads_for(1.8, 2) == 2  # within the slack: every core
    assert threads_for(1.7, 2) == 1 and threads_for(0.0, 2) == 1  # a core a third busy is not worth a thread
    assert threads_for(7.9, 4) == 4 and threads_for(None, 3) == 3  # never above the setting; unknown: the setting


def test_the_governor_looks_again_only_after_its_interval():
    counters, clock = Counters(cores=2), [0.0]
    gov = ThreadGovernor(2, FreeCores(cores=2, reader=counters), clock=lambda: clock[0])
    assert gov.threads() == 2  # nothing measured yet
    counters.tick(others=1.0, own=1.0)
    clock[0] += cpu.RECHECK_S / 2
    assert gov.threads() == 2  # too soon to look
    clock[0] += cpu.RECHECK_S
    assert gov.threads() == 1
    counters.tick(others=0.0, own=1.0)  # the other process ended
    clock[0] += cpu.RECHECK_S
    assert gov.threads() == 2


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the kernel's counters are read from /proc")
def test_a_spinning_process_is_seen_by_the_real_counters():
    free = FreeCores()
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        free.sample()
        time.sleep(1.0)
        seen = free.sample()
    finally:
        spin.kill()
        spin.wait()
    assert seen is not None and seen <= free.cores - 0.5  # about one core is the other process's

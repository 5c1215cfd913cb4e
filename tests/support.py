"""Test helpers shared by test modules (imported as `support`; conftest.py holds only fixtures, because
several conftest modules exist and `import conftest` would be ambiguous)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PYTHON = sys.executable


def tiny_settings(**overrides):
    """The smallest GOLD run that still exercises every step on the real embedded models."""
    from gold.specs import GoldSettings

    s = GoldSettings(rounds=2, samples_per_round=4, probe_size=2, seed=1)
    s.teacher.engine = "transformers"  # the same engine wherever llama.cpp is or is not built (fixtures record it)
    s.teacher.max_new_tokens = 24
    s.teacher.batch_size = 6
    s.student.precision = "fp32"  # the same arithmetic on every CPU, bf16 or not (fixtures record it)
    s.student.min_steps = 4
    s.student.epochs = 1
    s.student.batch_size = 8
    for k, v in overrides.items():
        if not hasattr(s, k):  # a setting that no longer exists must fail here, not be silently ignored
            raise AttributeError(f"GoldSettings has no setting {k!r}")
        setattr(s, k, v)
    return s


def as_queued(settings):
    """The settings as a queued run stores them (`gold.runs.queued_teacher`): the "auto" engine resolved to the one
    the run runs on, and on llama.cpp the "auto" GGUF weights to those it runs."""
    from dataclasses import replace

    from gold.runs import queued_teacher

    return replace(settings, teacher=queued_teacher(settings.teacher))


def without_maps():
    """Run hooks that draw no map after a round, for tests that call the loop directly and read no map."""
    from gold.loop import RunHooks

    return RunHooks(draw_maps=False)


def tiny_task(store, key: str = "sst2", eval_rows: int = 16) -> int:
    """An example task with a short evaluation set, so measuring a round takes a moment."""
    from gold.examples import example_spec

    spec = example_spec(key)
    spec.eval_set = spec.eval_set[:eval_rows]
    return store.create_task(spec)


def start_worker(home, *args, env_extra=None):
    """A real worker process on `home`, as `make run` starts it."""
    import subprocess

    env = {**os.environ, "GOLD_HOME": str(home), "GOLD_HEARTBEAT_S": "1", **(env_extra or {})}
    return subprocess.Popen([PYTHON, "-m", "gold", "worker", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Counters:
    """A stand-in for `gold.cpu.read_times`: kernel counters that advance as a test says, `tick(others=, own=)`
    in cores busy (others' and this process's) over `jiffies`."""

    def __init__(self, cores: int):
        from gold.cpu import CpuTimes

        self.cores, self.now = cores, CpuTimes(busy=0, total=0, own=0)

    def tick(self, others: float, own: float, jiffies: int = 100) -> None:
        from gold.cpu import CpuTimes

        n = self.now
        busy = round((others + own) * jiffies)
        self.now = CpuTimes(busy=n.busy + busy, total=n.total + self.cores * jiffies, own=n.own + round(own * jiffies))

    def __call__(self):
        return self.now


def gguf_header(path, ftype: int | None, size: int = 0) -> None:
    """A GGUF file's header alone (no tensors): an architecture, then general.file_type when given; `size` makes
    it that long (sparse), as a larger model's file would be."""
    import struct

    def kv_string(key: str, value: str) -> bytes:
        k, v = key.encode(), value.encode()
        return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v

    kvs = [kv_string("general.architecture", "llama")]
    if ftype is not None:
        kvs.append(struct.pack("<Q", 17) + b"general.file_type" + struct.pack("<II", 4, ftype))
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
    if size:
        os.truncate(path, size)

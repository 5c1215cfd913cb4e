"""The GOLD loop run by a real worker process on the real embedded models (tiny settings).

One finished run is shared by the tests that only read it; the crash test runs its own.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from support import start_worker, tiny_settings, tiny_task

from gold.runs import start_run
from gold.steps import STEPS
from gold.store import Store

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, what: str, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.returncode}) before {what}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def finished(finished_run):
    home, gold_id, base_id = finished_run
    return Store(home), gold_id, base_id


def test_run_finishes_every_round_with_metrics(finished):
    store, run_id, _ = finished
    run = store.get_run(run_id)
    assert run.status == "done", run.error
    rounds = store.rounds(run_id)
    assert [r.n for r in rounds] == [1, 2] and all(r.status == "done" for r in rounds)
    for r in rounds:
        m = r.metrics
        assert m.metric_name == "accuracy" and 0 <= m.metric <= 1 and m.metric_rows == 16
        assert m.energy_hist and sum(m.energy_hist["counts"]) > 0
        assert list(m.step_seconds) == list(STEPS) and all(v >= 0 for v in m.step_seconds.values())
        assert Path(r.checkpoint).joinpath("config.json").is_file()
        assert Path(r.checkpoint).parent.joinpath("train_ids.json").is_file()
    assert store.mapped_rounds(run_id) == [1, 2]  # drawn in the background, and the run waited for the last
    assert run.usage["completion_tokens"] > 0


def test_every_prompt_is_stored_once_kept_or_rejected(finished):
    store, run_id, base_id = finished
    for n in (1, 2):
        assert len(store.samples(run_id, round_n=n, role="train")) == 4
        assert len(store.samples(run_id, round_n=n, role="probe")) == 2
        # the baseline spends the same teacher budget on plain generation: samples + probes
        assert len(store.samples(base_id, round_n=n, role="train")) == 6
        assert store.samples(base_id, round_n=n, role="probe") == []
    for row in store.samples(run_id):
        assert (row.reject_reason is None) == bool(row.inputs or row.output is None) or row.reject_reason


def test_training_never_sees_probes_and_noise(finished):
    store, run_id, _ = finished
    r1 = store.round(run_id, 1).metrics
    kept_r1 = len(store.samples(run_id, round_n=1, role="train", kept_only=True))
    assert r1.train_size == 8 + kept_r1  # seeds + round-1 samples; no probes, nothing flagged yet
    kept_train = len(store.samples(run_id, role="train", kept_only=True))
    r2 = store.round(run_id, 2).metrics
    assert r2.train_size <= 8 + kept_train
    flags = {row.flag for row in store.samples(run_id, kept_only=True)}
    assert flags <= {"ok", "noise", "feedback"}
    assert all(row.energy is not None for row in store.samples(run_id, kept_only=True))


def test_baseline_has_no_feedback_or_noise(finished):
    store, _, base_id = finished
    assert store.get_run(base_id).status == "done"
    assert {row.flag for row in store.samples(base_id, kept_only=True)} == {"ok"}


def test_kill_9_mid_run_then_a_new_worker_resumes(tmp_path):
    home = tmp_path / "home"
    store = Store(home)
    task_id = tiny_task(store)
    [run_id] = start_run(store, task_id, tiny_settings(rounds=2), name="crash")
    proc = start_worker(home, "--no-maps")
    # Kill it once round 1 has trained (mid-run, between checkpoints of round 2 at the latest).
    wait_for(lambda: (r := store.round(run_id, 1)) is not None and r.step in ("train", "probe", "score", "select", "done"),
             600, "round 1 to train", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.get_run(run_id).status == "running"  # orphaned: nobody finished it
    wait_for(lambda: time.time() - store.get_run(run_id).heartbeat > 3, 30, "the heartbeat to go stale")
    resumed = start_worker(home, "--once", "--no-maps", env_extra={"GOLD_WORKER_STALE_S": "2"})
    out, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, out[-3000:]
    run = store.get_run(run_id)
    assert run.status == "done", run.error
    assert any("resumed" in e["message"] for e in store.events(run_id))
    for n in (1, 2):  # nothing lost, nothing twice
        assert len(store.samples(run_id, round_n=n, role="train")) == 4
        assert len(store.samples(run_id, round_n=n, role="probe")) == 2
    assert [r.status for r in store.rounds(run_id)] == ["done", "done"]

    # A veto made after the run, then "retrain the student now": an extra round trains without those samples.
    kept = store.samples(run_id, role="train", kept_only=True)
    vetoed = [r.id for r in kept[:2]]
    store.set_vetoed(vetoed)
    before = store.sample_counts(run_id)["generated"]
    store.request_retrain(run_id)
    retrainer = start_worker(home, "--once", "--no-maps")
    out, _ = retrainer.communicate(timeout=600)
    assert retrainer.returncode == 0, out[-3000:]
    assert store.get_run(run_id).status == "done"
    r3 = store.round(run_id, 3)
    assert r3.status == "done" and r3.metrics.retrain is True
    trained_on = json.loads((Path(r3.checkpoint).parent / "train_ids.json").read_text())["sample_ids"]
    assert not set(vetoed) & set(trained_on)
    assert store.sample_counts(run_id)["generated"] == before  # nothing generated


def test_kill_9_inside_each_step_then_resume_loses_nothing_and_stores_nothing_twice(tmp_path):
    """One run, killed by SIGKILL inside generate, then (resumed) inside train, then inside score: each time at a
    failpoint after part of the step's output is written and before the step is recorded. Every resume starts
    that round at the interrupted step, and at the end every prompt is stored exactly once (one run for the three
    kills: a worker process per kill and resume instead of a run per step)."""
    home = tmp_path / "home"
    store = Store(home)
    task_id = tiny_task(store)
    [run_id] = start_run(store, task_id, tiny_settings(rounds=1), name="die in every step")
    for point, done_before in (("generate", None), ("train", "label"), ("score", "probe")):
        proc = start_worker(home, "--once", "--no-maps",
                            env_extra={"GOLD_FAILPOINTS": point, "GOLD_WORKER_STALE_S": "2"})
        proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, point
        assert store.get_run(run_id).status == "running"  # orphaned mid-step
        assert store.round(run_id, 1).step == done_before, point  # the interrupted step was not recorded
        if point == "generate":
            assert store.samples(run_id, role="train")  # partial output is on disk…
        wait_for(lambda: time.time() - store.get_run(run_id).heartbeat > 3, 30, "the heartbeat to go stale")
    resumed = start_worker(home, "--once", "--no-maps", env_extra={"GOLD_WORKER_STALE_S": "2"})
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    run = store.get_run(run_id)
    assert run.status == "done", run.error
    m = store.round(run_id, 1).metrics
    # …and after the resumes every prompt is stored exactly once (kept or rejected), none twice.
    assert len(store.samples(run_id, role="train")) == m.gen_kept + m.gen_rejected == 4
    assert len(store.samples(run_id, role="probe")) == 2
    assert all(s.energy is not None for s in store.samples(run_id, kept_only=True))
    assert Path(store.round(run_id, 1).checkpoint).is_dir()
    assert store.mapped_rounds(run_id) == []  # `gold worker --no-maps`: the Explore page draws it when asked


def test_vetoes_while_a_round_writes_never_see_a_locked_database(tmp_path):
    """The Explore page vetoes and restores samples while the worker stores samples, scores and flags: every
    write waits its turn (WAL + busy timeout + BEGIN IMMEDIATE), none fails with "database is locked"."""
    home = tmp_path / "home"
    store = Store(home)
    task_id = tiny_task(store)
    [run_id] = start_run(store, task_id, tiny_settings(rounds=2), name="busy")
    proc = start_worker(home, "--once", "--no-maps")
    page = Store(home)  # the page's own connection, as each Streamlit session has
    writes = errors = 0
    flip = True
    while proc.poll() is None:
        ids = [r.id for r in page.samples(run_id, kept_only=True)]
        if ids:
            try:
                page.set_vetoed(ids[::2], vetoed=flip)
                page.add_event("page heartbeat", run_id=run_id)
                writes += 2
            except Exception as e:  # noqa: BLE001 — any failure is what this test looks for
                errors += 1
                print(type(e).__name__, e)
            flip = not flip
        time.sleep(0.02)
    out = proc.stdout.read()
    assert proc.returncode == 0, out[-3000:]
    assert store.get_run(run_id).status == "done", store.get_run(run_id).error
    assert errors == 0 and writes > 20, (errors, writes)
    assert "locked" not in out


def test_cancel_a_running_run(tmp_path):
    home = tmp_path / "home"
    store = Store(home)
    task_id = tiny_task(store)
    [run_id] = start_run(store, task_id, tiny_settings(rounds=3), name="cancel me")
    proc = start_worker(home, "--once", "--no-maps")
    wait_for(lambda: store.get_run(run_id).status == "running", 120, "the run to start", proc)
    store.request_cancel(run_id)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert store.get_run(run_id).status == "cancelled"
    assert len(store.rounds(run_id)) < 3


def test_map_in_the_students_own_space(finished):
    from gold.maps import compute_map, map_frame

    store, run_id, _ = finished
    n = compute_map(store, run_id, 2, space="student")
    assert n == len(store.map_points(run_id, 2, "encoder")) == len(store.map_points(run_id, 2, "student"))
    frame = map_frame(store, run_id, 2, "student")
    assert len(frame) == n and frame[["x", "y"]].notna().all().all()

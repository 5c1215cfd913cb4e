"""The store's run lifecycle: claim, heartbeat, stale takeover, cancel, resume, samples, flags and vetoes."""

from __future__ import annotations

import sqlite3
import time

import pytest

from gold.examples import example_spec
from gold.specs import GoldSettings
from gold.store import NotFound, Store


@pytest.fixture
def task_id(store):
    return store.create_task(example_spec("sst2"))


def test_migrates_a_version_1_database(home):
    from gold import store as store_mod

    home.mkdir(parents=True)
    db = sqlite3.connect(home / "gold.db")
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)")
    s = store_mod.Store.__new__(store_mod.Store)  # apply only migration 1 by hand, as an old release did
    import sqlite_utils

    sdb = sqlite_utils.Database(db)
    store_mod.MIGRATIONS[0](sdb)
    db.execute("INSERT INTO schema_version VALUES (1, 0)")
    db.execute("INSERT INTO tasks (name, kind, instruction, labels, input_fields, output_name, created_at, updated_at)"
               " VALUES ('old', 'classification', 'i', '[\"a\",\"b\"]', '[\"text\"]', 'label', 0, 0)")
    db.commit()
    db.close()
    s = Store(home)
    assert s.schema_version() == store_mod.SCHEMA_VERSION >= 2
    assert "workers" in s.db.table_names()
    assert s.get_task("old").spec.labels == ["a", "b"]  # data kept across the migration
    assert "teacher_probs" in s.db["samples"].columns_dict  # migration 3: soft labels


def test_teacher_probs_are_stored_per_sample_and_read_back_as_lists(store, task_id):
    run_id = store.create_run(task_id, GoldSettings().to_dict())
    a, b = store.add_samples(run_id, 1, "train", [{"inputs": {"text": "x"}, "output": "positive"},
                                                  {"inputs": {"text": "y"}, "output": "negative"}])
    store.set_teacher_probs({a: [0.25, 0.75]})
    rows = {r.id: r for r in store.samples(run_id)}
    assert rows[a].teacher_probs == [0.25, 0.75] and rows[b].teacher_probs is None


def test_claim_heartbeat_and_stale_takeover(store, task_id):
    run_id = store.create_run(task_id, GoldSettings().to_dict(), name="r1")
    assert store.get_run(run_id).status == "queued"
    assert store.claim_run("w1") == run_id
    assert store.claim_run("w2") is None  # running with a fresh heartbeat: not claimable
    assert store.heartbeat_run(run_id, "w1")
    store.db.execute("UPDATE runs SET heartbeat=? WHERE id=?", [time.time() - 120, run_id])
    assert store.claim_run("w2", stale_after=60) == run_id  # w1 presumed dead: w2 resumes
    assert not store.heartbeat_run(run_id, "w1")  # w1 learns it was superseded
    assert any("resumed" in e["message"] for e in store.events(run_id))


def test_cancel_and_resume(store, task_id):
    queued = store.create_run(task_id, {}, name="q")
    store.request_cancel(queued)
    assert store.get_run(queued).status == "cancelled"
    assert store.claim_run("w") is None
    store.resume_run(queued)
    assert store.get_run(queued).status == "queued"
    assert store.claim_run("w") == queued
    store.request_cancel(queued)
    assert store.cancel_requested(queued) and store.get_run(queued).status == "running"
    store.finish_run(queued, "cancelled")
    with pytest.raises(NotFound):
        store.get_run(999)


def test_samples_flags_vetoes_and_training_set(store, task_id):
    run_id = store.create_run(task_id, {})
    ids = store.add_samples(run_id, 1, "train", [
        {"inputs": {"text": "good"}, "output": "positive"},
        {"inputs": {"text": "bad"}, "output": "negative"},
        {"inputs": {"text": "odd"}, "output": "negative"},
        {"inputs": {}, "output": None, "reject_reason": "unparseable", "raw": "???"},
    ])
    store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "elsewhere"}, "output": "positive"}])
    assert len(store.samples(run_id, trainable_only=True)) == 3
    store.set_flags(run_id, {ids[2]: "noise", ids[0]: "feedback"})
    store.set_vetoed([ids[1]])
    trainable = [r.inputs["text"] for r in store.samples(run_id, trainable_only=True)]
    assert trainable == ["good"]  # noise and vetoed rows out; probes never trained on
    counts = store.sample_counts(run_id)
    assert counts == {"generated": 5, "kept": 3, "rejected": 1, "noise": 1, "vetoed": 1, "probe": 1, "feedback": 1}
    store.set_vetoed([ids[1]], vetoed=False)
    assert len(store.samples(run_id, trainable_only=True)) == 2
    assert store.reject_reasons(run_id) == {"unparseable": 1}
    store.delete_samples(run_id, 1, "probe")
    assert store.sample_counts(run_id)["probe"] == 0


def test_rounds_record_steps_and_metrics(store, task_id):
    run_id = store.create_run(task_id, {})
    store.start_round(run_id, 1)
    store.start_round(run_id, 1)  # idempotent on resume
    store.set_round_step(run_id, 1, "generate", {"kept": 10})
    store.set_round_step(run_id, 1, "train", {"train_size": 18}, checkpoint="/x")
    r = store.round(run_id, 1)
    assert (r.step, r.metrics.to_dict(), r.checkpoint, r.status) == ("train", {"kept": 10, "train_size": 18}, "/x", "running")
    store.finish_round(run_id, 1, {"metric": 0.5})
    assert store.round(run_id, 1).status == "done" and store.rounds(run_id)[0].metrics.metric == 0.5


def test_usage_totals_and_workers(store, task_id):
    run_id = store.create_run(task_id, {})
    store.add_usage(run_id, prompt_tokens=10, completion_tokens=5)
    assert store.add_usage(run_id, prompt_tokens=1, completion_tokens=1) == {"prompt_tokens": 11, "completion_tokens": 6}
    store.register_worker("w", 1, "h")
    assert [w["id"] for w in store.live_workers()] == ["w"]
    store.remove_worker("w")
    assert store.live_workers() == []


def test_claim_can_be_restricted_to_given_runs(store, task_id):
    first = store.create_run(task_id, {})
    second = store.create_run(task_id, {})
    assert store.claim_run("inline", only=[second]) == second
    assert store.claim_run("inline", only=[second]) is None
    assert store.claim_run("inline", only=[]) is None
    assert store.claim_run("w") == first


def test_concurrent_workers_never_take_the_same_run(store, task_id, home):
    """Four processes claim from one store at once: every queued run is taken exactly once."""
    import subprocess
    import textwrap

    from support import PYTHON, ROOT

    runs = {store.create_run(task_id, {}) for _ in range(40)}
    code = textwrap.dedent(f"""
        import sys
        from gold.store import Store
        s = Store({str(home)!r})
        got = []
        while (r := s.claim_run(sys.argv[1])) is not None:
            got.append(r)
        print(" ".join(map(str, got)))
    """)
    procs = [subprocess.Popen([PYTHON, "-c", code, f"w{i}"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    claimed = [int(x) for p in procs for x in p.communicate(timeout=120)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(claimed) == sorted(runs)  # all taken, none twice


def filled_run(store, task_id: int, name: str) -> int:
    """A finished run with a row in every per-run table (rounds, samples, events, map points) and an artifacts
    folder holding a checkpoint-like file."""
    run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name=name)
    [sample] = store.add_samples(run_id, 1, "train", [{"inputs": {"text": f"{name} text"}, "output": "positive"}])
    store.start_round(run_id, 1)
    store.finish_round(run_id, 1, {"metric": 0.5})
    store.set_map_points(run_id, 1, [("sample", sample, 0.0, 1.0)])
    store.add_event("a note", run_id=run_id, progress=0.5)
    store.finish_run(run_id, "done")
    student = store.run_dir(run_id) / "round-1" / "student"
    student.mkdir(parents=True)
    (student / "model.safetensors").write_bytes(b"\0" * 1000)
    return run_id


def per_run_rows(store, run_id: int) -> dict[str, int]:
    return {table: store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id=?", [run_id]).fetchone()[0]
            for table in ("rounds", "samples", "events", "map_points")}


def test_delete_run_removes_exactly_its_rows_and_artifacts(store, task_id):
    doomed, sibling = filled_run(store, task_id, "doomed"), filled_run(store, task_id, "sibling")
    sibling_before = (per_run_rows(store, sibling), store.get_run(sibling), store.samples(sibling),
                      store.rounds(sibling), store.map_points(sibling, 1))
    assert all(per_run_rows(store, doomed).values())
    store.delete_run(doomed)
    with pytest.raises(NotFound):
        store.get_run(doomed)
    assert per_run_rows(store, doomed) == {"rounds": 0, "samples": 0, "events": 0, "map_points": 0}
    assert not store.run_dir(doomed).exists()
    assert (per_run_rows(store, sibling), store.get_run(sibling), store.samples(sibling), store.rounds(sibling),
            store.map_points(sibling, 1)) == sibling_before
    assert (store.run_dir(sibling) / "round-1" / "student" / "model.safetensors").is_file()
    assert [t.n_runs for t in store.list_tasks()] == [1]  # the task stays, with its other run
    with pytest.raises(NotFound, match="no run"):
        store.delete_run(doomed)


def test_a_run_that_has_not_ended_is_not_deleted(store, task_id):
    from gold.store import StoreError

    queued = store.create_run(task_id, {}, name="waiting")
    with pytest.raises(StoreError, match="has not ended .*queued.*cancel it first"):
        store.delete_run(queued)
    assert store.claim_run("w") == queued
    with pytest.raises(StoreError, match="running"):
        store.delete_run(queued)
    assert store.get_run(queued).status == "running" and store.events(queued)


def test_runs_list_their_finished_rounds_and_a_deleted_checkpoint_is_recorded(store, task_id):
    from gold.store import tree_bytes

    run_id = filled_run(store, task_id, "r")
    empty = store.create_run(task_id, {}, name="empty")
    assert {r.id: r.rounds_done for r in store.list_runs()} == {run_id: 1, empty: 0}
    assert tree_bytes(store.run_dir(run_id)) == 1000 and tree_bytes(store.run_dir(empty)) == 0
    store.mark_checkpoint_deleted(run_id, 1)
    r = store.round(run_id, 1)
    assert r.checkpoint is None and r.metrics.to_dict() == {"metric": 0.5, "checkpoint_deleted": True}

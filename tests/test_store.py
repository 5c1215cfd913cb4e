"""The store on a real SQLite file: round trips, migrations, atomic failures, clear errors."""

from __future__ import annotations

import sqlite3

import pytest

from gold.specs import Example, SpecError, TaskSpec
from gold.store import SCHEMA_VERSION, NotFound, Store, StoreError


def spec(name="sentiment", **kw) -> TaskSpec:
    base = dict(
        name=name, kind="classification", instruction="Classify the review.", labels=["negative", "positive"],
        seeds=[Example({"text": "awful"}, "negative"), Example({"text": "great"}, "positive")],
        eval_set=[Example({"text": "fine <b>bold</b> \u200f"}, "positive")],
    )
    base.update(kw)
    return TaskSpec(**base)


def test_migrates_an_empty_file_and_uses_wal(home):
    home.mkdir(parents=True)
    (home / "gold.db").touch()  # an empty file is a valid, empty SQLite database
    s = Store(home)
    assert s.schema_version() == SCHEMA_VERSION
    tables = set(s.db.table_names())
    assert {"tasks", "examples", "runs", "rounds", "samples", "events", "map_points", "schema_version"} <= tables
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()
    again = Store(home)  # reopening applies nothing twice
    assert again.db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_task_round_trip(store):
    task_id = store.create_task(spec())
    got = store.get_task(task_id)
    assert got.spec == spec()
    assert store.get_task("SENTIMENT").id == task_id  # names are case-insensitive
    [summary] = store.list_tasks()
    assert (summary.name, summary.n_seeds, summary.n_eval, summary.n_runs) == ("sentiment", 2, 1, 0)


def test_name_taken_and_invalid_spec_store_nothing(store):
    store.create_task(spec())
    before = store.db.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
    with pytest.raises(SpecError, match="already exists"):
        store.create_task(spec(name="Sentiment"))
    with pytest.raises(SpecError):
        store.create_task(spec(name="other", instruction=""))
    assert len(store.list_tasks()) == 1
    assert store.db.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == before


def test_update_is_atomic(store):
    task_id = store.create_task(spec())
    new = spec(instruction="Say if the review is positive.", seeds=spec().seeds + [Example({"text": "meh"}, "negative")])
    store.update_task(task_id, new)
    assert store.get_task(task_id).spec.instruction == "Say if the review is positive."
    assert len(store.get_task(task_id).spec.seeds) == 3
    broken = spec(seeds=[Example({"text": "only one label"}, "negative")])
    with pytest.raises(SpecError, match="no seed example"):
        store.update_task(task_id, broken)
    assert len(store.get_task(task_id).spec.seeds) == 3  # unchanged


def test_failure_inside_a_transaction_rolls_back(store):
    task_id = store.create_task(spec())
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.db.execute("DELETE FROM examples WHERE task_id=?", [task_id])
            raise RuntimeError("boom")
    assert len(store.get_task(task_id).spec.seeds) == 2


def test_duplicate_and_delete(store):
    task_id = store.create_task(spec())
    copy_id = store.duplicate_task(task_id, store.unused_task_name("sentiment"))
    assert store.get_task(copy_id).spec.name == "sentiment (2)"
    assert store.get_task(copy_id).spec.seeds == store.get_task(task_id).spec.seeds
    store.delete_task(task_id)
    with pytest.raises(NotFound):
        store.get_task(task_id)
    assert store.db.execute("SELECT COUNT(*) FROM examples WHERE task_id=?", [task_id]).fetchone()[0] == 0
    assert [t.id for t in store.list_tasks()] == [copy_id]


def test_clear_errors_for_unusable_homes(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot use its data folder"):
        Store(blocker / "home")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "gold.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a GOLD Studio database|cannot open"):
        Store(bad)


def test_newer_schema_is_refused(home):
    Store(home).close()
    conn = sqlite3.connect(home / "gold.db")
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", [SCHEMA_VERSION + 5])
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer GOLD Studio"):
        Store(home)


def test_artifact_paths_use_ids_only(store):
    assert store.run_dir(7) == store.artifacts / "run-7"
    with pytest.raises(ValueError):
        store.run_dir("../../etc")  # type: ignore[arg-type]

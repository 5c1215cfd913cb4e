"""The store: the only module that speaks SQL.

Everything GOLD Studio knows lives in one folder, `GOLD_HOME` (default `./gold_data/`): `gold.db`, a SQLite
file in WAL mode so the pages and the worker can read while the other writes, and `artifacts/` for model
checkpoints. Artifact folders are named by numeric ids only, never by user-typed names, so no name can
escape `GOLD_HOME`.

The schema is versioned: `MIGRATIONS` is an append-only list, and opening a store applies those it has not
seen, each in its own transaction. Every write that touches several rows runs in one transaction, so a
failed import or edit leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlite_utils

from gold.home import gold_home
from gold.records import Round, RoundMetrics, Run, RunSummary, Sample, StoredTask, TaskSummary, from_row
from gold.specs import Example, SpecError, TaskSpec

DB_NAME = "gold.db"
BUSY_TIMEOUT_MS = 30_000
# Below this much free space on GOLD_HOME's disk the app warns and the worker stops before its next step (a
# round writes a ~90 MB checkpoint; SQLite failing mid-write with "disk is full" helps nobody).
MIN_FREE_MB = 500
# A run in any of these states has not ended: queued (any worker may claim it), held (waiting to be handed to a
# worker of its own, see worker.spawn_keyed_worker), reserved (handed to that worker), running.
ACTIVE_STATUSES = ("queued", "held", "reserved", "running")


def min_free_mb() -> float:
    """The free space (MB) the data folder's disk must keep: GOLD_MIN_FREE_MB, else MIN_FREE_MB."""
    return float(os.environ.get("GOLD_MIN_FREE_MB") or MIN_FREE_MB)


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says what to do about it."""


class NotFound(KeyError):
    """A task or run that does not exist (any more)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else "not found"


# -- schema ---------------------------------------------------------------------------------------------

def _m1_initial(db: sqlite_utils.Database) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            kind TEXT NOT NULL CHECK (kind IN ('classification', 'seq2seq')),
            instruction TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '[]',
            input_fields TEXT NOT NULL DEFAULT '["text"]',
            output_name TEXT NOT NULL DEFAULT 'label',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE examples (
            id INTEGER PRIMARY KEY,
            task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
            split TEXT NOT NULL CHECK (split IN ('seed', 'eval')),
            position INTEGER NOT NULL,
            inputs TEXT NOT NULL,
            output TEXT NOT NULL
        );
        CREATE INDEX examples_task ON examples(task_id, split, position);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            mode TEXT NOT NULL DEFAULT 'gold',
            settings TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued',
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            worker TEXT,
            heartbeat REAL,
            error TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL
        );
        CREATE INDEX runs_status ON runs(status);
        CREATE TABLE rounds (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'running',
            step TEXT,
            metrics TEXT NOT NULL DEFAULT '{}',
            checkpoint TEXT,
            started_at REAL,
            finished_at REAL,
            UNIQUE (run_id, n)
        );
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            round INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('train', 'probe')),
            inputs TEXT NOT NULL,
            output TEXT,
            energy REAL,
            prediction TEXT,
            confidence REAL,
            flag TEXT NOT NULL DEFAULT 'ok' CHECK (flag IN ('ok', 'noise', 'feedback')),
            vetoed INTEGER NOT NULL DEFAULT 0,
            vetoed_at REAL,
            reject_reason TEXT,
            raw TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX samples_run ON samples(run_id, round, role);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
            ts REAL NOT NULL,
            level TEXT NOT NULL DEFAULT 'info',
            message TEXT NOT NULL,
            progress REAL
        );
        CREATE INDEX events_run ON events(run_id, id);
        CREATE TABLE map_points (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            round INTEGER NOT NULL,
            space TEXT NOT NULL DEFAULT 'encoder' CHECK (space IN ('encoder', 'student')),
            source TEXT NOT NULL CHECK (source IN ('sample', 'seed', 'eval')),
            ref_id INTEGER NOT NULL,
            x REAL NOT NULL,
            y REAL NOT NULL,
            PRIMARY KEY (run_id, round, space, source, ref_id)
        );
        """
    )


def _execute_script(db: sqlite_utils.Database, script: str) -> None:
    """Run `;`-separated DDL statement by statement: sqlite3's executescript() would COMMIT the migration's
    surrounding transaction first, so a failing migration could leave half a schema behind."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m2_workers(db: sqlite_utils.Database) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            started_at REAL NOT NULL,
            heartbeat REAL NOT NULL,
            run_id INTEGER
        );
        ALTER TABLE runs ADD COLUMN usage TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE runs ADD COLUMN retrain_requested INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE samples ADD COLUMN label_prob REAL;
        CREATE INDEX samples_flag ON samples(run_id, role, flag, vetoed);
        CREATE TABLE embeddings (
            model TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model, text_hash)
        )
        """,
    )


def _m3_teacher_probs(db: sqlite_utils.Database) -> None:
    # The teacher's own label distribution for a generated sample (JSON list, one probability per label):
    # the soft targets of knowledge distillation, kept so a resumed run or a retrain does not ask again.
    _execute_script(db, "ALTER TABLE samples ADD COLUMN teacher_probs TEXT")


# Append only: a migration, once released, is never edited; fix forward with a new one.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m1_initial, _m2_workers, _m3_teacher_probs]
SCHEMA_VERSION = len(MIGRATIONS)


def training_roles(with_probes: bool = False) -> tuple[str, ...]:
    """The sample roles a student trains on: 'train', and 'probe' too in a run with `train_on_probes`. The one
    place this rule lives: the store's trainable_only filter, the label step, the noise filter and the review
    queue all ask here."""
    return ("train", "probe") if with_probes else ("train",)


class Store:
    """One GOLD_HOME folder. Cheap to open; open one per process (or per Streamlit session)."""

    def __init__(self, home: str | os.PathLike | None = None):
        self.home = gold_home(home)
        self.db_path = self.home / DB_NAME
        self.artifacts = self.home / "artifacts"
        try:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; every multi-row write is an explicit
            # BEGIN IMMEDIATE (see transaction()), so writers queue on the busy timeout instead of deadlocking.
            conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys=ON")
            self.db = sqlite_utils.Database(conn)
            self.db.enable_wal()
            self._migrate()
        except PermissionError as e:
            raise StoreError(
                f"GOLD Studio cannot write to its data folder {self.home} ({e.strerror}). "
                "Set GOLD_HOME to a folder you can write to."
            ) from None
        except sqlite3.OperationalError as e:
            raise StoreError(
                f"GOLD Studio cannot open its database {self.db_path}: {e}. "
                "Check that the disk is not full and that GOLD_HOME is writable."
            ) from None
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.db_path} is not a GOLD Studio database ({e}). Move it away or set GOLD_HOME.") from None
        except OSError as e:
            raise StoreError(f"GOLD Studio cannot use its data folder {self.home}: {e.strerror or e}.") from None

    def free_space_problem(self) -> str | None:
        """A sentence when the data folder's disk is nearly full (GOLD_MIN_FREE_MB, default 500), else None."""
        import shutil

        need_mb = min_free_mb()
        try:
            free_mb = shutil.disk_usage(self.home).free / 2**20
        except OSError:
            return None
        if free_mb >= need_mb:
            return None
        return (f"The disk holding the data folder {self.home} has {free_mb:,.0f} MB free; GOLD Studio needs at least "
                f"{need_mb:,.0f} MB to write round checkpoints safely. Free some space (or set GOLD_HOME to a "
                "larger disk); nothing stored so far is affected.")

    # -- plumbing -----------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)")
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path} was written by a newer GOLD Studio (schema {current}, this one knows {SCHEMA_VERSION}). "
                "Upgrade GOLD Studio or use another GOLD_HOME."
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                MIGRATIONS[version - 1](self.db)
                self.db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", [version, time.time()])

    def schema_version(self) -> int:
        row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def transaction(self):
        """All-or-nothing block: `with store.transaction(): ...`."""
        return _Transaction(self.db.conn)

    def close(self) -> None:
        self.db.conn.close()

    def _rows(self, sql: str, params: list | tuple = ()) -> Iterator[dict[str, Any]]:
        cur = self.db.execute(sql, params)
        cols = [c[0] for c in cur.description]
        for row in cur.fetchall():
            yield dict(zip(cols, row))

    def run_dir(self, run_id: int) -> Path:
        """Artifact folder of a run; named by id, so user text never becomes a path."""
        return self.artifacts / f"run-{int(run_id)}"

    # -- tasks --------------------------------------------------------------------------------------------
    def create_task(self, spec: TaskSpec) -> int:
        """Validate and store a new task with its seeds and evaluation rows; returns its id.
        Raises SpecError with every problem, including a name already taken; stores nothing then."""
        self._check_new_name(spec)
        now = time.time()
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO tasks (name, kind, instruction, labels, input_fields, output_name, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [spec.name, spec.kind, spec.instruction, json.dumps(spec.labels), json.dumps(spec.input_fields),
                 spec.output_name, now, now],
            )
            task_id = int(cur.lastrowid)
            self._write_examples(task_id, spec)
        return task_id

    def update_task(self, task_id: int, spec: TaskSpec) -> None:
        """Replace a task's definition, seeds and evaluation rows in one transaction."""
        self.get_task(task_id)  # raises NotFound
        problems = spec.problems()
        other = self._task_id_by_name(spec.name)
        if other is not None and other != task_id:
            problems.append(f"A task named '{spec.name}' already exists: choose another name.")
        if problems:
            raise SpecError(problems)
        with self.transaction():
            self.db.execute(
                "UPDATE tasks SET name=?, kind=?, instruction=?, labels=?, input_fields=?, output_name=?, updated_at=?"
                " WHERE id=?",
                [spec.name, spec.kind, spec.instruction, json.dumps(spec.labels), json.dumps(spec.input_fields),
                 spec.output_name, time.time(), task_id],
            )
            self.db.execute("DELETE FROM examples WHERE task_id=?", [task_id])
            self._write_examples(task_id, spec)

    def duplicate_task(self, task_id: int, new_name: str) -> int:
        spec = self.get_task(task_id).spec
        spec.name = new_name.strip()
        return self.create_task(spec)

    def delete_task(self, task_id: int) -> None:
        """Delete a task with its examples and runs (and their artifacts)."""
        self.get_task(task_id)
        run_ids = [r["id"] for r in self._rows("SELECT id FROM runs WHERE task_id=?", [task_id])]
        with self.transaction():
            self.db.execute("DELETE FROM tasks WHERE id=?", [task_id])
        for run_id in run_ids:
            _remove_tree(self.run_dir(run_id))

    def get_task(self, task: int | str) -> StoredTask:
        """A task by id or by name (names are case-insensitive)."""
        if isinstance(task, str) and not task.isdigit():
            rows = list(self._rows("SELECT * FROM tasks WHERE name=?", [task.strip()]))
        else:
            rows = list(self._rows("SELECT * FROM tasks WHERE id=?", [int(task)]))
        if not rows:
            raise NotFound(f"There is no task '{task}'.")
        t = rows[0]
        seeds, evals = [], []
        for r in self._rows("SELECT split, inputs, output FROM examples WHERE task_id=? ORDER BY split, position", [t["id"]]):
            ex = Example(inputs=json.loads(r["inputs"]), output=r["output"])
            (seeds if r["split"] == "seed" else evals).append(ex)
        spec = TaskSpec(
            name=t["name"], kind=t["kind"], instruction=t["instruction"], labels=json.loads(t["labels"]),
            input_fields=json.loads(t["input_fields"]), output_name=t["output_name"], seeds=seeds, eval_set=evals,
        )
        return StoredTask(id=t["id"], spec=spec, created_at=t["created_at"], updated_at=t["updated_at"])

    def list_tasks(self) -> list[TaskSummary]:
        sql = """
            SELECT t.id, t.name, t.kind, t.labels, t.updated_at,
                   (SELECT COUNT(*) FROM examples e WHERE e.task_id=t.id AND e.split='seed') AS n_seeds,
                   (SELECT COUNT(*) FROM examples e WHERE e.task_id=t.id AND e.split='eval') AS n_eval,
                   (SELECT COUNT(*) FROM runs r WHERE r.task_id=t.id) AS n_runs
            FROM tasks t ORDER BY t.updated_at DESC, t.id DESC
        """
        return [
            TaskSummary(id=r["id"], name=r["name"], kind=r["kind"], labels=json.loads(r["labels"]),
                        n_seeds=r["n_seeds"], n_eval=r["n_eval"], n_runs=r["n_runs"], updated_at=r["updated_at"])
            for r in self._rows(sql)
        ]

    def task_name_taken(self, name: str) -> bool:
        return self._task_id_by_name(name) is not None

    def unused_task_name(self, base: str) -> str:
        """`base`, or `base (2)`, `base (3)`… — the first name no task has yet."""
        name, i = base.strip(), 2
        while self.task_name_taken(name):
            name = f"{base.strip()} ({i})"
            i += 1
        return name

    def _task_id_by_name(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM tasks WHERE name=?", [(name or "").strip()]).fetchone()
        return int(row[0]) if row else None

    def _check_new_name(self, spec: TaskSpec) -> None:
        problems = spec.problems()
        if spec.name and self.task_name_taken(spec.name):
            problems.insert(0, f"A task named '{spec.name}' already exists: choose another name.")
        if problems:
            raise SpecError(problems)

    def _write_examples(self, task_id: int, spec: TaskSpec) -> None:
        rows = [
            (task_id, split, i, json.dumps(ex.inputs, ensure_ascii=False), ex.output.strip())
            for split, examples in (("seed", spec.seeds), ("eval", spec.eval_set))
            for i, ex in enumerate(examples)
        ]
        self.db.conn.executemany(
            "INSERT INTO examples (task_id, split, position, inputs, output) VALUES (?, ?, ?, ?, ?)", rows
        )

    # -- runs (overview; the engine's own run API comes with the worker) -----------------------------------
    def list_runs(self, task_id: int | None = None) -> list[RunSummary]:
        sql = """SELECT r.id, r.task_id, t.name AS task_name, r.name, r.mode, r.status, r.created_at,
                        r.finished_at, r.error,
                        (SELECT COUNT(*) FROM rounds d WHERE d.run_id = r.id AND d.status = 'done') AS rounds_done
                 FROM runs r JOIN tasks t ON t.id = r.task_id"""
        params: list[Any] = []
        if task_id is not None:
            sql += " WHERE r.task_id=?"
            params.append(task_id)
        sql += " ORDER BY r.id DESC"
        return [RunSummary(**r) for r in self._rows(sql, params)]

    # -- runs: lifecycle ----------------------------------------------------------------------------------
    def create_run(self, task_id: int, settings: dict[str, Any], name: str = "", mode: str = "gold",
                   held: bool = False) -> int:
        """Queue a run; a worker claims it. Settings are frozen here (JSON) for the run's whole life.
        held=True: no worker may claim it until `reserve_runs` hands it to one (see worker.spawn_keyed_worker)."""
        self.get_task(task_id)
        now = time.time()
        status = "held" if held else "queued"
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO runs (task_id, name, mode, settings, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [task_id, name.strip() or time.strftime("run %Y-%m-%d %H:%M"), mode, json.dumps(settings), status, now],
            )
            run_id = int(cur.lastrowid)
            self._event(run_id, f"Run {status} ({mode}).")
        return run_id

    def delete_run(self, run_id: int) -> None:
        """Delete one run: its rows (rounds, samples, events, map points) and its artifacts folder (checkpoints,
        cached exports); its task and every other run stay. A run that has not ended is refused, because its
        worker would go on writing rows and checkpoints for a run that no longer exists. The status is read inside
        the deleting transaction, so no worker can claim the run in between."""
        with self.transaction():
            status = self.get_run(run_id).status  # raises NotFound
            if status in ACTIVE_STATUSES:
                raise StoreError(f"Run {run_id} has not ended (it is {status}): cancel it first, and delete it once "
                                 "it has stopped.")
            for table in ("map_points", "samples", "events", "rounds"):
                self.db.execute(f"DELETE FROM {table} WHERE run_id=?", [run_id])
            self.db.execute("UPDATE workers SET run_id=NULL WHERE run_id=?", [run_id])
            self.db.execute("DELETE FROM runs WHERE id=?", [run_id])
        folder = self.run_dir(run_id)
        _remove_tree(folder)
        if folder.exists():
            raise StoreError(f"Run {run_id} was deleted, but its folder {folder} could not be removed completely: "
                             "delete that folder by hand to free its space.")

    def get_run(self, run_id: int) -> Run:
        rows = list(self._rows(
            "SELECT r.*, t.name AS task_name FROM runs r JOIN tasks t ON t.id = r.task_id WHERE r.id=?", [int(run_id)]
        ))
        if not rows:
            raise NotFound(f"There is no run {run_id}.")
        run = rows[0]
        run["settings"] = json.loads(run["settings"])
        run["usage"] = json.loads(run.get("usage") or "{}")
        run["cancel_requested"] = bool(run["cancel_requested"])
        run["retrain_requested"] = bool(run.get("retrain_requested"))
        return from_row(Run, run)

    def claim_run(self, worker_id: str, stale_after: float = 60.0, only: list[int] | None = None) -> int | None:
        """Atomically take the oldest queued run, or a 'running' run whose worker stopped heart-beating
        (it crashed): that one is resumed. `only` restricts the choice to those run ids (an inline CLI run).
        Returns the run id, or None when there is nothing to do. BEGIN IMMEDIATE makes the select-and-update
        one step, so two workers never take the same run."""
        now = time.time()
        restrict, params = "", [now - stale_after]
        if only is not None:
            restrict = f" AND id IN ({','.join('?' * len(only))})" if only else " AND 0"
            params += [int(i) for i in only]
        with self.transaction():
            row = self.db.execute(
                "SELECT id FROM runs WHERE ((status='queued' AND cancel_requested=0)"
                " OR (status='running' AND (heartbeat IS NULL OR heartbeat < ?))"
                " OR (status='reserved' AND (worker=? OR heartbeat < ?)))" + restrict + " ORDER BY id LIMIT 1",
                [params[0], worker_id, params[0], *params[1:]],
            ).fetchone()
            if row is None:
                return None
            run_id = int(row[0])
            prev = self.db.execute("SELECT status, worker FROM runs WHERE id=?", [run_id]).fetchone()
            self.db.execute(
                "UPDATE runs SET status='running', worker=?, heartbeat=?, started_at=COALESCE(started_at, ?), error=NULL"
                " WHERE id=?",
                [worker_id, now, now, run_id],
            )
            verb = "resumed after its worker stopped" if prev[0] == "running" else "started"
            self._event(run_id, f"Run {verb} by worker {worker_id}.")
        return run_id

    def reserve_runs(self, run_ids: list[int], worker_id: str) -> list[int]:
        """Hand queued runs to one named worker before it has started ('reserved'; its heartbeat keeps them): for
        runs whose API key lives only in that worker's environment, so no other worker claims them keyless.
        Returns the ids reserved."""
        now, reserved = time.time(), []
        with self.transaction():
            for run_id in run_ids:
                cur = self.db.execute(
                    "UPDATE runs SET status='reserved', worker=?, heartbeat=? WHERE id=? AND status IN ('queued', 'held')",
                    [worker_id, now, int(run_id)],
                )
                if cur.rowcount:
                    reserved.append(int(run_id))
                    self._event(int(run_id), f"Run reserved for worker {worker_id}.")
        return reserved

    def heartbeat_run(self, run_id: int, worker_id: str) -> bool:
        """Refresh the run's heartbeat; False when another worker has taken the run over."""
        with self.transaction():
            cur = self.db.execute("UPDATE runs SET heartbeat=? WHERE id=? AND worker=? AND status IN ('running', 'reserved')",
                                  [time.time(), run_id, worker_id])
        return cur.rowcount == 1

    def request_cancel(self, run_id: int) -> None:
        with self.transaction():
            status = self.get_run(run_id).status
            if status == "queued":
                self.db.execute("UPDATE runs SET status='cancelled', cancel_requested=1, finished_at=? WHERE id=?",
                                [time.time(), run_id])
                self._event(run_id, "Run cancelled before it started.")
            elif status == "running":
                self.db.execute("UPDATE runs SET cancel_requested=1 WHERE id=?", [run_id])
                self._event(run_id, "Cancel requested; the worker stops at the next step.")

    def cancel_requested(self, run_id: int) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM runs WHERE id=?", [run_id]).fetchone()
        return bool(row and row[0])

    def resume_run(self, run_id: int, held: bool = False) -> None:
        """Queue a stopped, failed or cancelled run again; it continues from its last finished step.
        held=True: for a worker of its own (see create_run)."""
        with self.transaction():
            status = self.get_run(run_id).status
            if status in ACTIVE_STATUSES:
                return
            self.db.execute(
                "UPDATE runs SET status=?, cancel_requested=0, error=NULL, finished_at=NULL, worker=NULL WHERE id=?",
                ["held" if held else "queued", run_id],
            )
            self._event(run_id, f"Run queued again (was {status}).")

    def request_retrain(self, run_id: int, held: bool = False) -> None:
        """Queue one more training of the student on the current data (vetoes and flags applied), without
        generating anything: the result is an extra round, so export and the map pick it up."""
        with self.transaction():
            status = self.get_run(run_id).status
            if status in ACTIVE_STATUSES:
                raise StoreError("The run has not ended: its next round already trains with your vetoes.")
            self.db.execute(
                "UPDATE runs SET retrain_requested=1, status=?, cancel_requested=0, error=NULL, finished_at=NULL,"
                " worker=NULL WHERE id=?", ["held" if held else "queued", run_id])
            self._event(run_id, "Retraining the student with the current vetoes was requested.")

    def clear_retrain(self, run_id: int) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET retrain_requested=0 WHERE id=?", [run_id])

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET status=?, error=?, finished_at=?, heartbeat=NULL WHERE id=?",
                            [status, error, time.time(), run_id])
            self._event(run_id, f"Run {status}" + (f": {error}" if error else "."), level="error" if error else "info")

    def add_usage(self, run_id: int, **counts: float) -> dict[str, float]:
        """Add token/cost counts to the run's running totals; returns the new totals."""
        with self.transaction():
            usage = self.get_run(run_id).usage
            for k, v in counts.items():
                usage[k] = usage.get(k, 0) + v
            self.db.execute("UPDATE runs SET usage=? WHERE id=?", [json.dumps(usage), run_id])
        return usage

    # -- rounds -------------------------------------------------------------------------------------------
    def round(self, run_id: int, n: int) -> Round | None:
        rows = [_round(r) for r in self._rows("SELECT * FROM rounds WHERE run_id=? AND n=?", [run_id, n])]
        return rows[0] if rows else None

    def rounds(self, run_id: int) -> list[Round]:
        return [_round(r) for r in self._rows("SELECT * FROM rounds WHERE run_id=? ORDER BY n", [run_id])]

    def start_round(self, run_id: int, n: int) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO rounds (run_id, n, status, step, started_at) VALUES (?, ?, 'running', NULL, ?)"
                " ON CONFLICT (run_id, n) DO NOTHING",
                [run_id, n, time.time()],
            )

    def set_round_step(self, run_id: int, n: int, step: str, metrics: RoundMetrics | dict[str, Any] | None = None,
                       checkpoint: str | None = None) -> None:
        """Record that `step` of round n is finished (the resume point), merging metrics."""
        if isinstance(metrics, RoundMetrics):
            metrics = metrics.to_dict()
        with self.transaction():
            current = self.round(run_id, n)
            merged = {**(current.metrics.to_dict() if current else {}), **(metrics or {})}
            self.db.execute(
                "UPDATE rounds SET step=?, metrics=?, checkpoint=COALESCE(?, checkpoint) WHERE run_id=? AND n=?",
                [step, json.dumps(merged), checkpoint, run_id, n],
            )

    def mark_checkpoint_deleted(self, run_id: int, n: int) -> None:
        """Record that round n's student folder was deleted to save space (`keep_checkpoints`): the round keeps its
        metrics and training-set record, and pages say the student is gone instead of looking for it."""
        with self.transaction():
            current = self.round(run_id, n)
            if current is None:
                return
            metrics = {**current.metrics.to_dict(), "checkpoint_deleted": True}
            self.db.execute("UPDATE rounds SET checkpoint=NULL, metrics=? WHERE run_id=? AND n=?",
                            [json.dumps(metrics), run_id, n])

    def finish_round(self, run_id: int, n: int, metrics: RoundMetrics | dict[str, Any]) -> None:
        with self.transaction():
            self.set_round_step(run_id, n, "done", metrics)
            self.db.execute("UPDATE rounds SET status='done', finished_at=? WHERE run_id=? AND n=?",
                            [time.time(), run_id, n])

    # -- samples ------------------------------------------------------------------------------------------
    def add_samples(self, run_id: int, round_n: int, role: str, rows: list[dict[str, Any]]) -> list[int]:
        """Store generated samples (kept or rejected: a rejected one has `reject_reason`). One transaction."""
        now = time.time()
        ids = []
        with self.transaction():
            for r in rows:
                cur = self.db.execute(
                    "INSERT INTO samples (run_id, round, role, inputs, output, reject_reason, raw, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, round_n, role, json.dumps(r.get("inputs") or {}, ensure_ascii=False), r.get("output"),
                     r.get("reject_reason"), r.get("raw"), now],
                )
                ids.append(int(cur.lastrowid))
        return ids

    def delete_samples(self, run_id: int, round_n: int, role: str) -> None:
        """Drop a round's samples of one role: used when an interrupted step is redone on resume."""
        with self.transaction():
            self.db.execute("DELETE FROM samples WHERE run_id=? AND round=? AND role=?", [run_id, round_n, role])

    def samples(self, run_id: int, round_n: int | None = None, role: str | None = None, kept_only: bool = False,
                trainable_only: bool = False, with_probes: bool = False) -> list[Sample]:
        """Samples of a run. kept_only: parsed ones (no reject reason). trainable_only: kept, role 'train' (or
        'probe' too, with_probes: a run with `train_on_probes`), not vetoed by a person and not flagged as noise —
        exactly what the student trains on."""
        sql, params = "SELECT * FROM samples WHERE run_id=?", [run_id]
        if round_n is not None:
            sql += " AND round=?"
            params.append(round_n)
        if role is not None:
            sql += " AND role=?"
            params.append(role)
        if kept_only or trainable_only:
            sql += " AND reject_reason IS NULL"
        if trainable_only:
            roles = training_roles(with_probes)
            sql += f" AND role IN ({','.join('?' * len(roles))}) AND vetoed=0 AND flag!='noise'"
            params.extend(roles)
        rows = []
        for r in self._rows(sql + " ORDER BY id", params):
            r["inputs"] = json.loads(r["inputs"])
            r["teacher_probs"] = json.loads(r["teacher_probs"]) if r.get("teacher_probs") else None
            r["vetoed"] = bool(r["vetoed"])
            rows.append(from_row(Sample, r))
        return rows

    def set_teacher_probs(self, probs: dict[int, list[float]]) -> None:
        """The teacher's label probabilities per sample id (soft labels), stored once per sample."""
        with self.transaction():
            self.db.conn.executemany("UPDATE samples SET teacher_probs=? WHERE id=?",
                                     [(json.dumps([round(float(x), 6) for x in p]), i) for i, p in probs.items()])

    def set_scores(self, scores: list[dict[str, Any]]) -> None:
        """Bulk update of energy/prediction/confidence/label_prob per sample id."""
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE samples SET energy=?, prediction=?, confidence=?, label_prob=? WHERE id=?",
                [(s.get("energy"), s.get("prediction"), s.get("confidence"), s.get("label_prob"), s["id"]) for s in scores],
            )

    def set_flags(self, run_id: int, flags: dict[int, str]) -> None:
        """Set flags ('ok' | 'noise' | 'feedback') for the given sample ids; the run's others become 'ok'."""
        with self.transaction():
            self.db.execute("UPDATE samples SET flag='ok' WHERE run_id=? AND reject_reason IS NULL", [run_id])
            self.db.conn.executemany("UPDATE samples SET flag=? WHERE id=? AND run_id=?",
                                     [(f, i, run_id) for i, f in flags.items()])

    def set_vetoed(self, sample_ids: list[int], vetoed: bool = True) -> int:
        """Veto (or restore) samples by hand: vetoed samples are kept out of training and feedback."""
        with self.transaction():
            cur = self.db.conn.executemany(
                "UPDATE samples SET vetoed=?, vetoed_at=? WHERE id=?",
                [(int(vetoed), time.time() if vetoed else None, int(i)) for i in sample_ids],
            )
        return cur.rowcount

    def sample_counts(self, run_id: int) -> dict[str, int]:
        row = self.db.execute(
            """SELECT COUNT(*),
                      SUM(reject_reason IS NULL AND role='train'),
                      SUM(reject_reason IS NOT NULL),
                      SUM(reject_reason IS NULL AND flag='noise'),
                      SUM(vetoed=1),
                      SUM(reject_reason IS NULL AND role='probe'),
                      SUM(reject_reason IS NULL AND flag='feedback')
               FROM samples WHERE run_id=?""",
            [run_id],
        ).fetchone()
        keys = ("generated", "kept", "rejected", "noise", "vetoed", "probe", "feedback")
        return {k: int(v or 0) for k, v in zip(keys, row)}

    def reject_reasons(self, run_id: int) -> dict[str, int]:
        return {r["reject_reason"]: r["n"] for r in self._rows(
            "SELECT reject_reason, COUNT(*) AS n FROM samples WHERE run_id=? AND reject_reason IS NOT NULL"
            " GROUP BY reject_reason ORDER BY n DESC", [run_id])}

    # -- embeddings cache and maps -------------------------------------------------------------------------
    def get_embeddings(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for start in range(0, len(hashes), 500):  # stay under SQLite's bound-parameter limit
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for h, v in self.db.execute(
                f"SELECT text_hash, vector FROM embeddings WHERE model=? AND text_hash IN ({marks})", [model, *chunk]
            ).fetchall():
                out[h] = v
        return out

    def put_embeddings(self, model: str, vectors: dict[str, bytes]) -> None:
        with self.transaction():
            self.db.conn.executemany("INSERT OR REPLACE INTO embeddings (model, text_hash, vector) VALUES (?, ?, ?)",
                                     [(model, h, v) for h, v in vectors.items()])

    def set_map_points(self, run_id: int, round_n: int, points: list[tuple[str, int, float, float]],
                       space: str = "encoder") -> None:
        """Replace the stored 2-D layout of (run, round, space): (source, ref_id, x, y) per point."""
        with self.transaction():
            self.db.execute("DELETE FROM map_points WHERE run_id=? AND round=? AND space=?", [run_id, round_n, space])
            self.db.conn.executemany(
                "INSERT INTO map_points (run_id, round, space, source, ref_id, x, y) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, round_n, space, src, int(ref), float(x), float(y)) for src, ref, x, y in points],
            )

    def map_points(self, run_id: int, round_n: int, space: str = "encoder") -> list[dict[str, Any]]:
        return list(self._rows("SELECT source, ref_id, x, y FROM map_points WHERE run_id=? AND round=? AND space=?",
                               [run_id, round_n, space]))

    def mapped_rounds(self, run_id: int, space: str = "encoder") -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT round FROM map_points WHERE run_id=? AND space=? ORDER BY round", [run_id, space]).fetchall()]

    def examples_with_ids(self, task_id: int) -> list[dict[str, Any]]:
        """Seed and evaluation rows with their ids (map points refer to them)."""
        rows = list(self._rows("SELECT id, split, inputs, output FROM examples WHERE task_id=? ORDER BY split, position",
                               [task_id]))
        for r in rows:
            r["inputs"] = json.loads(r["inputs"])
        return rows

    # -- workers ------------------------------------------------------------------------------------------
    def register_worker(self, worker_id: str, pid: int, host: str) -> None:
        now = time.time()
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO workers (id, pid, host, started_at, heartbeat) VALUES (?, ?, ?, ?, ?)",
                            [worker_id, pid, host, now, now])

    def worker_heartbeat(self, worker_id: str, run_id: int | None = None) -> None:
        with self.transaction():
            self.db.execute("UPDATE workers SET heartbeat=?, run_id=? WHERE id=?", [time.time(), run_id, worker_id])

    def remove_worker(self, worker_id: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM workers WHERE id=?", [worker_id])

    def live_workers(self, within: float = 30.0) -> list[dict[str, Any]]:
        return list(self._rows("SELECT * FROM workers WHERE heartbeat >= ? ORDER BY started_at",
                               [time.time() - within]))

    # -- events -------------------------------------------------------------------------------------------
    def add_event(self, message: str, run_id: int | None = None, level: str = "info", progress: float | None = None) -> None:
        with self.transaction():
            self._event(run_id, message, level, progress)

    def _event(self, run_id: int | None, message: str, level: str = "info", progress: float | None = None) -> None:
        self.db.execute("INSERT INTO events (run_id, ts, level, message, progress) VALUES (?, ?, ?, ?, ?)",
                        [run_id, time.time(), level, message, progress])

    def events(self, run_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if run_id is None:
            return list(self._rows("SELECT * FROM events ORDER BY id DESC LIMIT ?", [limit]))
        return list(self._rows("SELECT * FROM events WHERE run_id=? ORDER BY id DESC LIMIT ?", [run_id, limit]))


def _round(row: dict[str, Any]) -> Round:
    row["metrics"] = RoundMetrics.from_dict(json.loads(row["metrics"] or "{}"))
    return from_row(Round, row)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception. Nested use joins the outer transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.outer = False

    def __enter__(self):
        if self.conn.in_transaction:
            return self
        self.outer = True
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.outer:
            return False
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False


def tree_bytes(path: str | os.PathLike) -> int:
    """Bytes held by the files under `path` (0 when it does not exist): what the data folder or one run's
    artifacts take on disk, so a user sees what deleting runs or keeping fewer checkpoints would free."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while we walked
                pass
    return total


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


__all__ = ["Store", "StoreError", "NotFound", "SpecError", "TaskSummary", "StoredTask", "RunSummary", "gold_home",
           "tree_bytes"]

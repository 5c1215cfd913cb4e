"""The Export page's downloads: each built on a Store of its own (a download button's callable runs on a
thread of its own), and the student zips kept on disk.

A student's zip (the plain Hugging Face folder, or the int8 ONNX folder) is built once per (run, round, content
fingerprint) and kept in the run's `exports/` folder (`layout.exports_dir`), so repeated clicks serve the same
file and a veto (which changes the model card) builds a fresh one, removing the stale one. Its own module
because it sits above both exports: gold/export.py and gold/onnx_export.py import neither it nor each other's
callers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path

from gold import layout
from gold.datasets_export import dataset_root, export_dataset
from gold.export import (
    EXPORT_VERSION, baseline_twin, dataset_csv, dataset_jsonl, export_zip, folder_name, pick_round, rounds_json,
)
from gold.onnx_export import export_onnx
from gold.store import Store

ZIP_FORMATS = ("hf", "onnx")  # the plain Hugging Face folder; the int8 ONNX folder (gold/onnx_export.py)

_ZIP_LOCKS: dict[tuple, threading.Lock] = {}
_ZIP_LOCKS_GUARD = threading.Lock()


def fingerprint(store: Store, run_id: int, round_n: int, include_data: bool) -> str:
    """Changes whenever the export's content would: the checkpoint's files, the round's metrics, the run's
    status, its counts and vetoes, the baseline's rounds, the task's definition."""
    run = store.get_run(run_id)
    rnd = store.round(run_id, round_n)
    h = hashlib.sha256()
    ckpt = rnd.checkpoint if rnd is not None else None
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(ckpt).glob("*") if p.is_file()) \
        if ckpt else []
    twin = baseline_twin(store, run)
    parts = [
        EXPORT_VERSION, include_data, run.status, run.finished_at, run.settings,
        rnd.metrics.to_dict() if rnd is not None else None, files, store.sample_counts(run_id),
        [s.id for s in store.samples(run_id) if s.vetoed], store.get_task(run.task_id).updated_at, twin,
        rounds_json(store.rounds(twin)) if twin else None,
    ]
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def cached_zip(home: str | os.PathLike, run_id: int, round_n: int | None = None, include_data: bool = True,
               fmt: str = "hf") -> Path:
    """The export zip of (run, round), built on first use and kept under `artifacts/run-<id>/exports/`.
    `fmt` "onnx": the int8 ONNX export instead (include_data does not apply). Safe to call from any thread
    (opens its own Store); concurrent calls for the same zip build it once."""
    if fmt not in ZIP_FORMATS:
        raise ValueError(f"fmt must be one of {ZIP_FORMATS}, not {fmt!r}")
    onnx = fmt == "onnx"
    include_data = include_data and not onnx
    store = Store(home)
    try:
        round_n = pick_round(store, run_id, round_n).n
        key = (str(store.home), run_id, round_n, include_data, fmt)
        with _ZIP_LOCKS_GUARD:
            lock = _ZIP_LOCKS.setdefault(key, threading.Lock())
        with lock:
            fp = fingerprint(store, run_id, round_n, include_data)
            stem = f"{folder_name(run_id, round_n)}{'-data' if include_data else ''}{'-onnx' if onnx else ''}"
            folder = layout.exports_dir(store.run_dir(run_id))
            path = folder / f"{stem}-{fp}.zip"
            if path.is_file():
                return path
            if onnx:
                export_onnx(store, run_id, path, round_n, overwrite=True, as_zip=True)
            else:
                export_zip(store, run_id, path, round_n, include_data, overwrite=True)
            mine = re.compile(re.escape(stem) + r"-[0-9a-f]{16}\.zip")
            for old in folder.glob(f"{stem}-*.zip"):  # earlier versions of this export, not its siblings
                if old != path and mine.fullmatch(old.name):
                    old.unlink(missing_ok=True)
            return path
    finally:
        store.close()


def zip_bytes(home: str | os.PathLike, run_id: int, round_n: int | None = None, include_data: bool = True,
              fmt: str = "hf") -> bytes:
    return cached_zip(home, run_id, round_n, include_data, fmt).read_bytes()


def dataset_file(home: str | os.PathLike, run_id: int, fmt: str) -> bytes:
    """dataset_jsonl / dataset_csv on a Store of its own: safe from a download button's worker thread."""
    store = Store(home)
    try:
        return dataset_jsonl(store, run_id) if fmt == "jsonl" else dataset_csv(store, run_id)
    finally:
        store.close()


def dataset_zip_bytes(home: str | os.PathLike, run_id: int) -> bytes:
    """The run's Hugging Face dataset folder (gold/datasets_export.py) as zip bytes."""
    store = Store(home)
    try:
        with tempfile.TemporaryDirectory(prefix="gold-data-") as tmp:
            result = export_dataset(store, run_id, Path(tmp) / f"{dataset_root(run_id)}.zip", as_zip=True)
            return result.path.read_bytes()
    finally:
        store.close()


__all__ = ["ZIP_FORMATS", "fingerprint", "cached_zip", "zip_bytes", "dataset_file", "dataset_zip_bytes"]

"""Converted copies of model files, written once and reused by every run: the llama.cpp engine's F16 copy of a
small quantized GGUF (gold/teachers/gguf_weights.py) and the transformers engine's unpacked copy of a GGUF
(gold/teachers/gguf_unpacked.py).

Why copies are kept: each conversion costs seconds to tens of seconds and gives the same result every time, so a
worker, `gold serve` or `gold doctor` starting on a converted model should pay it once per source file, not once
per process. A copy's name carries its source's path, size and modification time, so an edited or replaced source
gets a copy of its own. A copy is written under a temporary name and renamed into place, so a killed conversion
never leaves a copy that looks finished, and two processes converting at once both end with one whole copy.

Where: the data folder's `models/` (next to the runs that use them), or `GOLD_MODEL_COPIES` when set, for several
data folders (or a test session's many) to share one set of copies.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Callable

ENV = "GOLD_MODEL_COPIES"

_lock = threading.Lock()


def folder(home: str | os.PathLike | None = None) -> Path:
    """Where copies are kept: $GOLD_MODEL_COPIES, else the data folder's `models/` (`home`, else GOLD_HOME)."""
    from gold.home import gold_home

    shared = os.environ.get(ENV)
    return Path(shared).expanduser().resolve() if shared else gold_home(home) / "models"


def free_mb(where: Path) -> float | None:
    """Free MB on the disk that holds `where` (or its nearest existing parent); None when that cannot be read."""
    probe = Path(where)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free / 2**20
    except OSError:
        return None


def copy_path(source: str | os.PathLike, suffix: str, where: Path | None = None) -> Path:
    """The path of `source`'s copy of this kind (`suffix`, e.g. "f16.gguf"): its stem, a tag of its resolved path,
    size and modification time, then the suffix."""
    src = Path(source).resolve()
    stat = src.stat()
    tag = hashlib.sha1(f"{src}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return (Path(where) if where is not None else folder()) / f"{src.stem}.{tag}.{suffix}"


def write_once(target: Path, write: Callable[[Path], None]) -> Path:
    """`target`, written by `write(partial)` unless it exists: `partial` is a path beside it, named by this
    process, that `write` fills (a file or a folder) and that is renamed to `target` once whole. A failed or killed
    write leaves no `target`; OSError when the folder cannot be written."""
    if target.exists():
        return target
    with _lock:
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            write(partial)
            if not partial.exists():
                raise OSError(f"the conversion wrote nothing for {target.name}")
            try:
                os.replace(partial, target)
            except OSError:
                if not target.exists():  # another process renamed its whole copy into place first: use that
                    raise
        finally:
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            elif partial.exists():
                partial.unlink(missing_ok=True)
    return target

"""Where a run's artifacts live under the data folder: one place, so no module rebuilds a path by hand.

    artifacts/run-{id}/
        round-{n}/student/        the student round n trained (a plain Hugging Face folder + gold_student.json)
        round-{n}/train_ids.json  which samples (and seeds) that student trained on, for an exact export later
        exports/                  cached exports of the run's students

Folders are named by numeric ids only, never by user-typed names, so no name can escape the data folder.
"""

from __future__ import annotations

from pathlib import Path

TRAIN_IDS = "train_ids.json"


def round_dir(run_dir: Path, n: int) -> Path:
    return Path(run_dir) / f"round-{int(n)}"


def checkpoint_dir(run_dir: Path, n: int) -> Path:
    """The student folder round n saved (it may be gone: `keep_checkpoints` deletes all but the best and last)."""
    return round_dir(run_dir, n) / "student"


def train_ids_path(run_dir: Path, n: int) -> Path:
    return round_dir(run_dir, n) / TRAIN_IDS


def exports_dir(run_dir: Path) -> Path:
    """Where the Export page's zips of the run's students are kept, one per content fingerprint."""
    return Path(run_dir) / "exports"


def export_name(run_id: int, round_n: int) -> str:
    """An export's folder (and zip root) name: ids only, never user text."""
    return f"gold-run{int(run_id)}-round{int(round_n)}"

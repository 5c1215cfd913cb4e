"""What every benchmark script shares: where the repository is, a description of the machine, writing results
JSON atomically (a benchmark killed half-way never leaves a truncated file behind), and the finished run the
export benchmarks measure."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / ".work"  # caches of finished cells (git-ignored): a rerun skips what is done
# the data folder the engine keeps model copies in (the llama.cpp teacher's F16 weights); cells use homes of their own
os.environ.setdefault("GOLD_HOME", str(WORK / "gold_home"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    """The machine in a few fields; the load average says how busy its neighbours were."""
    import torch

    info: dict[str, Any] = {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def machine_line(info: dict[str, Any]) -> str:
    gpu = f", {info['gpu']}" if info.get("gpu") else ""
    return f"{info['cpu_count']} CPU cores ({info['cpu']}){gpu}, torch {info['torch']}, load {info['load_avg_1m']}"


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.5) -> float:
    """Poll `check()` until it returns true; the seconds it took. Past `timeout_s` the benchmark ends, saying
    what did not happen."""
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > timeout_s:
            sys.exit(f"error: {what} did not happen within {timeout_s:.0f} s.")
        time.sleep(poll_s)
    return time.perf_counter() - t0


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


# -- the student the export benchmarks measure ------------------------------------------------------------------

@dataclass
class ExportedRun:
    """A finished run's round to export, in an open store (close it when done)."""

    store: Any  # gold.store.Store
    run_id: int
    round_n: int  # the round Export picks by default
    source: str  # where the student came from, for the printed table and the results JSON


def throwaway_run(home: Path, make_student: Callable[[Any], Any]) -> int:
    """A store at `home` with the SST-2 example task and one finished round whose student is
    `make_student(spec)` (a ClassifierStudent), saved where a round saves it, with its training-set record."""
    from gold.examples import example_spec
    from gold.layout import checkpoint_dir, train_ids_path
    from gold.specs import GoldSettings
    from gold.store import Store

    store = Store(home)
    spec = example_spec("sst2")
    task_id = store.create_task(spec)
    run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name="bench")
    ckpt = checkpoint_dir(store.run_dir(run_id), 1)
    make_student(spec).save(ckpt)
    train_ids_path(store.run_dir(run_id), 1).write_text(json.dumps({"seeds": len(spec.seeds), "sample_ids": []}))
    store.start_round(run_id, 1)
    store.set_round_step(run_id, 1, "train", checkpoint=str(ckpt))
    store.finish_round(run_id, 1, {"metric_name": "accuracy", "metric": None, "train_size": len(spec.seeds)})
    store.finish_run(run_id, "done")
    store.close()
    return run_id


def exported_run(home: Path | None, ref: str, work: Path, make_student: Callable[[Any], Any],
                 made: str) -> ExportedRun:
    """Run `ref` ("latest" or an id) of the store at `home`; without a home, a throw-away run under `work`
    whose student is `make_student(spec)` (`made` says what that student is)."""
    from gold import export
    from gold.store import Store

    if home is not None:
        store = Store(home)
        run_id = export.resolve_run(store, ref)
        where = home.resolve()
        source = f"run {run_id} of {where.relative_to(ROOT) if where.is_relative_to(ROOT) else home}"
    else:
        run_id = throwaway_run(work / "home", make_student)
        store = Store(work / "home")
        source = f"throw-away run: {made}"
    return ExportedRun(store, run_id, export.pick_round(store, run_id).n, source)

"""Export: a round's student as a plain Hugging Face folder (or zip) with a model card, and a run's data.

The exported folder is what a user without GOLD Studio needs, and nothing else:

    config.json             with id2label / label2id for classifiers, no quantization_config
    model.safetensors       the round's weights, copied byte for byte from its checkpoint
    generation_config.json  seq2seq students only (eos, pad and max_new_tokens for a plain pipeline call)
    tokenizer files         tokenizer.json, tokenizer_config.json, … whichever the tokenizer saved
    README.md               the model card (gold/modelcard.py): task, metrics per round, data counts, usage
    gold_run.json           settings and provenance: run, round, task, teacher, student notes, counts, vetoes
    data/train.jsonl        optional: the exact training set of that round (seeds + the sample ids it saw)

`pipeline("text-classification", model=folder)` (or "text-generation" for a seq2seq student) loads it.

Rules kept here: the checkpoint folder is only read, never written; an export is written to a temporary
folder beside its target and renamed into place, so a failure never leaves half an export; paths are built
from numeric ids only (`gold-run<id>-round<n>`), never from user-typed names. The Export page's zips are
cached per content by gold/downloads.py. The card (gold/modelcard.py) names in its YAML metadata the base
model, the bundled example's dataset and licence (`modelcard.example_origin`) and the evaluation result, as
the Hub reads them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gold import layout
from gold.checkpoints import best_round
from gold.modelcard import model_files, render_card, safetensors_parameters
from gold.models import DEFAULT_STUDENT, DEFAULT_TEACHER
from gold.records import Baseline, ExportInfo, Round, Run, Sample
from gold.specs import GoldSettings, TaskSpec
from gold.store import Store

EXPORT_FORMAT = "gold-studio-export"
EXPORT_VERSION = 1
SIDECAR = "gold_student.json"  # the students' own notes; folded into gold_run.json, not shipped
CARD = "README.md"
RUN_JSON = "gold_run.json"
TRAIN_JSONL = "data/train.jsonl"
# Keys a local load writes into tokenizer_config.json that make no sense in a folder someone else loads.
_LOCAL_TOKENIZER_KEYS = ("is_local", "local_files_only", "name_or_path", "_name_or_path")
FINISHED_STATUSES = ("done",)
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(RuntimeError):
    """A user-facing reason an export cannot be made (no finished round, a missing checkpoint, …)."""


# -- which run, which round ---------------------------------------------------------------------------------------

def is_finished(status: str) -> bool:
    return status in FINISHED_STATUSES or status.startswith("stopped")


def resolve_run(store: Store, ref: str | int, task: str | None = None) -> int:
    """A run id from what a user typed: a number, or `latest` (the newest finished run, of `task` if given)."""
    text = str(ref).strip()
    if text.lower() == "latest":
        task_id = store.get_task(task).id if task else None
        for r in store.list_runs(task_id):  # newest first
            if is_finished(r.status) and finished_rounds(store, r.id):
                return r.id
        where = f" of task '{store.get_task(task).spec.name}'" if task else ""
        raise ExportError(f"There is no finished run{where} to export yet. Start one with `python -m gold run TASK`, "
                          "or on the Runs page, and export it when it is done.")
    if not text.isdigit():
        raise ExportError(f"'{text}' is not a run: give a run id (see `python -m gold runs`) or `latest`.")
    run = store.get_run(int(text))  # raises NotFound
    if task and store.get_task(task).id != run.task_id:
        raise ExportError(f"Run {run.id} belongs to task '{run.task_name}', not to '{task}'.")
    return int(run.id)


def finished_rounds(store: Store, run_id: int) -> list[Round]:
    """The run's rounds that are done and whose student is on disk, in order."""
    return [r for r in store.rounds(run_id)
            if r.status == "done" and r.checkpoint and (Path(r.checkpoint) / "config.json").is_file()]


def pick_round(store: Store, run_id: int, round_n: int | None = None) -> Round:
    """The round to export: `round_n`, or the best by evaluation score (`checkpoints.best_round`), else the
    last. Clear errors otherwise."""
    run = store.get_run(run_id)
    rounds = finished_rounds(store, run_id)
    if not rounds and any(r.status == "done" for r in store.rounds(run_id)):
        raise ExportError(f"The students of run {run_id} are missing from {store.run_dir(run_id)} (the folder was "
                          "moved or deleted), so there is nothing to export.")
    if not rounds:
        state = {"queued": "is still queued", "held": "is still queued", "reserved": "is still queued",
                 "running": "is still running its first round",
                 "failed": "failed before finishing a round", "cancelled": "was cancelled before finishing a round"}
        why = state.get(run.status, f"has status '{run.status}'")
        raise ExportError(f"Run {run_id} has no finished round yet (it {why}), so there is no student to export. "
                          "Wait for its first round to finish, or export another run.")
    if round_n is None:
        return best_round(rounds)
    for r in rounds:
        if r.n == round_n:
            return r
    done = ", ".join(str(r.n) for r in rounds)
    raise ExportError(f"Round {round_n} of run {run_id} has no finished student; finished rounds: {done}.")


# -- everything an export says about a run ---------------------------------------------------------------------------

def folder_name(run_id: int, round_n: int) -> str:
    """The export's folder (and zip root) name (`layout.export_name`: ids only, never user text)."""
    return layout.export_name(run_id, round_n)


def collect(store: Store, run_id: int, round_n: int | None = None) -> ExportInfo:
    run = store.get_run(run_id)
    rnd = pick_round(store, run_id, round_n)
    task = store.get_task(run.task_id).spec
    ckpt = Path(rnd.checkpoint)
    notes = _read_json(ckpt / SIDECAR) or {}
    train_ids = _read_json(layout.train_ids_path(store.run_dir(run_id), rnd.n))
    warnings = []
    if train_ids is None:
        warnings.append(f"Round {rnd.n} has no {layout.TRAIN_IDS} (a run from an older version): the exact "
                        "training set is unknown, so data/train.jsonl is left out.")
    vetoed = [_sample_view(task, s) for s in store.samples(run_id) if s.vetoed]
    in_train = set((train_ids or {}).get("sample_ids") or [])
    for v in vetoed:
        v["in_this_students_training_set"] = v["id"] in in_train
    return ExportInfo(
        run=run, task=task, settings=GoldSettings.from_dict(run.settings), round=rnd,
        rounds=store.rounds(run_id), checkpoint=ckpt, notes=notes, counts=store.sample_counts(run_id),
        reject_reasons=store.reject_reasons(run_id), train_ids=train_ids, vetoed=vetoed,
        baseline=_baseline(store, run), warnings=warnings,
    )


def baseline_twin(store: Store, run: Run) -> int | None:
    """The baseline run queued beside a GOLD run (same task, same settings but the mode), if any."""
    if run.mode != "gold":
        return None
    mine = {k: v for k, v in run.settings.items() if k != "mode"}
    twins = []
    for r in store.list_runs(run.task_id):
        if r.mode != "baseline" or r.id == run.id:
            continue
        other = store.get_run(r.id).settings
        if {k: v for k, v in other.items() if k != "mode"} == mine:
            twins.append(r.id)
    # start_run queues the twin right after its GOLD run: prefer the nearest later id.
    return min(twins, key=lambda i: (i < run.id, abs(i - run.id))) if twins else None


def _baseline(store: Store, run: Run) -> Baseline | None:
    twin = baseline_twin(store, run)
    if twin is None:
        return None
    return Baseline(store.get_run(twin), store.rounds(twin))


def _sample_view(task: TaskSpec, s: Sample) -> dict[str, Any]:
    return {"id": s.id, "round": s.round, "role": s.role, "input": task.format_input(s.inputs),
            "output": s.output, "energy": s.energy, "flag": s.flag}


# -- the folder -------------------------------------------------------------------------------------------------------

@dataclass
class ExportResult:
    path: Path  # the folder, or the zip
    run_id: int
    round_n: int
    files: list[str]  # relative paths inside the folder (zip: inside its root folder)
    size_bytes: int
    warnings: list[str]


def export_student(store: Store, run_id: int, out: str | os.PathLike, round_n: int | None = None,
                   include_data: bool = True, overwrite: bool = False) -> ExportResult:
    """Write the round's student as a plain HF folder at `out` (atomically: temp folder, then rename)."""
    out = Path(out).expanduser().resolve()
    _check_target(out, overwrite)
    info = collect(store, run_id, round_n)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        files = write_folder(store, info, tmp, include_data)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, run_id, info.round.n, files, _tree_size(out), info.warnings)


def export_zip(store: Store, run_id: int, out: str | os.PathLike, round_n: int | None = None,
               include_data: bool = True, overwrite: bool = False) -> ExportResult:
    """Write the round's export as a zip at `out` (its files under one `gold-run<id>-round<n>/` folder)."""
    out = Path(out).expanduser().resolve()
    if out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    _check_target(out, overwrite)
    info = collect(store, run_id, round_n)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.with_name(f".{out.stem}.stage-{os.getpid()}-{threading.get_ident()}")
    tmp_zip = out.with_name(f".{out.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        files = write_folder(store, info, stage, include_data)
        zip_folder(stage, tmp_zip, info.root_name)
        os.replace(tmp_zip, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        tmp_zip.unlink(missing_ok=True)
    return ExportResult(out, run_id, info.round.n, files, out.stat().st_size, info.warnings)


def write_folder(store: Store, info: ExportInfo, folder: Path, include_data: bool = True) -> list[str]:
    """Fill a new, empty `folder` with the export. The checkpoint is only read."""
    folder.mkdir(parents=True)
    src = info.checkpoint
    names = model_files(src)
    if not any(n == "model.safetensors" or (n.startswith("model-") and n.endswith(".safetensors")) for n in names):
        raise ExportError(f"The student of round {info.round.n} has no safetensors weights in {src}; "
                          "it cannot be exported as a plain folder.")
    for name in names:
        if name in ("config.json", "tokenizer_config.json"):
            continue  # rewritten below
        shutil.copyfile(src / name, folder / name)  # a copy, never a link: the checkpoint stays untouched
    (folder / "config.json").write_text(_json(_clean_config(_read_json(src / "config.json") or {}, info)))
    if (src / "tokenizer_config.json").is_file():
        (folder / "tokenizer_config.json").write_text(
            _json(_clean_tokenizer_config(_read_json(src / "tokenizer_config.json") or {}, info)))
    data_rows = training_rows(store, info) if include_data and info.train_ids is not None else None
    if data_rows is not None:
        (folder / "data").mkdir()
        with open(folder / TRAIN_JSONL, "w", encoding="utf-8") as f:
            for row in data_rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    provenance = run_json(info, folder, data_rows)
    (folder / RUN_JSON).write_text(_json(provenance))
    (folder / CARD).write_text(render_card(info, provenance), encoding="utf-8")
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _clean_config(config: dict[str, Any], info: ExportInfo) -> dict[str, Any]:
    """The checkpoint's config without loader leftovers; a classifier's label maps made explicit."""
    config = dict(config)
    config.pop("quantization_config", None)  # a dequantized GGUF student must load as a plain model
    if isinstance(config.get("text_config"), dict):
        config["text_config"] = {k: v for k, v in config["text_config"].items() if k != "quantization_config"}
    config.pop("_name_or_path", None)
    if info.kind == "classification":
        labels = _labels_of(config) or list(info.notes.get("labels") or info.task.labels)
        config["id2label"] = {str(i): label for i, label in enumerate(labels)}
        config["label2id"] = {label: i for i, label in enumerate(labels)}
    return config


def _clean_tokenizer_config(tok: dict[str, Any], info: ExportInfo) -> dict[str, Any]:
    tok = {k: v for k, v in tok.items() if k not in _LOCAL_TOKENIZER_KEYS}
    if info.kind == "classification" and info.notes.get("max_length"):
        # So `pipeline(..., truncation=True)` cuts long texts exactly where the student was trained to.
        tok["model_max_length"] = int(info.notes["max_length"])
    return tok


def _labels_of(config: dict[str, Any]) -> list[str]:
    id2label = config.get("id2label") or {}
    try:
        return [v for _, v in sorted((int(k), v) for k, v in id2label.items())]
    except (TypeError, ValueError):
        return []


def training_rows(store: Store, info: ExportInfo) -> list[dict[str, Any]]:
    """The exact training set of the exported round: its seeds, then the generated samples it trained on."""
    ids = info.train_ids or {}
    k = int(ids.get("seeds", 0))
    seeds = info.task.seeds[:k]
    if len(info.task.seeds) != k:
        info.warnings.append(f"The task now has {len(info.task.seeds)} seeds; this student trained on {k}. "
                             "data/train.jsonl holds the task's first seeds as they are now.")
    by_id = {s.id: s for s in store.samples(info.run.id)}
    wanted = [int(i) for i in ids.get("sample_ids") or []]
    missing = [i for i in wanted if i not in by_id]
    if missing:
        info.warnings.append(f"{len(missing)} training sample(s) of this round are no longer in the store; "
                             "data/train.jsonl lists the others.")
    rows = [_train_row(info.task, ex.inputs, ex.output, "seed", None, None) for ex in seeds]
    relabeled = ids.get("relabeled") or {}  # noise samples trained under the student's label (noise "relabel")
    rows += [_train_row(info.task, by_id[i].inputs, relabeled.get(str(i), by_id[i].output), "generated", i,
                        by_id[i].round, given=by_id[i].output if str(i) in relabeled else None)
             for i in wanted if i in by_id]
    return rows


def _train_row(task: TaskSpec, inputs: dict[str, str], output: str | None, source: str, sample_id: int | None,
               round_n: int | None, given: str | None = None) -> dict[str, Any]:
    """One line of data/train.jsonl; `given`: the teacher's label when the student's replaced it."""
    text = task.format_input(inputs)
    row: dict[str, Any] = {"text": text, "label": output} if task.kind == "classification" else {"input": text, "output": output}
    if len(task.input_fields) > 1:
        row["inputs"] = dict(inputs)
    row.update(source=source, sample_id=sample_id, round=round_n)
    if given is not None:
        row["relabeled_from"] = given
    return row


def run_json(info: ExportInfo, folder: Path | None = None, data_rows: list | None = None) -> dict[str, Any]:
    """gold_run.json: the run's frozen settings and where this student came from."""
    run, rnd = info.run, info.round
    ids = info.train_ids or {}
    student = {k: v for k, v in info.notes.items() if k != "labels"}
    out: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": _versions(),
        "task": {
            "name": info.task.name, "kind": info.task.kind, "instruction": info.task.instruction,
            "labels": info.task.labels, "input_fields": info.task.input_fields, "output_name": info.task.output_name,
            "seeds": len(info.task.seeds), "eval_rows": len(info.task.eval_set),
            "input_format": ("the input text itself" if len(info.task.input_fields) == 1
                             else "one 'field: value' line per input field, in this order: "
                             + ", ".join(info.task.input_fields)),
        },
        "run": {
            "id": run.id, "name": run.name, "mode": run.mode, "status": run.status,
            "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at),
            "usage": run.usage or {},
        },
        "settings": redact_settings(run.settings),
        "round": rnd.n,
        "rounds_finished": [r.n for r in info.rounds if r.status == "done"],
        "round_metrics": rnd.metrics.to_dict(),
        "rounds": rounds_json(info.rounds),
        "base_model": base_model_name(info),
        "teacher": teacher_name(info.settings),
        "labeler": labeler_record(info),
        "student": student,
        "data": {
            **info.counts,
            "reject_reasons": info.reject_reasons,
            "train_set": {"seeds": ids.get("seeds"), "generated": len(ids.get("sample_ids") or []) if ids else None,
                          "sample_ids": ids.get("sample_ids"), "file": TRAIN_JSONL if data_rows is not None else None},
        },
        "vetoed": info.vetoed,
        "baseline": None if info.baseline is None else {
            "run": {"id": info.baseline.run.id, "name": info.baseline.run.name, "status": info.baseline.run.status},
            "rounds": rounds_json(info.baseline.rounds),
        },
        "warnings": list(info.warnings),
    }
    if folder is not None:
        out["files"] = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                        for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in (CARD, RUN_JSON)}
    return out


def rounds_json(rounds: list[Round]) -> list[dict[str, Any]]:
    """Rounds as gold_run.json lists them: number, status and the metrics as stored."""
    return [{"n": r.n, "status": r.status, "metrics": r.metrics.to_dict()} for r in rounds]


def redact_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as stored, minus anything secret-looking in the teacher's URL (user:password@, ?key=…).
    API keys are never in settings in the first place."""
    settings = json.loads(json.dumps(settings))
    teacher = settings.get("teacher") or {}
    url = teacher.get("base_url")
    if url:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            netloc = host + (f":{parts.port}" if parts.port else "")
            teacher["base_url"] = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        except ValueError:
            teacher["base_url"] = "(redacted)"
    return settings


def base_model_name(info: ExportInfo) -> str:
    base = info.notes.get("base") or info.settings.student.model
    if base == DEFAULT_STUDENT:
        return "all-MiniLM-L6-v2 (embedded)"
    if base == DEFAULT_TEACHER:
        return "SmolLM2-135M-Instruct (embedded GGUF, dequantized to fp32)"
    return str(base)


def teacher_name(settings: GoldSettings) -> str:
    t = settings.teacher
    if t.backend == "local" and t.model == DEFAULT_TEACHER:
        return "SmolLM2-135M-Instruct (embedded GGUF Q4_1, local)"
    if t.backend == "openai":
        host = urlsplit(t.base_url).hostname if t.base_url else "api.openai.com"
        return f"{t.model} (OpenAI-compatible API at {host})"
    return f"{t.model} ({t.backend})"


def labeler_record(info: ExportInfo) -> dict[str, Any]:
    """Who read the soft labels of the exported student's training data: the labeler of the rounds up to the
    exported one (with the "choose on my rows" table when the run chose), or none."""
    return labeler_of_rounds([r for r in info.rounds if r.n <= info.round.n])


def labeler_of_rounds(rounds: list[Round]) -> dict[str, Any]:
    """The labeler of these rounds as the metrics recorded it (see labeler_record); also for a run's dataset,
    which has no exported round."""
    from gold.labelers import recorded

    name, choice = recorded(rounds)
    if name == "none" or not any(r.metrics.soft_labeled for r in rounds):
        name = "none (the student learned the labels the teacher was asked to write)"
    elif name in (None, "teacher"):  # rounds stored before labelers were recorded read with the teacher
        name = "the teacher (generating and reading labels back)"
    return {"name": name, "choice": choice}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"gold-studio": "0.1.0"}
    for dist in ("transformers", "torch", "safetensors", "tokenizers"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


# -- zip ----------------------------------------------------------------------------------------------------------

def zip_folder(folder: Path, zip_path: Path, root: str) -> None:
    """Zip `folder` with its files under `root/`. Weights are stored (they barely compress), text deflated."""
    with zipfile.ZipFile(zip_path, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                method = zipfile.ZIP_STORED if p.suffix == ".safetensors" else zipfile.ZIP_DEFLATED
                z.write(p, f"{root}/{p.relative_to(folder).as_posix()}", compress_type=method)


def card_preview(store: Store, run_id: int, round_n: int | None = None,
                 include_data: bool = True) -> tuple[str, list[str]]:
    """The model card an export of (run, round) would carry, and its warnings, without writing anything."""
    info = collect(store, run_id, round_n)
    with_data = [] if include_data and info.train_ids is not None else None
    return render_card(info, run_json(info, None, with_data)), info.warnings


# -- dataset export of a run ------------------------------------------------------------------------------------------

def dataset_rows(store: Store, run_id: int) -> list[dict[str, Any]]:
    """Every sample of the run (kept and rejected, train and probe) with what the loop knows about it."""
    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    target = "label" if task.kind == "classification" else "output"
    rows = []
    for s in store.samples(run_id):
        row: dict[str, Any] = {"id": s.id, "round": s.round, "role": s.role,
                               "input": task.format_input(s.inputs) if s.inputs else None}
        if len(task.input_fields) > 1:
            row["inputs"] = s.inputs
        row.update({
            target: s.output, "energy": s.energy, "prediction": s.prediction, "confidence": s.confidence,
            "flag": s.flag if s.reject_reason is None else None, "vetoed": bool(s.vetoed),
            "reject_reason": s.reject_reason,
        })
        rows.append(row)
    return rows


def dataset_jsonl(store: Store, run_id: int) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dataset_rows(store, run_id)).encode("utf-8")


def dataset_csv(store: Store, run_id: int) -> bytes:
    """The same rows as CSV; several input fields become `input.<field>` columns. Text cells that a
    spreadsheet would run as a formula (=, +, -, @ first) get a leading apostrophe."""
    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    rows = dataset_rows(store, run_id)
    multi = len(task.input_fields) > 1
    target = "label" if task.kind == "classification" else "output"
    columns = ["id", "round", "role", "input"] + ([f"input.{f}" for f in task.input_fields] if multi else []) + [
        target, "energy", "prediction", "confidence", "flag", "vetoed", "reject_reason"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        flat = dict(r)
        if multi:
            inputs = flat.pop("inputs", None) or {}
            for f in task.input_fields:
                flat[f"input.{f}"] = inputs.get(f)
        w.writerow([_csv_cell(flat.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return value


# -- small helpers ------------------------------------------------------------------------------------------------

def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        if out.is_dir() and not any(out.iterdir()):
            return
        raise ExportError(f"{out} already exists; choose another --out, or remove it first.")


def place_output(folder: Path, out: Path, root: str, as_zip: bool, tag: str) -> int:
    """Put a finished staging folder at `out`: zipped under `root` (through a temporary file, then renamed),
    or the folder itself moved into place; returns the size on disk. The one way every export lands, so a
    killed export never leaves a half-written zip or folder behind."""
    if as_zip:
        tmp_zip = out.with_name(f".{out.name}.tmp-{tag}")
        try:
            zip_folder(folder, tmp_zip, root)
            os.replace(tmp_zip, out)
        finally:
            tmp_zip.unlink(missing_ok=True)
        return out.stat().st_size
    _replace(folder, out)
    return _tree_size(out)


def _replace(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`; an existing `out` is moved aside first and removed after."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}-{threading.get_ident()}")
    if out.exists():
        out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        if old.exists():
            old.rename(out)
        raise
    if old.exists():
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


__all__ = [
    "ExportError", "ExportInfo", "ExportResult", "resolve_run", "finished_rounds", "best_round", "pick_round",
    "collect", "baseline_twin", "export_student", "export_zip", "write_folder", "training_rows", "run_json",
    "rounds_json", "dataset_rows", "dataset_jsonl", "dataset_csv", "folder_name", "safetensors_parameters",
    "is_finished", "card_preview", "model_files", "folder_kind", "predict_folder", "zip_folder", "place_output",
    "Baseline",
]


# -- predict with plain transformers (what a user without GOLD Studio does) ------------------------------------------

PREDICT_BAR_MIN = 50  # a tqdm bar from this many texts on; none for a few


def folder_kind(folder: str | os.PathLike) -> str:
    """'classification' or 'seq2seq' for an exported folder (gold_run.json, else the config's architecture)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ExportError(f"{folder} is not a model folder (no config.json there). Give the folder an export wrote.")
    kind = ((_read_json(folder / RUN_JSON) or {}).get("task") or {}).get("kind")
    if kind in ("classification", "seq2seq"):
        return kind
    archs = (_read_json(folder / "config.json") or {}).get("architectures") or []
    return "classification" if any(a.endswith("ForSequenceClassification") for a in archs) else "seq2seq"


def predict_folder(folder: str | os.PathLike, texts: list[str], batch_size: int = 32,
                   bar: bool | None = None) -> list[dict[str, Any]]:
    """Predictions of an exported student through `transformers.pipeline` alone: for a classifier
    {"text", "label", "score"}, for a seq2seq student {"text", "output"}. A tqdm bar on stderr for many texts."""
    from tqdm.auto import tqdm
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    kind = folder_kind(folder)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # the "Loading weights" bar: our own bar (or none) is enough
    show = len(texts) >= PREDICT_BAR_MIN if bar is None else bar
    out: list[dict[str, Any]] = []
    with tqdm(total=len(texts), disable=not show, unit="text", leave=False) as progress:
        if kind == "classification":
            clf = pipeline("text-classification", model=str(folder))
            for s in range(0, len(texts), batch_size):
                chunk = texts[s : s + batch_size]
                for text, p in zip(chunk, clf(chunk, truncation=True, batch_size=batch_size)):
                    out.append({"text": text, "label": p["label"], "score": float(p["score"])})
                progress.update(len(chunk))
        else:
            fmt = ((_read_json(folder / RUN_JSON) or {}).get("student") or {}).get("format") or {}
            template, stop = fmt.get("prompt", "Input: {text}\nOutput:"), fmt.get("stop", "\n")
            gen = pipeline("text-generation", model=str(folder))
            for text in texts:
                reply = gen(template.replace("{text}", text), do_sample=False, return_full_text=False)
                answer = reply[0]["generated_text"]
                out.append({"text": text, "output": (answer.split(stop)[0] if stop else answer).strip()})
                progress.update(1)
    return out

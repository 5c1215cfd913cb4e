"""The command line: `python -m gold …`.

Every command reports bad input as one clear `error:` message on stderr and exits 2 (1 for a failed check),
never a traceback. Task commands share validation with the Task page (TaskSpec, datafiles, store).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gold.datafiles import ColumnMapping, DataFileError, guess_mapping, labels_in, read_table, to_examples
from gold.export import ExportError
from gold.settings import add_run_flags, apply_args
from gold.specs import KINDS, LOCAL_ENGINES, REPLACED, SECTIONS, GoldSettings, SpecError, TaskSpec, TeacherSpec
from gold.store import ACTIVE_STATUSES, NotFound, Store, StoreError
from gold.teachers.gguf_weights import GGUF_WEIGHTS


class CliError(Exception):
    """A user error with a message worth printing as is."""


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _mapping(args: argparse.Namespace, columns: list[str], fields: list[str]) -> ColumnMapping:
    mapping = guess_mapping(columns, fields)
    for pair in args.input_column or []:
        field_name, sep, column = pair.partition("=")
        if not sep:
            raise CliError(f"--input-column takes FIELD=COLUMN, not '{pair}'.")
        mapping.inputs[field_name.strip()] = column.strip()
    if args.output_column:
        mapping.output = args.output_column
    return mapping


def _read_bytes(path: str) -> bytes:
    """A file the user named, or a CliError that says why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"There is no file '{path}'.") from None
    except (IsADirectoryError, PermissionError) as e:
        raise CliError(f"'{path}' cannot be read: {e.strerror}.") from None


def _read(path: str, args: argparse.Namespace, fields: list[str]):
    p = Path(path)
    data = _read_bytes(path)
    table = read_table(data, p.name)
    return to_examples(table, _mapping(args, table.columns, fields), fields)


def cmd_task_import(args: argparse.Namespace, store: Store) -> int:
    fields = _split(args.input_fields) or ["text"]
    seeds = _read(args.file, args, fields)
    eval_set = _read(args.eval, args, fields) if args.eval else []
    labels = _split(args.labels)
    if args.kind == "classification" and not labels:
        labels = labels_in(seeds)
    spec = TaskSpec(
        name=args.name, kind=args.kind, instruction=args.instruction, labels=labels if args.kind == "classification" else [],
        input_fields=fields, output_name=args.output_name or "", seeds=seeds, eval_set=eval_set,
    )
    task_id = store.create_task(spec)
    print(f"Created task {task_id} '{spec.name}': {len(seeds)} seeds, {len(eval_set)} evaluation rows"
          + (f", labels {', '.join(spec.labels)}" if spec.labels else "") + ".")
    return 0


def cmd_task_example(args: argparse.Namespace, store: Store) -> int:
    from gold.examples import EXAMPLES, example_spec

    if args.key not in EXAMPLES:
        raise CliError(f"There is no example task '{args.key}'; choose one of: {', '.join(EXAMPLES)}.")
    spec = example_spec(args.key)
    spec.name = args.name or store.unused_task_name(spec.name)
    task_id = store.create_task(spec)
    print(f"Created task {task_id} '{spec.name}': {len(spec.seeds)} seeds, {len(spec.eval_set)} evaluation rows.")
    return 0


def cmd_task_list(args: argparse.Namespace, store: Store) -> int:
    tasks = store.list_tasks()
    if not tasks:
        print("No tasks yet. Create one with `python -m gold task import FILE ...` or on the Task page.")
        return 0
    print(f"{'id':>4}  {'name':<36} {'kind':<15} {'seeds':>5} {'eval':>6} {'runs':>4}  labels")
    for t in tasks:
        print(f"{t.id:>4}  {t.name[:36]:<36} {t.kind:<15} {t.n_seeds:>5} {t.n_eval:>6} {t.n_runs:>4}  {', '.join(t.labels)}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from gold.doctor import run_doctor

    report = run_doctor()
    print("GOLD Studio doctor")
    for name, version in report.versions.items():
        print(f"  {name:<22} {version}")
    for c in report.checks:
        mark = "ok  " if c.ok else "FAIL"
        print(f"[{mark}] {c.name}: {c.detail}" + (f" ({c.seconds:.1f} s)" if c.ok else ""))
    if not report.ok:
        print("error: an embedded model is missing; run `make install` (or the pip command above).", file=sys.stderr)
        return 1
    print("All embedded models found and loaded.")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from gold.worker import ensure_worker, run_worker

    if args.detach and args.no_maps:
        raise CliError("--no-maps applies to a worker in this terminal; drop --detach (or --no-maps).")
    if args.detach:
        pid = ensure_worker(args.home, force=True)
        print(f"Started a background worker (pid {pid}); it serves queued runs until you stop it (kill {pid})."
              if pid else "A worker is already running for this data folder.")
        return 0
    return run_worker(args.home, once=args.once, only=args.only, worker_id=args.worker_id,
                      draw_maps=not args.no_maps)


def _id_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of run ids") from None


CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
MAX_CONFIG_BYTES = 1_000_000


def read_settings_file(path: str) -> dict:
    """A run's settings file (JSON, or YAML for .yaml/.yml) as a dict; every way it can be unreadable is a
    CliError naming the file and, for a syntax error, the line."""
    import json

    import yaml

    p = Path(path)
    if p.suffix.lower() not in CONFIG_SUFFIXES:
        raise CliError(f"--config takes a .json, .yaml or .yml file (a run's settings, as the Runs page downloads "
                       f"them as run.json), not '{path}'.")
    data = _read_bytes(path)
    if len(data) > MAX_CONFIG_BYTES:
        raise CliError(f"'{path}' is {len(data):,} bytes: a settings file is a few kilobytes.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CliError(f"'{path}' is not UTF-8 text.") from None
    if p.suffix.lower() == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise CliError(f"'{path}' is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.") from None
    else:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise CliError(f"'{path}' is not valid YAML{where}: {getattr(e, 'problem', None) or e}.") from None
    if not isinstance(value, dict):
        raise CliError(f"'{path}' must hold one object of settings (keys such as rounds, teacher, student), "
                       f"not {type(value).__name__}.")
    return value


def settings_from_file(path: str) -> GoldSettings:
    """GoldSettings from a settings file: keys checked by name and type (GoldSettings.from_dict alone would
    ignore a misspelt key), missing keys taking today's defaults (not the values older stored runs get). A run.json
    stored before some settings were replaced (noise_filter, relabel_noise, map_after_round) reads as it was meant."""
    raw = read_settings_file(path)
    problems = _settings_shape_problems(raw, {**GoldSettings().to_dict(), **REPLACED}, "")
    if problems:
        raise CliError(f"'{path}' has settings GOLD Studio cannot use:\n" + "\n".join(f"  - {p}" for p in problems))
    merged = GoldSettings().to_dict()
    if any(key in raw for key in REPLACED) and "noise" not in raw:
        del merged["noise"]  # the file's booleans say which noise strategy it meant
    for key, value in raw.items():
        if key in SECTIONS:
            merged[key].update(value)
        else:
            merged[key] = value
    return GoldSettings.from_dict(merged)


def _settings_shape_problems(raw: dict, defaults: dict, prefix: str) -> list[str]:
    """Unknown keys (with the nearest known one) and values of the wrong type, by the defaults' types."""
    import difflib

    problems = []
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1)
            problems.append(f"'{name}' is not a setting" + (f" (did you mean '{prefix}{close[0]}'?)" if close else "")
                            + ".")
            continue
        want = defaults[key]
        if isinstance(want, dict):
            if not isinstance(value, dict):
                problems.append(f"'{name}' must be an object of settings, not {_json_type(value)}.")
            else:
                problems += _settings_shape_problems(value, want, f"{name}.")
        elif isinstance(want, bool):
            if not isinstance(value, bool):
                problems.append(f"'{name}' must be true or false, not {_json_type(value)}.")
        elif isinstance(want, int):
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"'{name}' must be a whole number, not {_json_type(value)}.")
        elif isinstance(want, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"'{name}' must be a number, not {_json_type(value)}.")
        elif isinstance(want, str):
            if not isinstance(value, str):
                problems.append(f"'{name}' must be a string, not {_json_type(value)}.")
        elif isinstance(want, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"'{name}' must be a list of strings, not {_json_type(value)}.")
    return problems


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return {"list": "a list", "dict": "an object"}.get(type(value).__name__, type(value).__name__)


def run_settings(args: argparse.Namespace) -> GoldSettings:
    """The run's settings: --config (else the defaults), then every settings flag the user typed on top."""
    settings = apply_args(args, settings_from_file(args.config) if args.config else GoldSettings())
    if settings.teacher.backend == "openai" and settings.teacher.model == TeacherSpec().model:
        raise CliError("With --teacher openai, name the server's model with --model"
                       + (" (or teacher.model in the settings file)." if args.config else "."))
    problems = settings.problems()
    if problems:
        source = f"The settings (from {args.config} and the flags)" if args.config else "The settings"
        raise CliError(f"{source} cannot start a run:\n" + "\n".join(f"  - {p}" for p in problems))
    return settings


def cmd_run(args: argparse.Namespace, store: Store) -> int:
    """Queue a run (and its baseline twin), then follow it to the end with a progress bar."""
    from gold.runs import run_estimate, soft_label_check, start_run

    task = store.get_task(args.task)
    settings = run_settings(args)
    problems = settings.problems()
    if args.estimate:  # what the run would ask for; nothing is queued
        if problems:
            raise CliError("The settings have problems:\n" + "\n".join(f"  - {p}" for p in problems))
        twin = " The baseline twin asks the same again." if args.with_baseline else ""
        print(run_estimate(store, task.id, settings).sentence() + twin)
        return 0
    if not problems:  # a server that is to read labels back: say before the run whether it can
        for sentence in soft_label_check(store, task.id, settings):
            print(sentence)
        print(run_estimate(store, task.id, settings).sentence())
    keyed = settings.teacher.backend == "openai" and bool(os.environ.get("OPENAI_API_KEY")) and not args.inline
    try:
        ids = start_run(store, task.id, settings, name=args.name or "", with_baseline=args.with_baseline, held=keyed)
    except SpecError as e:
        raise CliError("The run was not queued:\n" + "\n".join(f"  - {p}" for p in e.problems)) from None
    print(f"Queued run {' and '.join(map(str, ids))} for task '{task.spec.name}'.")
    if keyed:
        from gold.worker import spawn_keyed_worker

        # The key is in this shell's environment, maybe not in the always-on worker's: a worker of its own.
        spawn_keyed_worker(store.home, ids, os.environ["OPENAI_API_KEY"])
    if args.detach:
        return 0
    if args.inline:
        from gold.worker import run_worker

        run_worker(store.home, once=True, only=ids)
    else:
        from gold.worker import ensure_worker

        if not keyed and not store.live_workers() and ensure_worker(store.home) is None:
            print("No worker is running and autostart is off: start one with `python -m gold worker`.")
        _follow(store, ids)
    return _report(store, ids)


def _follow(store: Store, ids: list[int]) -> None:
    """A tqdm bar per run, fed from the store until every run has ended."""
    import time

    from tqdm import tqdm

    from gold.runs import run_overview

    bars = {i: tqdm(total=100, desc=f"run {i}", unit="%", position=k, leave=True) for k, i in enumerate(ids)}
    try:
        while True:
            active = 0
            for i, bar in bars.items():
                ov = run_overview(store, i)
                bar.n = round(ov.progress * 100)
                bar.set_postfix_str(ov.progress_text[:70], refresh=True)
                active += ov.run.status in ACTIVE_STATUSES
            if not active:
                return
            time.sleep(1.0)
    finally:
        for bar in bars.values():
            bar.close()


def _report(store: Store, ids: list[int]) -> int:
    for run_id in ids:
        run = store.get_run(run_id)
        print(f"Run {run_id} ({run.mode}): {run.status}" + (f": {run.error}" if run.error else ""))
        for r in store.rounds(run_id):
            m = r.metrics
            metric = f", {m.metric_name} {m.metric:.3f}" if m.metric is not None else ""
            print(f"  round {r.n}: kept {m.kept}, rejected {m.rejected}, trained on "
                  f"{m.train_size}, noise {m.noise}, feedback {m.feedback}{metric}")
    return 0 if all(store.get_run(i).status == "done" for i in ids) else 1


def cmd_runs(args: argparse.Namespace, store: Store) -> int:
    runs = store.list_runs()
    if not runs:
        print("No runs yet. Start one with `python -m gold run TASK`.")
    for r in runs:
        print(f"{r.id:>4}  {r.task_name[:30]:<30} {r.mode:<8} {r.status:<16} {r.name}")
    return 0


def cmd_cancel(args: argparse.Namespace, store: Store) -> int:
    store.request_cancel(args.run)
    print(f"Cancel requested for run {args.run}.")
    return 0


def cmd_delete(args: argparse.Namespace, store: Store) -> int:
    """Delete one run (its rows and its checkpoints; its task and other runs stay), after a yes on stdin unless
    --yes. Exit 1 when the answer was not yes: nothing was deleted, and a script should know."""
    from gold.runs import human_size
    from gold.store import tree_bytes

    run = store.get_run(args.run)  # an unknown run: NotFound, one clear line
    if run.status in ACTIVE_STATUSES:
        raise CliError(f"Run {args.run} has not ended (it is {run.status}): stop it with `python -m gold cancel "
                       f"{args.run}`, and delete it once it has stopped.")
    size = human_size(tree_bytes(store.run_dir(args.run)))
    what = (f"run {args.run} '{run.name}' of task '{run.task_name}' ({len(store.rounds(args.run))} rounds, "
            f"{store.sample_counts(args.run)['generated']} samples, {size} on disk)")
    if not args.yes:
        print(f"Delete {what}? This cannot be undone. [y/N] ", end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing was deleted." + ("" if answer else " (No answer: add --yes to delete without asking.)"))
            return 1
    store.delete_run(args.run)
    print(f"Deleted {what}.")
    return 0


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    """Write a round's student (plain folder, or int8 ONNX with --onnx) or the run's data (--data)."""
    from gold.export import export_student, export_zip, resolve_run

    if args.data and (args.round is not None or args.no_data):
        raise CliError("--data exports every kept sample of the run as a dataset: --round and --no-data are for "
                       "the student, leave them out.")
    if args.onnx and args.no_data:
        raise CliError("--no-data is for the plain folder: the ONNX export carries no training set anyway.")
    run_id = resolve_run(store, args.run, task=args.task)
    what = "zip" if args.zip else "folder"
    if args.data:
        from gold.datasets_export import export_dataset

        result = export_dataset(store, run_id, args.out, overwrite=args.force, as_zip=args.zip)
        print(f"Exported the data of run {run_id} as a Hugging Face dataset to {what} {result.path} "
              f"({len(result.files)} files, {result.size_bytes / 1e6:.1f} MB). Load it with "
              f"datasets.load_dataset or load_from_disk (see its README.md).")
        return 0
    if args.onnx:
        from gold.onnx_export import export_onnx

        result = export_onnx(store, run_id, args.out, round_n=args.round, overwrite=args.force, as_zip=args.zip)
        print(f"Exported run {run_id}, round {result.round_n} as int8 ONNX to {what} {result.path} "
              f"({len(result.files)} files, {result.size_bytes / 1e6:.1f} MB).")
    else:
        write = export_zip if args.zip else export_student
        result = write(store, run_id, args.out, round_n=args.round, include_data=not args.no_data,
                       overwrite=args.force)
        print(f"Exported run {run_id}, round {result.round_n} to {what} {result.path} "
              f"({len(result.files)} files, {result.size_bytes / 1e6:.1f} MB).")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Run an exported folder on texts with plain transformers, as a user without GOLD Studio would."""
    import json

    from gold.export import predict_folder

    texts = [line.rstrip("\n") for line in sys.stdin if line.strip()] if args.texts == ["-"] else list(args.texts)
    if not texts:
        raise CliError("Give at least one text to predict (or '-' to read one per line from stdin).")
    for p in predict_folder(args.folder, texts, batch_size=args.batch_size):
        if args.json:
            print(json.dumps(p, ensure_ascii=False))
        elif "label" in p:
            print(f"{p['label']}\t{p['score']:.4f}\t{p['text']}")
        else:
            print(f"{p['output']}\t{p['text']}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a local teacher over an OpenAI-compatible HTTP API (gold/serve.py) until Ctrl-C."""
    import os

    from gold.serve import API_KEY_ENV, ServeConfig, ServeError, serve

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be between 0 and 65535, not {args.port}.")
    if args.threads is not None and args.threads < 1:
        raise CliError("--threads must be at least 1.")
    key = args.api_key or os.environ.get(API_KEY_ENV) or None
    config = ServeConfig(host=args.host, port=args.port, model=args.model, threads=args.threads, api_key=key,
                         engine=args.engine, gguf_weights=args.gguf_weights)
    try:
        return serve(config)
    except ServeError as e:
        raise CliError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gold", description="GOLD Studio: distill an LLM into a small student.")
    p.add_argument("--home", help="data folder (default: $GOLD_HOME or ./gold_data)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("doctor", help="find and load the embedded models; print versions and timings")

    task = sub.add_parser("task", help="create and list tasks").add_subparsers(dest="task_command", required=True)
    imp = task.add_parser("import", help="create a task from a CSV, TSV or JSONL file of seed examples")
    imp.add_argument("file", help="seed examples (CSV, TSV or JSONL)")
    imp.add_argument("--name", required=True)
    imp.add_argument("--kind", required=True, choices=KINDS)
    imp.add_argument("--instruction", required=True)
    imp.add_argument("--labels", help="comma-separated label set (default: the labels found in the seeds)")
    imp.add_argument("--eval", help="evaluation set file (same columns)")
    imp.add_argument("--input-fields", help="comma-separated input field names (default: text)")
    imp.add_argument("--input-column", action="append", metavar="FIELD=COLUMN", help="map a file column to an input field")
    imp.add_argument("--output-column", help="the column holding the label or output (default: guessed)")
    imp.add_argument("--output-name", help="what the output is called (default: label / output)")
    ex = task.add_parser("example", help="create one of the bundled example tasks")
    ex.add_argument("key", help="sst2, trec, agnews, sms_spam or svamp")
    ex.add_argument("--name")
    task.add_parser("list", help="list tasks")

    w = sub.add_parser("worker", help="serve queued runs (the app starts one for you)")
    w.add_argument("--once", action="store_true", help="process the queued runs, then exit")
    w.add_argument("--detach", action="store_true", help="start one in the background unless one is alive")
    w.add_argument("--only", type=_id_list, help="serve only these run ids (comma-separated)")
    w.add_argument("--id", dest="worker_id", help="the worker id runs were reserved for (set by the app)")
    w.add_argument("--no-maps", action="store_true",
                   help="draw no UMAP map after each round (the Explore page draws a round's map when asked)")

    run = sub.add_parser("run", help="run GOLD on a task through the worker, with a progress bar",
                         description="Queue a GOLD run on a task. --config takes a run's settings file (the "
                                     "Runs page's run.json, or the same keys in YAML); the flags below override "
                                     "it only where they are given.")
    run.add_argument("task", help="task name or id")
    run.add_argument("--config", metavar="FILE",
                     help="the run's settings as JSON or YAML (.json, .yaml, .yml): GoldSettings keys, as stored "
                          "with every run; keys left out take the defaults")
    run.add_argument("--with-baseline", action="store_true", help="also queue a baseline run with the same budget")
    # One flag per setting (gold.settings), each defaulting to None: only a flag typed overrides --config.
    add_run_flags(run)
    run.add_argument("--name")
    how = run.add_mutually_exclusive_group()
    how.add_argument("--inline", action="store_true", help="run it in this process instead of the worker")
    how.add_argument("--detach", action="store_true", help="queue it and return at once")
    how.add_argument("--estimate", action="store_true",
                     help="print the teacher calls, tokens, the most it can cost and (from this machine's finished "
                          "rounds) the time the run would take, then exit: nothing is queued")
    sub.add_parser("runs", help="list runs")
    c = sub.add_parser("cancel", help="ask a run to stop")
    c.add_argument("run", type=int)
    dl = sub.add_parser("delete", help="delete a run: its samples, rounds, events and checkpoints (not its task)")
    dl.add_argument("run", type=int, help="the run id (see `python -m gold runs`)")
    dl.add_argument("--yes", action="store_true", help="delete without asking for confirmation")

    exp = sub.add_parser("export", help="export a round's student as a plain Hugging Face folder (or zip), as "
                                        "int8 ONNX, or the run's data as a Hugging Face dataset")
    exp.add_argument("run", help="a run id, or 'latest' for the newest finished run")
    exp.add_argument("--task", help="with 'latest': the newest finished run of this task (name or id)")
    exp.add_argument("--round", type=int, help="round to export (default: best evaluation score, else the last)")
    exp.add_argument("--out", required=True, help="folder to write (with --zip: the zip file)")
    exp.add_argument("--zip", action="store_true", help="write one zip instead of a folder")
    exp.add_argument("--no-data", action="store_true", help="leave out data/train.jsonl (the exact training set)")
    exp.add_argument("--force", action="store_true", help="replace --out if it exists")
    which = exp.add_mutually_exclusive_group()
    which.add_argument("--onnx", action="store_true",
                       help="the classifier student as one int8 ONNX model for onnxruntime, with its tokenizer")
    which.add_argument("--data", action="store_true",
                       help="the run's kept samples as a Hugging Face dataset (parquet, save_to_disk, dataset card) "
                            "instead of the student")
    pr = sub.add_parser("predict", help="run an exported student on texts with plain transformers")
    pr.add_argument("folder", help="an exported folder")
    pr.add_argument("texts", nargs="+", help="texts to classify or answer ('-': one per line from stdin)")
    pr.add_argument("--batch-size", type=int, default=32)
    pr.add_argument("--json", action="store_true", help="one JSON object per line")
    sv = sub.add_parser("serve", help="serve a local teacher over an OpenAI-compatible HTTP API (…/v1)")
    sv.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port (0: a free one)")
    sv.add_argument("--model", default="embedded:smollm2-135m-instruct",
                    help="model to serve: an embedded: name, a local folder or a .gguf file")
    sv.add_argument("--threads", type=int, help="CPU threads for generation (default: torch's)")
    sv.add_argument("--engine", choices=LOCAL_ENGINES, default="transformers",
                    help="transformers, or llama.cpp (GGUF only, optional package, faster on a CPU)")
    sv.add_argument("--gguf-weights", choices=GGUF_WEIGHTS, default="auto",
                    help="llama.cpp: the file's own weights, or an F16 copy written once into the data folder "
                         "(auto: for a Q4_1/Q5_1 file of at most 512 MB, which llama.cpp reads prompts of ~2× "
                         "faster in F16)")
    sv.add_argument("--api-key", help="require this bearer key (default: $GOLD_SERVE_API_KEY; prefer the "
                                      "variable, a command line is visible to other users)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "home", None):  # one data folder for the whole process: the teacher's F16 copy goes there too
        os.environ["GOLD_HOME"] = str(Path(args.home).expanduser().resolve())
    try:
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "worker":
            return cmd_worker(args)
        if args.command == "predict":
            return cmd_predict(args)
        if args.command == "serve":
            return cmd_serve(args)
        store = Store(args.home)
        problem = store.free_space_problem()
        if problem:
            print(f"warning: {problem}", file=sys.stderr)
        if args.command == "export":
            return cmd_export(args, store)
        if args.command == "delete":
            return cmd_delete(args, store)
        if args.command in ("run", "runs", "cancel"):
            handler = {"run": cmd_run, "runs": cmd_runs, "cancel": cmd_cancel}[args.command]
        else:
            handler = {"import": cmd_task_import, "example": cmd_task_example, "list": cmd_task_list}[args.task_command]
        return handler(args, store)
    except SpecError as e:
        print("error: the task was not saved:", file=sys.stderr)
        for problem in e.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except (CliError, DataFileError, StoreError, NotFound, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

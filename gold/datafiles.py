"""Reading user files (CSV, TSV, JSONL) into examples, with a column-mapping step.

Two stages, so the page can show what it found before anything is stored:
1. `read_table(data, filename)` parses the bytes into a `Table` (columns + rows of strings) or raises
   `DataFileError` with a message that names the line at fault.
2. `to_examples(table, mapping)` turns rows into `Example`s through a `ColumnMapping` (which column feeds
   which input field, which column is the label/output). `guess_mapping` proposes one from the names.
Nothing here touches the store: a file that fails to parse or map changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from gold.specs import Example

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
FORMATS = ("csv", "tsv", "jsonl")

# Names a label/output column often has in public datasets, most specific first.
OUTPUT_ALIASES = ("label", "labels", "class", "category", "target", "output", "answer", "y", "sentiment")
TEXT_ALIASES = ("text", "sentence", "input", "question", "content", "message", "review", "document", "x")


class DataFileError(ValueError):
    """A file that cannot be read; the message says where and why."""


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, str]]
    format: str


@dataclass
class ColumnMapping:
    """Which file column feeds each input field, and which column holds the label (or seq2seq output)."""

    inputs: dict[str, str] = field(default_factory=dict)  # input field -> column
    output: str | None = None

    def problems(self, columns: list[str], input_fields: list[str], need_output: bool = True) -> list[str]:
        p = []
        for f in input_fields:
            col = self.inputs.get(f)
            if not col:
                p.append(f"Choose which column holds the input field '{f}'.")
            elif col not in columns:
                p.append(f"The file has no column '{col}' (for the input field '{f}').")
        if need_output:
            if not self.output:
                p.append("Choose which column holds the label or output.")
            elif self.output not in columns:
                p.append(f"The file has no column '{self.output}' for the label or output.")
        return p


def detect_format(filename: str) -> str:
    suffix = Path(filename or "").suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if suffix in ("tsv", "tab"):
        return "tsv"
    if suffix in ("csv", "txt", ""):
        return "csv"
    raise DataFileError(f"'{filename}' is not a CSV, TSV or JSONL file (the name ends in '.{suffix}').")


def read_table(data: bytes, filename: str, max_bytes: int = MAX_UPLOAD_BYTES, max_rows: int = MAX_ROWS) -> Table:
    """Parse an uploaded file. Raises DataFileError on anything a user must fix."""
    fmt = detect_format(filename)
    if len(data) > max_bytes:
        raise DataFileError(
            f"'{filename}' is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB. "
            "Split it, or keep only the rows you need."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataFileError(
            f"'{filename}' is not UTF-8 text (byte {e.start + 1}, line {line}). Save it as UTF-8 and upload it again."
        ) from None
    if not text.strip():
        raise DataFileError(f"'{filename}' is empty.")
    if "\x00" in text:
        raise DataFileError(f"'{filename}' contains NUL bytes: it looks like a binary file, not text.")
    table = _read_jsonl(text, filename) if fmt == "jsonl" else _read_delimited(text, filename, "\t" if fmt == "tsv" else ",")
    if not table.rows:
        raise DataFileError(f"'{filename}' has a header but no rows.")
    if len(table.rows) > max_rows:
        raise DataFileError(f"'{filename}' has {len(table.rows):,} rows; the limit is {max_rows:,}.")
    return table


def _read_jsonl(text: str, filename: str) -> Table:
    rows: list[dict[str, str]] = []
    columns: dict[str, None] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFileError(f"'{filename}' line {n} is not valid JSON ({e.msg}, column {e.colno}).") from None
        if not isinstance(obj, dict):
            raise DataFileError(f"'{filename}' line {n} is not a JSON object (expected {{\"text\": ..., \"label\": ...}}).")
        row = {}
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                raise DataFileError(f"'{filename}' line {n}: the field '{k}' holds a nested {type(v).__name__}; use plain text.")
            row[str(k)] = "" if v is None else str(v)
            columns.setdefault(str(k), None)
        rows.append(row)
        if len(rows) > MAX_ROWS:
            break
    return Table(columns=list(columns), rows=rows, format="jsonl")


def _read_delimited(text: str, filename: str, delimiter: str) -> Table:
    kind = "TSV" if delimiter == "\t" else "CSV"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as e:
        raise DataFileError(f"'{filename}' line 1 is not valid {kind}: {e}.") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise DataFileError(f"'{filename}' has an empty header line: the first line must name the columns.")
    if len(set(header)) != len(header):
        raise DataFileError(f"'{filename}' names a column twice in its header: {', '.join(header)}.")
    if "" in header:
        raise DataFileError(f"'{filename}' has a column without a name in its header (column {header.index('') + 1}).")
    rows: list[dict[str, str]] = []
    while True:
        start = reader.line_num + 1  # a quoted field may span lines: report where the record began
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            hint = " (a quote opened there is never closed)" if "end of data" in str(e) else ""
            raise DataFileError(f"'{filename}' line {start} is not valid {kind}: {e}{hint}.") from None
        if not rec or not any(c.strip() for c in rec):
            continue
        if len(rec) != len(header):
            raise DataFileError(
                f"'{filename}' line {start} has {len(rec)} fields but the header has {len(header)}. "
                "Check its quoting and separators."
            )
        rows.append(dict(zip(header, rec)))
        if len(rows) > MAX_ROWS:
            break
    return Table(columns=header, rows=rows, format=kind.lower())


def guess_mapping(columns: list[str], input_fields: list[str]) -> ColumnMapping:
    """Propose a mapping: same-named columns first, then common aliases, else leave it to the user."""
    lower = {c.lower(): c for c in columns}
    mapping = ColumnMapping()
    for f in input_fields:
        if f.lower() in lower:
            mapping.inputs[f] = lower[f.lower()]
    if len(input_fields) == 1 and input_fields[0] not in mapping.inputs:
        for alias in TEXT_ALIASES:
            if alias in lower:
                mapping.inputs[input_fields[0]] = lower[alias]
                break
    used = set(mapping.inputs.values())
    for alias in OUTPUT_ALIASES:
        if alias in lower and lower[alias] not in used:
            mapping.output = lower[alias]
            break
    return mapping


def to_examples(table: Table, mapping: ColumnMapping, input_fields: list[str], need_output: bool = True) -> list[Example]:
    """Rows → Examples through the mapping. Cell text is stripped; nothing else is changed (validation of
    labels, lengths and duplicates is the TaskSpec's job, so page and CLI report the same problems)."""
    problems = mapping.problems(table.columns, input_fields, need_output)
    if problems:
        raise DataFileError(" ".join(problems))
    return [
        Example(
            inputs={f: row.get(mapping.inputs[f], "").strip() for f in input_fields},
            output=row.get(mapping.output, "").strip() if mapping.output else "",
        )
        for row in table.rows
    ]


def load_examples(path: str | Path, input_fields: list[str], mapping: ColumnMapping | None = None) -> list[Example]:
    """Read a file from disk into examples (the CLI's path); the mapping is guessed when not given."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(f"There is no file '{path}'.") from None
    except IsADirectoryError:
        raise DataFileError(f"'{path}' is a folder, not a file.") from None
    except PermissionError:
        raise DataFileError(f"'{path}' cannot be read (permission denied).") from None
    table = read_table(data, path.name)
    mapping = mapping or guess_mapping(table.columns, input_fields)
    return to_examples(table, mapping, input_fields)


def labels_in(examples: list[Example]) -> list[str]:
    """The distinct outputs in first-seen order: the label set a user's file implies."""
    seen: dict[str, None] = {}
    for ex in examples:
        if ex.output:
            seen.setdefault(ex.output, None)
    return list(seen)

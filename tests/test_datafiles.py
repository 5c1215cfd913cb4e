"""Uploads: CSV/TSV/JSONL parsing, column mapping, and a clear message for every bad file."""

from __future__ import annotations

import json

import pytest

from gold.datafiles import (
    MAX_UPLOAD_BYTES, ColumnMapping, DataFileError, guess_mapping, labels_in, load_examples, read_table, to_examples,
)

from support import FIXTURES


def read(name: str):
    return read_table((FIXTURES / name).read_bytes(), name)


def test_csv_with_quotes_and_mapping_guess():
    table = read("seeds_ok.csv")
    assert table.columns == ["sentence", "sentiment"]
    assert table.rows[0]["sentence"] == "a gorgeous, witty, seductive movie ."
    mapping = guess_mapping(table.columns, ["text"])
    assert mapping.inputs == {"text": "sentence"} and mapping.output == "sentiment"
    examples = to_examples(table, mapping, ["text"])
    assert labels_in(examples) == ["positive", "negative"]


def test_jsonl_and_tsv():
    assert len(read("seeds_ok.jsonl").rows) == 3
    table = read_table(b"premise\thypothesis\tlabel\nA dog runs.\tAn animal moves.\tentailment\n", "rte.tsv")
    mapping = guess_mapping(table.columns, ["premise", "hypothesis"])
    [example] = to_examples(table, mapping, ["premise", "hypothesis"])
    assert example.inputs == {"premise": "A dog runs.", "hypothesis": "An animal moves."}
    assert example.output == "entailment"


@pytest.mark.parametrize(
    "name, message",
    [
        ("bad_quote.csv", "line 3 is not valid CSV"),
        ("broken_line.jsonl", "line 2 is not valid JSON"),
        ("latin1.csv", "not UTF-8 text (byte 15, line 2)"),
        ("empty.csv", "is empty"),
    ],
)
def test_bad_files_name_the_line(name, message):
    with pytest.raises(DataFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read(name)


def test_ragged_row_and_bad_names():
    with pytest.raises(DataFileError, match="line 3 has 3 fields but the header has 2"):
        read_table(b"text,label\na,b\nc,d,e\n", "x.csv")
    with pytest.raises(DataFileError, match="not a CSV, TSV or JSONL"):
        read_table(b"x", "model.bin")
    with pytest.raises(DataFileError, match="not a JSON object"):
        read_table(b"[1, 2]\n", "x.jsonl")
    with pytest.raises(DataFileError, match="header but no rows"):
        read_table(b"text,label\n", "x.csv")


def test_missing_label_column_is_a_mapping_problem():
    table = read("no_label.csv")
    mapping = guess_mapping(table.columns, ["text"])
    assert mapping.output is None
    with pytest.raises(DataFileError, match="Choose which column holds the label"):
        to_examples(table, mapping, ["text"])
    with pytest.raises(DataFileError, match="no column 'nope'"):
        to_examples(table, ColumnMapping(inputs={"text": "text"}, output="nope"), ["text"])


def test_size_and_row_limits():
    big = b"text,label\n" + b"x" * (MAX_UPLOAD_BYTES + 1)
    with pytest.raises(DataFileError, match="limit is 21 MB|limit is 20 MB"):
        read_table(big, "big.csv")
    many = "\n".join(json.dumps({"text": f"t{i}", "label": "a"}) for i in range(101)).encode()
    with pytest.raises(DataFileError, match="101 rows; the limit is 100"):
        read_table(many, "many.jsonl", max_rows=100)


def test_load_examples_from_disk(tmp_path):
    assert len(load_examples(FIXTURES / "seeds_ok.csv", ["text"])) == 4
    with pytest.raises(DataFileError, match="There is no file"):
        load_examples(tmp_path / "missing.csv", ["text"])

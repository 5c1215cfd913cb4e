"""One definition of a task's metric, shared by the rounds, the few-shot teacher and the benchmarks."""

from __future__ import annotations

import pytest

from gold.evaluation import is_correct, metric_name, task_metric
from gold.examples import example_spec
from gold.specs import Example


def test_classification_accuracy_is_exact_label_match():
    task = example_spec("sst2")
    rows = [Example({"text": "a"}, "positive"), Example({"text": "b"}, "negative")]
    assert metric_name(task) == "accuracy"
    assert task_metric(task, ["positive", "positive"], rows) == 0.5
    assert not is_correct(task, "Positive", "positive")  # labels are canonical: no case folding here


def test_seq2seq_exact_match_normalises_numbers():
    task = example_spec("svamp")
    rows = [Example({"question": "q"}, "42"), Example({"question": "r"}, "1000"), Example({"question": "s"}, "7")]
    assert metric_name(task) == "exact_match"
    assert task_metric(task, ["42.0", "1,000", "8"], rows) == pytest.approx(2 / 3)


def test_no_rows_and_mismatched_lengths():
    task = example_spec("sst2")
    assert task_metric(task, [], []) is None
    with pytest.raises(ValueError, match="2 outputs for 1 rows"):
        task_metric(task, ["a", "b"], [Example({"text": "a"}, "positive")])

"""Steering rows: the evaluation rows that steer a run (shown to the teacher, or setting label shares by the
student's errors), and the half that measures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gold.examples import example_spec
from gold.specs import Example, GoldSettings
from gold.steering import error_shares, evaluation_rows, steering_split


def test_the_split_is_disjoint_complete_balanced_per_label_and_the_same_every_time():
    rows = example_spec("trec").eval_set
    steer, score = steering_split(rows)
    assert not set(steer) & set(score) and sorted(steer + score) == list(range(len(rows)))
    assert (steer, score) == steering_split(list(rows))
    for label in {ex.output for ex in rows}:
        a, b = (sum(rows[i].output == label for i in half) for half in (steer, score))
        assert abs(a - b) <= 1


def test_too_few_rows_are_not_split():
    rows = [Example(inputs={"text": str(i)}, output="a") for i in range(3)]
    assert steering_split(rows) == ([], [0, 1, 2])


def test_a_run_that_steers_with_rows_measures_on_the_other_half_only():
    task = example_spec("sst2")
    whole, source = evaluation_rows(task, GoldSettings())
    assert whole == task.eval_set and source == "eval"
    half, source = evaluation_rows(task, GoldSettings(feedback="real_errors"))
    _, score = steering_split(task.eval_set)
    assert half == [task.eval_set[i] for i in score] and source == "eval"
    assert evaluation_rows(task, GoldSettings(mode="baseline", feedback="real_errors"))[0] == task.eval_set
    assert evaluation_rows(replace(task, eval_set=[]), GoldSettings(feedback="real_errors")) == (task.seeds, "seeds")


def test_label_shares_steered_by_errors_measure_on_the_scoring_half_of_a_classification_task_only():
    task = example_spec("trec")
    _, score = steering_split(task.eval_set)
    by_errors = GoldSettings(steer_labels=True, steer_labels_by="errors")
    assert evaluation_rows(task, by_errors)[0] == [task.eval_set[i] for i in score]
    assert evaluation_rows(task, GoldSettings(steer_labels=True))[0] == task.eval_set  # by energy: no split
    assert evaluation_rows(task, GoldSettings(steer_labels_by="errors"))[0] == task.eval_set  # not steering
    assert evaluation_rows(task, replace(by_errors, mode="baseline"))[0] == task.eval_set
    seq2seq = example_spec("svamp")
    assert evaluation_rows(seq2seq, by_errors)[0] == seq2seq.eval_set  # label shares are for classification


def test_error_shares_give_more_samples_to_the_labels_the_student_gets_wrong():
    shares = error_shares({"a": [True] * 6 + [False] * 2, "b": [False] * 8, "c": [True, False] * 4})
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["a"] > shares["c"] > shares["b"]
    # clipped: at most 4x apart (2x and 0.5x the even share before normalising)
    extreme = error_shares({"a": [True] * 50, "b": [False] * 50, "c": [False] * 50, "d": [False] * 50})
    assert extreme["a"] / extreme["b"] == pytest.approx(4.0) and extreme["b"] == extreme["d"]
    # smoothed: one lucky row does not starve a label as many right rows would
    few, many = error_shares({"a": [False], "b": [True, False]}), error_shares({"a": [False] * 20, "b": [True, False] * 10})
    assert few["a"] > many["a"]
    assert error_shares({"a": [], "b": [True, False]}) == {"a": 0.5, "b": 0.5}  # no rows: the even share
    assert error_shares({"a": [], "b": []}) == {"a": 0.5, "b": 0.5}
    assert error_shares({}) == {}

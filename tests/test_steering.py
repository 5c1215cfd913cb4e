"""Steering rows: the evaluation rows a steering feedback strategy shows the teacher, and the half that measures."""

from __future__ import annotations

from dataclasses import replace

from gold.examples import example_spec
from gold.specs import Example, GoldSettings
from gold.steering import evaluation_rows, steering_split


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

"""How a task's outputs are scored against labeled rows: accuracy for classification, exact match of the
(normalised, e.g. numeric) answer for seq2seq. One definition shared by the rounds' measure step, the
few-shot teacher and the benchmarks, so every number in the product and in bench/ means the same thing."""

from __future__ import annotations

from collections.abc import Sequence

from gold.prompts import answers_match
from gold.specs import Example, TaskSpec


def metric_name(task: TaskSpec) -> str:
    return "accuracy" if task.kind == "classification" else "exact_match"


def is_correct(task: TaskSpec, predicted: str, expected: str) -> bool:
    if task.kind == "classification":
        return predicted == expected
    return answers_match(predicted, expected)


def task_metric(task: TaskSpec, outputs: Sequence[str], rows: Sequence[Example]) -> float | None:
    """Share of rows whose output is right (None for no rows)."""
    if len(outputs) != len(rows):
        raise ValueError(f"{len(outputs)} outputs for {len(rows)} rows.")
    if not rows:
        return None
    return sum(is_correct(task, o, ex.output) for o, ex in zip(outputs, rows)) / len(rows)


def evaluate_student(student, task: TaskSpec, rows: Sequence[Example]) -> float | None:
    """The student's metric on labeled rows (its greedy outputs / top labels)."""
    preds = student.predict([task.format_input(ex.inputs) for ex in rows])
    return task_metric(task, [p.output for p in preds], rows)

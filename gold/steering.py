"""Steering rows: the half of a task's evaluation rows that a steering feedback strategy (`real_errors`) shows
the teacher, and the half that measures the rounds.

Why a split: rows the teacher has seen as in-context examples cannot also tell which round's student is best,
or the export would be picked on rows the run was steered with. So when the run's feedback strategy steers with
real rows, every measurement of the run (the per-round metric, the labeler choice, the exported round) reads only
the scoring half. The split is a fixed function of the rows (per label, a fixed shuffle, dealt alternately), so
every round, a resumed run and the bench see the same halves.
"""

from __future__ import annotations

import random

from gold.specs import Example, GoldSettings, TaskSpec
from gold.strategies import feedback_strategy

SPLIT_SEED = 20240601
MIN_ROWS = 4  # fewer evaluation rows than this are not split: both halves would be too small to mean anything


def steering_split(rows: list[Example]) -> tuple[list[int], list[int]]:
    """(steering, scoring): indices into `rows`. Per output (label), a fixed shuffle dealt alternately, so both
    halves hold every label in about equal numbers; an odd row goes to the steering half."""
    if len(rows) < MIN_ROWS:
        return [], list(range(len(rows)))
    by_output: dict[str, list[int]] = {}
    for i, ex in enumerate(rows):
        by_output.setdefault(ex.output, []).append(i)
    rng = random.Random(SPLIT_SEED)
    steer: list[int] = []
    score: list[int] = []
    for output in sorted(by_output):
        idx = by_output[output]
        rng.shuffle(idx)
        steer += idx[0::2]
        score += idx[1::2]
    return sorted(steer), sorted(score)


def steers_with_rows(settings: GoldSettings) -> bool:
    """Whether the run's feedback strategy shows the teacher real evaluation rows (GOLD mode only)."""
    return settings.mode == "gold" and feedback_strategy(settings.feedback).steers_with_rows


def evaluation_rows(task: TaskSpec, settings: GoldSettings | None = None) -> tuple[list[Example], str]:
    """The rows a run measures on, and which they are: the task's evaluation rows ("eval"), their scoring half
    when the run steers with the other half ("eval", fewer rows; all of them when too few to split), else the
    seeds ("seeds")."""
    if not task.eval_set:
        return task.seeds, "seeds"
    if settings is not None and steers_with_rows(settings):
        _, score = steering_split(task.eval_set)
        return [task.eval_set[i] for i in score], "eval"
    return task.eval_set, "eval"


def steering_rows(task: TaskSpec) -> tuple[list[int], list[Example]]:
    """The steering half: (indices into task.eval_set, the rows)."""
    steer, _ = steering_split(task.eval_set)
    return steer, [task.eval_set[i] for i in steer]

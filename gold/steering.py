"""Steering rows: the half of a task's evaluation rows that steers a run — shown to the teacher by the
`real_errors` feedback strategy, or read by the student to set the next round's label shares
(`steer_labels_by="errors"`) — and the half that measures the rounds.

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


def steers_with_rows(settings: GoldSettings, kind: str = "classification") -> bool:
    """Whether the run steers with real evaluation rows (GOLD mode only): its feedback strategy shows them to the
    teacher, or (classification) the student's errors on them set the label shares."""
    if settings.mode != "gold":
        return False
    by_errors = settings.steer_labels and settings.steer_labels_by == "errors" and kind == "classification"
    return by_errors or feedback_strategy(settings.feedback).steers_with_rows


def evaluation_rows(task: TaskSpec, settings: GoldSettings | None = None) -> tuple[list[Example], str]:
    """The rows a run measures on, and which they are: the task's evaluation rows ("eval"), their scoring half
    when the run steers with the other half ("eval", fewer rows; all of them when too few to split), else the
    seeds ("seeds")."""
    if not task.eval_set:
        return task.seeds, "seeds"
    if settings is not None and steers_with_rows(settings, task.kind):
        _, score = steering_split(task.eval_set)
        return [task.eval_set[i] for i in score], "eval"
    return task.eval_set, "eval"


def steering_rows(task: TaskSpec) -> tuple[list[int], list[Example]]:
    """The steering half: (indices into task.eval_set, the rows)."""
    steer, _ = steering_split(task.eval_set)
    return steer, [task.eval_set[i] for i in steer]


def error_shares(wrong_by_label: dict[str, list[bool]], clip: tuple[float, float] = (0.5, 2.0)) -> dict[str, float]:
    """Shares of the next round's samples per label, from the student's errors on each label's steering rows.

    Why: a label whose real rows the student gets wrong more often is one the teacher's samples so far teach
    worst, so it gets more of the next round's samples: a budget per label from real-row accuracy. The error
    rate is smoothed as (wrong + 1) / (rows + 2), so a label read from few rows is not starved for a lucky
    streak; its ratio to the mean rate over labels is clipped to [clip[0], clip[1]] × the even
    share, so no label is starved or flooded, then normalised. A label with no steering rows keeps the even share.
    """
    labels = list(wrong_by_label)
    if not labels:
        return {}
    rates = {label: (sum(w) + 1) / (len(w) + 2) for label, w in wrong_by_label.items() if w}
    if not rates:
        return {label: 1 / len(labels) for label in labels}
    centre = sum(rates.values()) / len(rates)
    raw = {label: min(max(rates[label] / centre, clip[0]), clip[1]) if label in rates else 1.0 for label in labels}
    total = sum(raw.values())
    return {label: w / total for label, w in raw.items()}

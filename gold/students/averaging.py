"""The weight average of several students of one run: one model whose every weight is the mean of theirs.

Why it works here: each round's student warm-starts from the previous round's, so the rounds' students lie along
one fine-tuning path from the same pretrained model, where averaging weights is known to land in a flatter,
better-generalising point than any one checkpoint (checkpoint averaging, "model soups"). Each round fits the
teacher's noisy labels of a growing set a little more closely; the average keeps what the rounds agree on.
`docs/benchmarks.md` (*Final-student recipes*) has what it measured.
"""

from __future__ import annotations

from typing import Sequence

import torch

from gold.students.base import Student


def average_students(students: Sequence[Student]) -> Student:
    """The last of `students`, its weights replaced by the mean of all of theirs (floating-point tensors; integer
    buffers such as position ids are the last student's). They must share one architecture and label set."""
    if not students:
        raise ValueError("There are no students to average.")
    last = students[-1]
    if len(students) == 1:
        return last
    states = [s.model.state_dict() for s in students]
    keys = set(states[-1])
    for s, state in zip(students, states):
        if set(state) != keys or any(state[k].shape != states[-1][k].shape for k in keys):
            raise ValueError(f"{s!r} has other weights than {last!r}: students of different models cannot be "
                             "averaged.")
    averaged = {}
    for k, ref in states[-1].items():
        if ref.is_floating_point():
            averaged[k] = (sum(state[k].double() for state in states) / len(states)).to(ref.dtype)
        else:
            averaged[k] = ref
    with torch.no_grad():
        last.model.load_state_dict(averaged)
    return last

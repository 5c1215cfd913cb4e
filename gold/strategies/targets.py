"""What a generated sample trains the student toward, as a probability vector over the task's labels: its soft
label (the labeler's read-back) when it has one of the right size, else the one-hot of the label the teacher was
asked to write. Strategies that compare the student with that target (`student_loss`, `disagreement`) read it here."""

from __future__ import annotations

import numpy as np

from gold.records import Sample


def training_target(sample: Sample, labels: list[str]) -> np.ndarray | None:
    """The sample's target over `labels` (summing to 1), or None when it has neither a soft label nor a known label."""
    if sample.teacher_probs and len(sample.teacher_probs) == len(labels):
        target = np.asarray(sample.teacher_probs, dtype=float)
        return target / max(float(target.sum()), 1e-12)
    if sample.output in labels:
        return np.eye(len(labels))[labels.index(sample.output)]
    return None

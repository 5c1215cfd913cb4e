"""Fixtures for the student tests: the real embedded MiniLM, loaded and trained once per session.

Loading costs seconds and training tens of steps more, so every classifier test shares one trained student;
tests that train again either hold on to the shared model object or restore its weights afterwards.
Torch runs on one thread here: the test machine is shared with other workers, and two OpenMP threads
competing with a busy neighbour were measured 8× slower than one (31 s vs 4 s for the same 30 steps).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from gold.students.base import TrainExample, TrainingArgs, TrainReport

POSITIVE = [
    "I loved this film",
    "a wonderful, moving story",
    "great acting and a great script",
    "truly delightful from start to finish",
    "brilliant and beautiful",
    "what a joy to watch",
    "a superb, warm comedy",
    "fantastic fun for everyone",
]
NEGATIVE = [
    "I hated this film",
    "a terrible, boring story",
    "awful acting and an awful script",
    "truly dull from start to finish",
    "lifeless and ugly",
    "what a painful waste of time",
    "a clumsy, cold mess",
    "horrible for everyone",
]
GIBBERISH = ["qzx vbnm plok wrtz", "kkq jjxx zzv", "fjdk sla qpw eeru", "xcvb nmzq trrp"]
LABELS = ["negative", "positive"]
TRAIN_ARGS = TrainingArgs(epochs=1, min_steps=32, batch_size=8, learning_rate=1e-4, max_length=32, seed=0, loss="ce")
THREADS = int(os.environ.get("GOLD_TEST_THREADS", "1"))


@dataclass
class Trained:
    student: object  # ClassifierStudent
    examples: list[TrainExample]
    texts: list[str]
    targets: list[str]
    report: TrainReport
    progress: list[tuple[float, str]]
    energy_before: np.ndarray  # on the training texts, untrained head
    embed_before: np.ndarray  # of the first texts, untrained (= the original encoder)
    args: TrainingArgs = field(default_factory=lambda: TRAIN_ARGS)
    labels: tuple[str, ...] = tuple(LABELS)
    gibberish: tuple[str, ...] = tuple(GIBBERISH)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained() -> Trained:
    from gold.students.classifier import ClassifierStudent

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        examples = [TrainExample(t, "positive") for t in POSITIVE] + [TrainExample(t, "negative") for t in NEGATIVE]
        texts = [ex.text for ex in examples]
        student = ClassifierStudent(LABELS)
        energy_before = student.energy(texts)
        embed_before = student.embed(texts[:4])
        progress: list[tuple[float, str]] = []
        report = student.fit(examples, TRAIN_ARGS, progress=lambda f, m: progress.append((f, m)))
    finally:
        torch.set_num_threads(before)
    return Trained(student, examples, texts, [ex.target for ex in examples], report, progress, energy_before, embed_before)

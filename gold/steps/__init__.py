"""The steps of a GOLD round, one module each, in the order `STEPS` gives (the one place the order is written):

  generate  the teacher writes `samples_per_round` labeled samples (split across labels), from the seeds and, in
            GOLD mode from round 2 on, the previous rounds' feedback examples in the prompts;
  label     soft labels (classification, soft-label weight > 0): the labeler reads each new sample back as a
            few-shot classifier; its calibrated label probabilities become the student's targets;
  train     the student fine-tunes on the seeds and every kept sample of the run that is neither vetoed nor
            noise (warm-started from the previous round's student) and is saved as the round's checkpoint;
  probe     GOLD mode: the teacher writes `probe_size` samples pushed toward other styles and perspectives;
  score     every kept sample of the run is scored by the new student (energy, prediction, confidence);
  select    GOLD mode: the noise strategy flags noise, the feedback strategy picks the next round's examples;
  measure   the task metric on the evaluation rows (else the seeds), energy statistics and counts.

Each module has `run(ctx, state)` returning a small result dataclass whose `metrics()` the loop merges into the
round's `RoundMetrics` and stores as the step's checkpoint in the store (`gold/loop.py`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from gold import layout
from gold.checkpoints import new_student
from gold.records import RoundMetrics
from gold.specs import GoldSettings, TaskSpec
from gold.strategies import feedback_strategy

STEPS = ("generate", "label", "train", "probe", "score", "select", "measure")


@dataclass
class StepResult:
    """What a step reports; its fields are RoundMetrics fields (None = nothing to record)."""

    def metrics(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def saved_checkpoint(self) -> str | None:
        """The folder of the student this step saved, recorded on the round (only `train` saves one)."""
        return None


@dataclass
class RoundState:
    """What the steps of one round share. The teacher is loaded when a step first needs it (a resumed round past
    its generating steps never loads it), and the student is the one `train` fitted, or the round's checkpoint."""

    task: TaskSpec
    settings: GoldSettings
    n: int
    run_dir: Path
    metrics: RoundMetrics
    load_teacher: Callable[[], Any]
    _teacher: Any = None
    student: Any = None

    @property
    def gold(self) -> bool:
        return self.settings.mode == "gold"

    @property
    def teacher(self) -> Any:
        if self._teacher is None:
            self._teacher = self.load_teacher()
        return self._teacher

    @property
    def checkpoint(self) -> Path:
        return layout.checkpoint_dir(self.run_dir, self.n)

    def trained_student(self) -> Any:
        """The student of this round: the one just trained, else the one its train step saved."""
        if self.student is None:
            self.student = new_student(self.task, self.settings, self.checkpoint)
        return self.student


def finite(x: float | None) -> float | None:
    """A metric as stored: rounded to 4 places, None when it is missing or not a finite number."""
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def probing(settings: GoldSettings, n: int) -> bool:
    """Whether round n writes probes. GOLD mode does, except, with `train_on_probes`, in its last round: no round
    follows to take feedback from them or train on them, so that share of the budget buys samples; and except
    when the feedback strategy reads no probes (`real_errors`): the whole budget then buys samples."""
    if settings.mode != "gold" or not feedback_strategy(settings.feedback).needs_probes:
        return False
    return not (settings.train_on_probes and n >= settings.rounds)

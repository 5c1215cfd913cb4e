"""The Student protocols and the one training-arguments dataclass.

Every student takes plain strings: the caller turns a task's input fields into one text with
`TaskSpec.format_input`, so students know nothing of tasks or the store. The defaults of `TrainingArgs` are the
training recipe (AdamW 5e-5, weight decay 0.01, 10% warm-up then linear decay, batch 16, 5 epochs and at least
60 steps, max length 128, SCE loss, soft labels at full weight): a mid-loop student must converge or its energy is
flat and the feedback band is random. `gold.specs.StudentSpec` takes its training fields' defaults from here, and
`StudentSpec.training_args` builds the TrainingArgs a round trains with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

# How a student's forward and backward passes compute (`training.compute_precision` resolves "auto"):
#   auto  bf16 mixed precision where the processor computes bf16 natively (AVX512-BF16 or AMX CPUs, CUDA GPUs
#         with bf16), else fp32;
#   bf16  bf16 mixed precision wherever torch runs it (slow on processors that only emulate bf16);
#   fp32  fp32 throughout.
# Mixed precision keeps the weights, their gradients and AdamW's state in fp32: only matmuls and their
# neighbours run in bf16, so the saved and exported student is the same fp32 model either way.
PRECISIONS = ("auto", "bf16", "fp32")

if TYPE_CHECKING:  # annotations only: importing this module (as gold.specs does) loads no numpy
    import numpy as np

# progress(fraction_done in [0, 1], message)
ProgressFn = Callable[[float, str], None]


@dataclass
class TrainExample:
    """One training row: the formatted input text and its target (a label name, or the output text)."""

    text: str
    target: str
    weight: float = 1.0
    soft: list[float] | None = None  # a teacher's probability per label (classifier), for soft_label_weight


@dataclass
class TrainingArgs:
    """How a student is fine-tuned.

    Attributes:
        epochs: passes over the training set.
        min_steps: optimizer steps at least, whatever the epochs say: small sets need more passes to converge.
        max_steps: hard cap on optimizer steps (0 = none); keeps a round's time bounded on CPU.
        learning_rate: AdamW peak learning rate.
        batch_size: examples per step (dynamic padding to the longest in the batch).
        weight_decay: AdamW weight decay.
        warmup_ratio: share of steps with linear warm-up; then linear decay to 0.
        max_length: tokens per input (longer inputs are truncated).
        loss: "ce" (cross-entropy) or "sce" (symmetric CE: alpha·CE + beta·RCE, RCE's log 0 clamped to log 1e-4).
        sce_alpha, sce_beta: the SCE weights (paper defaults 0.1 and 1.0).
        seed: RNG seed for shuffling, dropout and head init.
        warm_start: continue from the current weights instead of re-initialising (mid-loop rounds).
        label_smoothing: share of each one-hot target spread evenly over the labels (classifier; 0 = none):
            a wrong generated label then pulls the student less.
        early_stopping: when the fit is given labeled evaluation rows, score the student on them after every
            epoch and keep the best epoch's weights (see `training.BestWeights`).
        soft_label_weight: w in target = (1 - w)·one-hot(given label) + w·teacher probabilities, for rows that
            carry `TrainExample.soft` (classifier; 0 = the given labels only). Distils what the teacher believes
            about a generated text instead of trusting the label it was asked to write.
        precision: "auto", "bf16" or "fp32" (see PRECISIONS): bf16 mixed precision trains MiniLM 1.7× faster
            on a 2-core AVX512-BF16 CPU (docs/benchmarks.md, *Training precision*).
    """

    epochs: int = 5
    min_steps: int = 60
    max_steps: int = 0
    learning_rate: float = 5e-5
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    loss: str = "sce"
    sce_alpha: float = 0.1
    sce_beta: float = 1.0
    seed: int = 0
    warm_start: bool = False
    label_smoothing: float = 0.0
    early_stopping: bool = False
    soft_label_weight: float = 1.0
    precision: str = "auto"

    def problems(self) -> list[str]:
        p = []
        if self.epochs < 1:
            p.append("Epochs must be at least 1.")
        if self.learning_rate <= 0 or self.learning_rate > 1:
            p.append("The learning rate must be between 0 and 1.")
        if self.batch_size < 1:
            p.append("The batch size must be at least 1.")
        if self.loss not in ("ce", "sce"):
            p.append("The loss must be 'ce' or 'sce'.")
        if not 0 <= self.warmup_ratio < 1:
            p.append("The warm-up ratio must be in [0, 1).")
        if not 0 <= self.soft_label_weight <= 1:
            p.append("The soft-label weight must be in [0, 1].")
        if not 0 <= self.label_smoothing < 1:
            p.append("Label smoothing must be in [0, 1).")
        if self.max_length < 8:
            p.append("The max length must be at least 8 tokens.")
        if self.precision not in PRECISIONS:
            p.append(f"The training precision must be one of {', '.join(PRECISIONS)}.")
        return p


@dataclass
class Prediction:
    """A student's answer for one input: the label (or generated output) and its confidence in [0, 1]."""

    output: str
    confidence: float
    probs: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainReport:
    steps: int
    examples: int
    seconds: float
    final_loss: float
    examples_per_second: float
    best_step: int | None = None  # early stopping: the step whose weights were kept
    eval_history: list[tuple[int, float]] = field(default_factory=list)  # (step, score on the evaluation rows)
    precision: str = "fp32"  # what the passes computed in: "bf16" or "fp32" (TrainingArgs.precision resolved)
    eval_seconds: float = 0.0  # of `seconds`, early stopping's: scoring the evaluation rows, keeping the best weights


@runtime_checkable
class Student(Protocol):
    """What the engine calls on every student (the round loop, evaluation, maps and export)."""

    kind: str  # "classification" or "seq2seq"

    def fit(self, examples: list[TrainExample], args: TrainingArgs, progress: ProgressFn | None = None,
            eval_examples: list[TrainExample] | None = None) -> TrainReport:
        """Train on `examples` with `args`; with `eval_examples` and `args.early_stopping`, keep the best epoch."""
        ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...

    def energy(self, texts: Sequence[str], outputs: list[str] | None = None, temperature: float = 1.0) -> np.ndarray:
        """E(x) = -T·logsumexp(f(x)/T) per input; seq2seq: mean over the target tokens of `outputs`."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised vector per text (the map of a round's samples)."""
        ...

    def save(self, folder: Path) -> None:
        """A plain Hugging Face folder that `load` (and transformers alone) reads back."""
        ...

    @classmethod
    def load(cls, folder: str | Path, device: Any = None) -> "Student":
        """A student saved by `save`."""
        ...


@runtime_checkable
class LabelStudent(Student, Protocol):
    """A classifier student: energy and label probabilities from one forward pass, which the loop uses to score a
    round's samples and to measure it (`isinstance(student, LabelStudent)`; the seq2seq student is not one)."""

    labels: list[str]

    def score(self, texts: Sequence[str], temperature: float = 1.0, embeddings: bool = False) -> Any:
        """Logits, probs [N, K], energy [N] and (when asked) embeddings of `texts`, as one `Scores` value."""
        ...

    def predictions(self, probs: np.ndarray) -> list[Prediction]:
        """Label, confidence and per-label probabilities from `score(...).probs`."""
        ...

"""Typed records: what the store returns for a run, a round, a sample, and a round's metrics.

Why dataclasses rather than the rows as dicts: a reader sees in one place which fields a run, a round or a sample
has and what they mean, a typo is an AttributeError at the line that makes it instead of a silent `None`, and the
JSON columns (a run's settings and usage, a round's metrics, a sample's inputs and soft label) arrive decoded.
This module imports only the specs, so every other module may use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from gold.layout import export_name
from gold.specs import GoldSettings, TaskSpec


@dataclass
class TaskSummary:
    """A task as the task list shows it."""

    id: int
    name: str
    kind: str
    labels: list[str]
    n_seeds: int
    n_eval: int
    n_runs: int
    updated_at: float


@dataclass
class StoredTask:
    """A task with its id: the spec as stored, seeds and evaluation rows included."""

    id: int
    spec: TaskSpec
    created_at: float
    updated_at: float


@dataclass
class RunSummary:
    """A run as run lists show it (without its settings)."""

    id: int
    task_id: int
    task_name: str
    name: str
    mode: str
    status: str
    created_at: float
    finished_at: float | None
    error: str | None
    rounds_done: int = 0  # finished rounds: a run with none has no student to show, explore or export


@dataclass
class Run:
    """One run: a task with frozen settings, worked through by a worker round after round."""

    id: int
    task_id: int
    task_name: str
    name: str
    mode: str  # "gold" or "baseline"
    settings: dict[str, Any]  # the frozen GoldSettings as stored (GoldSettings.from_dict reads them)
    status: str  # queued, held, reserved, running, done, stopped: budget, failed, cancelled
    created_at: float
    cancel_requested: bool = False
    retrain_requested: bool = False
    worker: str | None = None
    heartbeat: float | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    usage: dict[str, float] = field(default_factory=dict)  # prompt_tokens, completion_tokens, cost_usd


@dataclass
class RoundMetrics:
    """What a round measured and counted, step by step; a field a step has not reached yet is None.

    The store keeps them as one JSON object per round. Keys this class does not know (written by a later
    version) are kept in `extra` and written back unchanged."""

    # a retrain round (no generation; the student trained again with the vetoes applied)
    retrain: bool | None = None
    # generate
    gen_kept: int | None = None
    gen_rejected: int | None = None
    gen_prompts: int | None = None
    generate_seconds: float | None = None
    label_shares: dict[str, float] | None = None  # the steered share of each label this round (steer_labels)
    # label
    labeler: str | None = None
    labeler_choice: dict[str, Any] | None = None  # the "choose" table (LabelerChoice.to_dict), first labeling round
    soft_labeled: int | None = None
    teacher_agrees: float | None = None  # share of read-back labels equal to the label the teacher was asked for
    label_method: str | None = None  # "given" when the labeler's server gave no log-probabilities
    label_floored: int | None = None
    label_rows_floored: int | None = None
    label_failed: int | None = None
    # train
    train_size: int | None = None
    train_seconds: float | None = None  # the whole step: the student loaded, fitted and saved
    train_fit_seconds: float | None = None  # the fit: its optimizer steps and early stopping's evaluations
    train_eval_seconds: float | None = None  # of the fit, early stopping's: scoring the evaluation rows
    train_steps: int | None = None
    train_loss: float | None = None
    train_precision: str | None = None  # what the student's passes computed in: "bf16" or "fp32"
    best_step: int | None = None
    selected_on_eval: bool | None = None  # early stopping chose the epoch on the evaluation rows
    averaged_rounds: list[int] | None = None  # the rounds whose students' weights this round's student averages
    # probe
    probe_kept: int | None = None
    probe_rejected: int | None = None
    probe_prompts: int | None = None
    # score
    scored: int | None = None
    energy_mean: float | None = None
    energy_std: float | None = None
    # select
    feedback: int | None = None
    noise: int | None = None
    band_lo_energy: float | None = None
    band_hi_energy: float | None = None
    feedback_rows: list[int] | None = None  # real_errors: the steering rows fed back (indices into the eval set)
    steering_accuracy: float | None = None  # real_errors: the round's student on the steering rows
    # measure
    metric_name: str | None = None  # "accuracy" or "exact match"
    metric: float | None = None
    metric_on: str | None = None  # "eval" (the task's evaluation rows; their scoring half when steering) or "seeds"
    metric_rows: int | None = None
    energy_hist: dict[str, list[float]] | None = None  # {"counts": [...], "edges": [...]} of this round's samples
    label_energy: dict[str, float | None] | None = None  # steer_labels: the student's mean energy per label
    label_error: dict[str, float | None] | None = None  # steer_labels by errors: its error rate per steering label
    next_label_shares: dict[str, float] | None = None  # steer_labels: the next round's label shares
    generated: int | None = None
    kept: int | None = None
    rejected: int | None = None
    vetoed: int | None = None
    # every step
    step_seconds: dict[str, float] | None = None  # wall seconds of each step of the round, in step order
    # storage
    checkpoint_deleted: bool | None = None  # keep_checkpoints removed this round's student folder
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "RoundMetrics":
        known = _field_names(cls) - {"extra"}
        d = dict(d or {})
        return cls(**{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object: fields that are set, and the unknown keys read in."""
        out = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        return {**self.extra, **out}

    def update(self, values: dict[str, Any] | "RoundMetrics") -> "RoundMetrics":
        """Set every given value that is not None (a step's result merged into the round's metrics)."""
        items = values.to_dict() if isinstance(values, RoundMetrics) else values
        known = _field_names(type(self)) - {"extra"}
        for k, v in items.items():
            if v is None:
                continue
            if k in known:
                setattr(self, k, v)
            else:
                self.extra[k] = v
        return self


@dataclass
class Round:
    """One round of a run; `step` is its last finished step, the point a resumed run continues from."""

    id: int
    run_id: int
    n: int
    status: str  # "running" or "done"
    step: str | None
    metrics: RoundMetrics
    checkpoint: str | None = None
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class Sample:
    """One reply of the teacher: kept (parsed) or rejected (with its reason), and what the student made of it."""

    id: int
    run_id: int
    round: int
    role: str  # "train" (a sample) or "probe" (written toward other styles; scored, trained on with train_on_probes)
    inputs: dict[str, str]
    output: str | None  # the label or target text the teacher was asked for / wrote
    created_at: float
    energy: float | None = None  # under the latest student
    prediction: str | None = None
    confidence: float | None = None
    label_prob: float | None = None  # the student's probability of `output`
    teacher_probs: list[float] | None = None  # the labeler's calibrated probability per label (soft label)
    flag: str = "ok"  # "ok", "noise" or "feedback"
    vetoed: bool = False
    vetoed_at: float | None = None
    reject_reason: str | None = None
    raw: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field_names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def from_row(cls, row: dict[str, Any]):
    """A record from a row of the store, columns the record does not define left out (a column added by a later
    schema must not break an older reader)."""
    names = _field_names(cls)
    return cls(**{k: v for k, v in row.items() if k in names})


# -- what an export reads -------------------------------------------------------------------------------------

@dataclass
class Baseline:
    """The baseline run queued beside a GOLD run, and its rounds: the card's baseline column."""

    run: Run
    rounds: list[Round]


@dataclass
class ExportInfo:
    """What an export says about a round: the model card, the dataset card and gold_run.json are written from it
    (`gold.export.collect` reads it from the store and writes nothing)."""

    run: Run
    task: TaskSpec
    settings: GoldSettings
    round: Round
    rounds: list[Round]
    checkpoint: Path
    notes: dict[str, Any]  # the student's sidecar
    counts: dict[str, int]
    reject_reasons: dict[str, int]
    train_ids: dict[str, Any] | None  # {"seeds": k, "sample_ids": [...]} or None for old runs
    vetoed: list[dict[str, Any]]  # `_sample_view` of each vetoed sample, as gold_run.json lists them
    baseline: Baseline | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.task.kind

    @property
    def root_name(self) -> str:
        return export_name(self.run.id, self.round.n)

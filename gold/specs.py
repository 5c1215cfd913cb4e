"""Specs: the dataclasses that describe a task, and their validation.

Validation never raises on the first problem: a user fixing an upload wants the whole list at once, each
problem as a sentence they can act on. `TaskSpec.problems()` returns that list; `TaskSpec.validate()` raises
`SpecError` carrying it. The page, the CLI and the store all call the same code, so they agree on what a
valid task is.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("classification", "seq2seq")

# Limits. A seed is something a user types; an evaluation row may be a longer real document.
MAX_NAME_CHARS = 80
MAX_INSTRUCTION_CHARS = 4_000
MAX_SEED_CHARS = 2_000
MAX_EVAL_CHARS = 8_000
MAX_LABEL_CHARS = 60
MAX_LABELS = 100
MAX_SEEDS = 500
MAX_EVAL_ROWS = 20_000
MIN_SEQ2SEQ_SEEDS = 3
MAX_PROBLEMS_LISTED = 20

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")


class SpecError(ValueError):
    """A spec that cannot be stored; `problems` lists every reason, one sentence each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass
class Example:
    """One labeled row: the input fields (e.g. {"text": ...} or {"premise": ..., "hypothesis": ...}) and
    the output, which is the label for classification and the target text for seq2seq."""

    inputs: dict[str, str]
    output: str

    def key(self) -> tuple:
        """Identity used to find duplicates: whitespace-collapsed, case-folded inputs."""
        return tuple(sorted((k, normalize_text(v)) for k, v in self.inputs.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": dict(self.inputs), "output": self.output}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Example":
        return cls(inputs={str(k): str(v) for k, v in d["inputs"].items()}, output=str(d["output"]))


def normalize_text(text: str) -> str:
    return " ".join(str(text).split()).casefold()


@dataclass
class TaskSpec:
    """What the user wants distilled: one task, its instruction, its labels and a few seed examples.

    `input_fields` names the parts of an input: a single "text", or several named fields such as
    premise/hypothesis. For classification `labels` is the closed label set; for seq2seq it is empty and
    `output_name` names what is produced (e.g. "answer").
    """

    name: str
    kind: str
    instruction: str
    labels: list[str] = field(default_factory=list)
    input_fields: list[str] = field(default_factory=lambda: ["text"])
    output_name: str = "label"
    seeds: list[Example] = field(default_factory=list)
    eval_set: list[Example] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = (self.name or "").strip()
        self.kind = (self.kind or "").strip()
        self.instruction = (self.instruction or "").strip()
        self.labels = [str(label).strip() for label in self.labels]
        self.input_fields = [str(f).strip() for f in self.input_fields]
        self.output_name = (self.output_name or "").strip() or ("label" if self.kind == "classification" else "output")

    def problems(self) -> list[str]:
        """Every reason this spec cannot be stored, as sentences a user understands (empty list = valid)."""
        p: list[str] = []
        p += name_problems(self.name)
        if self.kind not in KINDS:
            p.append(f"The task kind must be 'classification' or 'seq2seq', not '{self.kind}'.")
        if not self.instruction:
            p.append("The instruction is empty: say in a sentence what the model should do.")
        elif len(self.instruction) > MAX_INSTRUCTION_CHARS:
            p.append(f"The instruction is {len(self.instruction):,} characters long; the limit is {MAX_INSTRUCTION_CHARS:,}.")
        p += self._field_problems()
        if self.kind == "classification":
            p += self._label_problems()
        p += self._example_problems(self.seeds, "Seed", MAX_SEED_CHARS)
        p += self._example_problems(self.eval_set, "Evaluation row", MAX_EVAL_CHARS)
        if len(self.seeds) > MAX_SEEDS:
            p.append(f"There are {len(self.seeds)} seeds; the limit is {MAX_SEEDS} (use the evaluation set for more rows).")
        if len(self.eval_set) > MAX_EVAL_ROWS:
            p.append(f"The evaluation set has {len(self.eval_set):,} rows; the limit is {MAX_EVAL_ROWS:,}.")
        p += self._coverage_problems()
        if len(p) > MAX_PROBLEMS_LISTED:
            p = p[:MAX_PROBLEMS_LISTED] + [f"… and {len(p) - MAX_PROBLEMS_LISTED} more problems."]
        return p

    def validate(self) -> "TaskSpec":
        problems = self.problems()
        if problems:
            raise SpecError(problems)
        return self

    # -- the parts of validation -------------------------------------------------------------------------
    def _field_problems(self) -> list[str]:
        p = []
        if not self.input_fields:
            p.append("The task needs at least one input field (usually 'text').")
        for f in self.input_fields:
            if not _FIELD_NAME.match(f):
                p.append(f"The input field name '{f}' must start with a letter and use only letters, digits and '_'.")
        if len(set(self.input_fields)) != len(self.input_fields):
            p.append("Input field names must be different from each other.")
        return p

    def _label_problems(self) -> list[str]:
        p = []
        if len(self.labels) < 2:
            p.append("A classification task needs at least 2 labels.")
        if len(self.labels) > MAX_LABELS:
            p.append(f"There are {len(self.labels)} labels; the limit is {MAX_LABELS}.")
        if any(not label for label in self.labels):
            p.append("A label is empty: every label needs a name.")
        seen: set[str] = set()
        for label in self.labels:
            if len(label) > MAX_LABEL_CHARS:
                p.append(f"The label '{label[:30]}…' is longer than {MAX_LABEL_CHARS} characters.")
            if label.casefold() in seen and label:
                p.append(f"The label '{label}' is listed twice.")
            seen.add(label.casefold())
        return p

    def _example_problems(self, rows: list[Example], what: str, max_chars: int) -> list[str]:
        p = []
        labels = set(self.labels)
        seen: dict[tuple, int] = {}
        for i, ex in enumerate(rows, start=1):
            missing = [f for f in self.input_fields if not str(ex.inputs.get(f, "")).strip()]
            if missing:
                p.append(f"{what} {i} has no text in {', '.join(repr(m) for m in missing)}.")
            extra = [f for f in ex.inputs if f not in self.input_fields]
            if extra:
                p.append(f"{what} {i} has fields the task does not define: {', '.join(repr(e) for e in extra)}.")
            for f, v in ex.inputs.items():
                if len(str(v)) > max_chars:
                    p.append(f"{what} {i} is {len(str(v)):,} characters long in '{f}'; the limit is {max_chars:,}.")
            out = str(ex.output).strip()
            if not out:
                p.append(f"{what} {i} has no {self.output_name}.")
            elif self.kind == "classification" and out not in labels:
                p.append(f"{what} {i} has the label '{out[:40]}', which is not one of the task's labels ({', '.join(self.labels)}).")
            elif len(out) > max_chars:
                p.append(f"{what} {i} has an output of {len(out):,} characters; the limit is {max_chars:,}.")
            k = ex.key()
            if k in seen and not missing:
                p.append(f"{what} {i} repeats {what.lower()} {seen[k]}.")
            seen.setdefault(k, i)
        return p

    def _coverage_problems(self) -> list[str]:
        if self.kind == "classification":
            have = {ex.output.strip() for ex in self.seeds}
            lacking = [label for label in self.labels if label and label not in have]
            if lacking:
                return [f"The label '{label}' has no seed example: add at least one." for label in lacking]
        elif self.kind == "seq2seq" and len(self.seeds) < MIN_SEQ2SEQ_SEEDS:
            return [f"A seq2seq task needs at least {MIN_SEQ2SEQ_SEEDS} seed examples; it has {len(self.seeds)}."]
        return []

    # -- serialization ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"] = [ex.to_dict() for ex in self.seeds]
        d["eval_set"] = [ex.to_dict() for ex in self.eval_set]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskSpec":
        return cls(
            name=d.get("name", ""),
            kind=d.get("kind", ""),
            instruction=d.get("instruction", ""),
            labels=list(d.get("labels") or []),
            input_fields=list(d.get("input_fields") or ["text"]),
            output_name=d.get("output_name") or "",
            seeds=[Example.from_dict(x) for x in d.get("seeds") or []],
            eval_set=[Example.from_dict(x) for x in d.get("eval_set") or []],
        )

    def format_input(self, inputs: dict[str, str]) -> str:
        """One string for models that read a single text: the field itself, or 'field: value' lines."""
        if len(self.input_fields) == 1:
            return str(inputs.get(self.input_fields[0], ""))
        return "\n".join(f"{f}: {inputs.get(f, '')}" for f in self.input_fields)


def name_problems(name: str) -> list[str]:
    """Problems with a task or run name. Names are shown, not used as paths (artifacts use numeric ids),
    but control characters and absurd lengths are refused so they display sanely everywhere."""
    name = (name or "").strip()
    if not name:
        return ["The name is empty: give the task a name."]
    p = []
    if len(name) > MAX_NAME_CHARS:
        p.append(f"The name is {len(name)} characters long; the limit is {MAX_NAME_CHARS}.")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        p.append("The name contains control characters (such as a newline or NUL); use plain text.")
    return p


# -- run settings -----------------------------------------------------------------------------------------------

MODES = ("gold", "baseline")
# Which round checkpoints (~90 MB each) a run keeps on disk. best_and_last: the best round by the evaluation metric
# (what Export picks by default) and the last finished one (what the next round warm-starts from).
KEEP_CHECKPOINTS = ("all", "best_and_last")
TEACHER_BACKENDS = ("local", "openai")
# How a local teacher runs: transformers (always installed; also scores labels for soft labels and the few-shot
# teacher) or llama.cpp (optional package; GGUF files only; `bench/teacher_engines.py` measures the two).
LOCAL_ENGINES = ("transformers", "llama.cpp")
LOSSES = ("sce", "ce")


@dataclass
class TeacherSpec:
    """Which LLM writes the data. The API key is deliberately not a field: it is read from OPENAI_API_KEY or
    typed into the page and held in memory only, so it can never reach the database, events or exports."""

    backend: str = "local"
    model: str = "embedded:smollm2-135m-instruct"
    engine: str = "transformers"  # the local backend's engine: one of LOCAL_ENGINES
    base_url: str = ""
    max_new_tokens: int = 40
    temperature: float = 0.9
    top_p: float = 0.95
    repetition_penalty: float = 1.2
    batch_size: int = 16
    max_concurrency: int = 4
    timeout_s: float = 60.0
    price_in_per_m: float = 0.0
    price_out_per_m: float = 0.0
    budget_usd: float = 0.0  # 0 = no cap

    def problems(self) -> list[str]:
        p = []
        if self.backend not in TEACHER_BACKENDS:
            p.append(f"The teacher backend must be one of {', '.join(TEACHER_BACKENDS)}.")
        if self.engine not in LOCAL_ENGINES:
            p.append(f"The local teacher's engine must be one of {', '.join(LOCAL_ENGINES)}.")
        if not self.model.strip():
            p.append("Name the teacher model.")
        if self.backend == "openai" and self.base_url and not self.base_url.startswith(("http://", "https://")):
            p.append("The teacher's base URL must start with http:// or https://.")
        if not 1 <= self.max_new_tokens <= 4096:
            p.append("Max new tokens must be between 1 and 4096.")
        if not 0 <= self.temperature <= 2:
            p.append("The teacher temperature must be between 0 and 2.")
        if not 0 < self.top_p <= 1:
            p.append("top_p must be in (0, 1].")
        if self.budget_usd < 0 or self.price_in_per_m < 0 or self.price_out_per_m < 0:
            p.append("Prices and the budget cannot be negative.")
        if self.batch_size < 1 or self.max_concurrency < 1:
            p.append("Batch size and concurrency must be at least 1.")
        return p


# How the teacher's label probabilities for generated samples are debiased (soft labels):
#   contextual  divide out its prior for content-free inputs (Zhao et al., 2021), sample by sample;
#   batch       rescale each label so that the round's samples, together, carry the mix of labels the teacher
#               was asked to write (`fewshot.match_prior`).
SOFT_LABEL_CALIBRATIONS = ("contextual", "batch")


@dataclass
class StudentSpec:
    """Which small model is distilled into, and how it is trained each round (see TrainingArgs)."""

    model: str = "embedded:all-minilm-l6-v2"
    epochs: int = 5
    min_steps: int = 60
    max_steps: int = 0
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 128
    loss: str = "sce"
    sce_alpha: float = 0.1
    sce_beta: float = 1.0
    warm_start: bool = True
    label_smoothing: float = 0.0
    # Classification with a local teacher: the student learns what the teacher believes of each generated text
    # (w = 1) rather than the label it was asked to write (w = 0). Default 1, batch-calibrated: the largest gain
    # measured (README, Benchmarks: TREC +25 points at 256 samples; SST-2 level).
    soft_label_weight: float = 1.0
    soft_label_calibration: str = "batch"  # how the teacher's read-back is debiased: SOFT_LABEL_CALIBRATIONS
    # The final student (last round, and a retrain): how it is trained. Mid-loop students must converge for
    # their energy to mean anything; the final one must not memorise the generated labels' noise.
    final_fresh: bool = False  # train it from the pretrained encoder instead of warm-starting
    final_epochs: int = 0  # 0 = `epochs`
    early_stopping: bool = False  # keep its best epoch on the task's evaluation rows (when it has some)

    def training_args(self, seed: int = 0, warm_start: bool = False, final: bool = False):
        """The TrainingArgs a round trains with: one source for the values and for their validation.
        `final` = the run's last training (last round or retrain), where final_* and early_stopping apply."""
        from gold.students.base import TrainingArgs

        return TrainingArgs(
            epochs=(self.final_epochs or self.epochs) if final else self.epochs, min_steps=self.min_steps,
            max_steps=self.max_steps, learning_rate=self.learning_rate, batch_size=self.batch_size,
            max_length=self.max_length, loss=self.loss, sce_alpha=self.sce_alpha, sce_beta=self.sce_beta, seed=seed,
            warm_start=warm_start and not (final and self.final_fresh), label_smoothing=self.label_smoothing,
            soft_label_weight=self.soft_label_weight,
            early_stopping=final and self.early_stopping,
        )

    def problems(self) -> list[str]:
        p = [] if self.model.strip() else ["Name the student model."]
        if self.final_epochs < 0:
            p.append("Final epochs must be 0 (same as epochs) or more.")
        if self.soft_label_calibration not in SOFT_LABEL_CALIBRATIONS:
            p.append(f"The soft-label calibration must be one of {', '.join(SOFT_LABEL_CALIBRATIONS)}.")
        return p + [f"Student: {problem}" for problem in self.training_args().problems()]


# How the labeler of a run is picked among its candidates (LabelerSpec.models):
#   first     the first candidate reads every label;
#   ensemble  every candidate reads, and their calibrated probabilities are averaged;
#   choose    before round 1, each candidate and their ensemble classify the task's evaluation rows few-shot
#             (no generation, so it is cheap) and the most accurate labels the run; the ensemble only when it
#             is strictly better than every single candidate.
LABELER_PICKS = ("first", "ensemble", "choose")


@dataclass
class LabelerSpec:
    """Who reads the generated texts back as a few-shot classifier for the student's soft labels
    (classification, soft-label weight > 0). The generating teacher by default; a run may generate with a fast
    teacher and read labels with a better one.

    Attributes:
        models: candidate labelers, each a reference `gold.labelers.LabelerRef` parses: "teacher" (the model
            that generates), a local model ("embedded:gemma3-270m", a folder or a .gguf file), or an
            OpenAI-compatible server as "openai:MODEL@BASE_URL" ("openai:MODEL" alone = the OpenAI API).
            Empty = ["teacher"].
        pick: how the labeler is picked among several: one of LABELER_PICKS.
        votes: remote labelers whose server gives no log-probabilities: sample the answer this many times per
            text and use the vote shares as soft labels (0 = off: the student then trains on the labels the
            teacher was asked to write). Costs `votes` requests per text.
    """

    models: list[str] = field(default_factory=list)
    pick: str = "first"
    votes: int = 0

    def problems(self) -> list[str]:
        from gold.labelers import LabelerRef

        p = []
        if self.pick not in LABELER_PICKS:
            p.append(f"The labeler pick must be one of {', '.join(LABELER_PICKS)}.")
        if not 0 <= self.votes <= 20:
            p.append("Label votes must be between 0 (off) and 20.")
        for ref in self.models:
            p += LabelerRef.parse(ref).problems()
        if self.pick in ("ensemble", "choose") and len(self.models) < 2:
            p.append(f"Picking the labeler by '{self.pick}' needs at least two candidate labelers.")
        return p


@dataclass
class GoldSettings:
    """One run's GOLD loop. Defaults follow the paper and its official code where they apply (energy T 1,
    the 50th–80th percentile band, 3 feedback examples, feedback on every second prompt, SCE loss)."""

    mode: str = "gold"
    rounds: int = 4
    samples_per_round: int = 64
    probe_size: int = 16
    energy_temperature: float = 1.0
    band_lo: float = 50.0
    band_hi: float = 80.0
    feedback_count: int = 3
    feedback_rate: float = 0.5
    noise_filter: bool = True
    relabel_noise: bool = False  # classification: noise-flagged samples train under the student's label instead
    feedback_needs_agreement: bool = True
    steer_labels: bool = False  # GOLD, classification: split each round's samples by the student's energy per label
    # GOLD: probes are training data too, from the round after they are written (labeled by the teacher's read-back
    # when soft labels are on), and the last round spends its probe budget on samples, as no round follows to use
    # its probes. Why: without it GOLD trains on ~20% fewer teacher samples than plain generation at the same budget.
    train_on_probes: bool = False
    map_after_round: bool = True
    keep_checkpoints: str = "all"  # one of KEEP_CHECKPOINTS
    seed: int = 0
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    student: StudentSpec = field(default_factory=StudentSpec)
    labeler: LabelerSpec = field(default_factory=LabelerSpec)

    def problems(self) -> list[str]:
        p = []
        if self.mode not in MODES:
            p.append("The mode must be 'gold' or 'baseline'.")
        if not 1 <= self.rounds <= 100:
            p.append("Rounds must be between 1 and 100.")
        if not 1 <= self.samples_per_round <= 100_000:
            p.append("Samples per round must be between 1 and 100,000.")
        if not 0 <= self.probe_size <= 100_000:
            p.append("The probe size must be between 0 and 100,000.")
        if self.energy_temperature <= 0:
            p.append("The energy temperature must be above 0.")
        if not 0 <= self.band_lo < self.band_hi <= 100:
            p.append("The feedback band needs 0 ≤ lo < hi ≤ 100 (percentiles of energy).")
        if self.feedback_count < 0:
            p.append("The feedback count cannot be negative.")
        if not 0 <= self.feedback_rate <= 1:
            p.append("The feedback rate must be between 0 and 1.")
        if self.relabel_noise and not self.noise_filter:
            p.append("Relabeling noise needs the noise filter on: without it no sample is flagged as noise.")
        if self.keep_checkpoints not in KEEP_CHECKPOINTS:
            p.append(f"Keep checkpoints must be one of {', '.join(KEEP_CHECKPOINTS)}, not '{self.keep_checkpoints}'.")
        return p + self.teacher.problems() + self.student.problems() + self.labeler.problems()

    def validate(self) -> "GoldSettings":
        problems = self.problems()
        if problems:
            raise SpecError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GoldSettings":
        """Tolerant of settings written by older versions: unknown keys are ignored, missing ones take the value
        the engine used before they existed (BEFORE_THEY_EXISTED), else their default."""
        d = dict(d or {})
        teacher = _known(TeacherSpec, d.pop("teacher", {}) or {})
        student = _known(StudentSpec, {**BEFORE_THEY_EXISTED["student"], **(d.pop("student", {}) or {})})
        if "labeler" in d:
            labeler = _known(LabelerSpec, d.pop("labeler") or {})
            labeler.models = [str(m) for m in labeler.models or []]
        else:  # before labelers existed only a local teacher read labels back; a remote one gave none
            labeler = LabelerSpec(models=["none"] if teacher.backend == "openai" else [])
        return cls(**_known_kwargs(cls, d), teacher=teacher, student=student, labeler=labeler)


# Settings whose default is not what the engine did before they existed: a run stored without them gets these
# values, so resuming or retraining it does what it did when it was queued.
BEFORE_THEY_EXISTED: dict[str, dict[str, Any]] = {
    "student": {"soft_label_weight": 0.0, "soft_label_calibration": "contextual"},
}


def _known_kwargs(cls, d: dict[str, Any]) -> dict[str, Any]:
    names = set(cls.__dataclass_fields__) - {"teacher", "student", "labeler"}
    return {k: v for k, v in d.items() if k in names}


def _known(cls, d: dict[str, Any]):
    return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

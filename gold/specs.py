"""Specs: the dataclasses that describe a task and a run's settings, and their validation.

Validation never raises on the first problem: a user fixing an upload wants the whole list at once, each
problem as a sentence they can act on. `TaskSpec.problems()` returns that list; `TaskSpec.validate()` raises
`SpecError` carrying it. The page, the CLI and the store all call the same code, so they agree on what a
valid task is.
"""

from __future__ import annotations

import copy
import re
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any, Callable

from gold.labeler_refs import LabelerRef
from gold.strategies import FEEDBACK, NOISE
from gold.students.base import PRECISIONS, TrainingArgs
from gold.teachers.base import GenerationSettings
from gold.teachers.gguf_weights import GGUF_WEIGHTS

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
#
# Every field of the run settings below is declared with `setting(...)`: its default plus what the rest of the
# product needs to know about it — a label, one help text, its range or choices, the group and standing
# (core / advanced / experimental) it is shown under, and the value a run stored before the setting existed gets.
# `gold.settings` walks this metadata: the Runs form, the CLI flags, RUN_HELP and the range checks below are all
# generated from it, so a new setting is one `setting(...)` line (and its test).
#
# Training and sampling fields shared with `TrainingArgs` / `GenerationSettings` take their defaults from those
# dataclasses (the recipe lives with the code that trains and samples), so the two can never disagree.

MODES = ("gold", "baseline")
# Which round checkpoints (~90 MB each) a run keeps on disk. best_and_last: the best round by the evaluation metric
# (what Export picks by default) and the last finished one (what the next round warm-starts from).
KEEP_CHECKPOINTS = ("all", "best_and_last")
TEACHER_BACKENDS = ("local", "openai")
# How a local teacher runs: auto (llama.cpp when it is installed and the model is a GGUF file, else transformers;
# resolved when a run is queued, so a stored run names the engine it ran on), transformers (always installed, any
# model) or llama.cpp (optional package; GGUF files only; `bench/teacher_engines.py` measures the two).
LOCAL_ENGINES = ("auto", "transformers", "llama.cpp")
LOSSES = ("sce", "ce")
# Whether the loop's last round saves the weight average of the rounds' students (StudentSpec.average_rounds):
#   auto  on when each round writes at least AVERAGE_ROUNDS_FROM samples, where it was measured to pay;
#   on / off  always / never.
AVERAGE_ROUNDS = ("auto", "on", "off")
# Samples per round from which `auto` averages. Measured (docs/benchmarks.md, *Averaging the rounds' students*):
# at 410–512 samples a round (2,048-sample runs) the average lifted the last round's student on 8 of 9 cells,
# +3.9 points on the mean; at 51–64 a round (256-sample runs) it cost 1.4, because round 1's student, trained on
# ~60 rows, is not yet on the path the later ones share. Between the two nothing is measured, so auto stays off.
AVERAGE_ROUNDS_FROM = 400
# How the teacher's label probabilities for generated samples are debiased (soft labels):
#   contextual  divide out its prior for content-free inputs (Zhao et al., 2021), sample by sample;
#   batch       rescale each label so that the round's samples, together, carry the mix of labels the teacher
#               was asked to write (`fewshot.match_prior`).
SOFT_LABEL_CALIBRATIONS = ("contextual", "batch")
# How the labeler of a run is picked among its candidates (LabelerSpec.models):
#   first     the first candidate reads every label;
#   ensemble  every candidate reads, and their calibrated probabilities are averaged;
#   choose    before round 1, each candidate and their ensemble classify the task's evaluation rows few-shot
#             (no generation, so it is cheap) and the most accurate labels the run; the ensemble only when it
#             is strictly better than every single candidate.
LABELER_PICKS = ("first", "ensemble", "choose")
FEEDBACK_STRATEGIES: tuple[str, ...] = tuple(FEEDBACK)
# What sets each label's share of a round's samples when a run steers label shares (gold/steering.py):
#   energy  the student's mean energy on the label's evaluation rows;
#   errors  the student's error rate on the label's steering rows.
STEER_SIGNALS = ("energy", "errors")
NOISE_STRATEGIES: tuple[str, ...] = tuple(NOISE)

STANDINGS = ("core", "advanced", "experimental")
# The groups settings are shown in, in this order (the Runs form, `gold run --help`).
GROUPS = ("GOLD loop", "Teacher", "Student", "Labels", "Storage")
SETTING = "setting"  # the key of a field's metadata that `setting()` fills


def setting(default: Any = MISSING, *, factory: Callable[[], Any] | None = None, label: str, help: str, group: str,
            standing: str = "advanced", lo: float | None = None, hi: float | None = None,
            choices: tuple[str, ...] | None = None, choice_labels: dict[str, str] | None = None,
            cli: str | None = None, widget: str | None = None, step: float | None = None, fmt: str | None = None,
            placeholder: str | None = None, before: Any = MISSING) -> Any:
    """A settings field: `dataclasses.field` with the registry's metadata (see `gold.settings.Setting`).

    lo / hi: the inclusive range of a number; choices: the values a string may take (choice_labels: how the form
    shows them); cli: the `gold run` flag when it is not the generated one; widget: "radio" to show choices as
    radio buttons; before: the value a run stored before this setting existed gets (when it is not the default).
    """
    assert standing in STANDINGS and group in GROUPS, (standing, group)
    meta = {"label": label, "help": help, "group": group, "standing": standing, "lo": lo, "hi": hi,
            "choices": choices, "choice_labels": choice_labels or {}, "cli": cli, "widget": widget, "step": step,
            "fmt": fmt, "placeholder": placeholder, "before": before}
    if factory is not None:
        return field(default_factory=factory, metadata={SETTING: meta})
    return field(default=default, metadata={SETTING: meta})


def setting_meta(f: Field) -> dict[str, Any] | None:
    """The registry metadata of a dataclass field (None for a field that is not a setting)."""
    return f.metadata.get(SETTING)


def _number(x: float) -> str:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def value_problems(meta: dict[str, Any], value: Any, subject: str) -> list[str]:
    """One setting's value against its own range and choices, as sentences (`subject` names it)."""
    choices, lo, hi = meta["choices"], meta["lo"], meta["hi"]
    if choices is not None and value not in choices:
        return [f"{subject} must be one of {', '.join(choices)}, not '{value}'."]
    if lo is None and hi is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{subject} must be a number, not {value!r}."]
    if lo is not None and hi is not None and not lo <= value <= hi:
        return [f"{subject} must be between {_number(lo)} and {_number(hi)}, not {_number(value)}."]
    if lo is not None and value < lo:
        return [f"{subject} must be at least {_number(lo)}, not {_number(value)}."]
    if hi is not None and value > hi:
        return [f"{subject} must be at most {_number(hi)}, not {_number(value)}."]
    return []


def field_problems(obj: Any, prefix: str = "") -> list[str]:
    """Every setting of one settings dataclass (not its nested sections) against its range and choices."""
    p = []
    for f in fields(obj):
        meta = setting_meta(f)
        if meta is not None:
            p += value_problems(meta, getattr(obj, f.name), f"{prefix}{meta['label']}")
    return p


_TRAIN = TrainingArgs()
_SAMPLE = GenerationSettings()


@dataclass
class TeacherSpec:
    """Which LLM writes the data. The API key is deliberately not a field: it is read from OPENAI_API_KEY or
    typed into the page and held in memory only, so it can never reach the database, events or exports."""

    backend: str = setting(
        "local", label="Backend", group="Teacher", standing="core", choices=TEACHER_BACKENDS, widget="radio",
        cli="--teacher",
        help="local: a transformers model on this machine (default: the embedded SmolLM2-135M). openai: any "
             "OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp server, Ollama).")
    model: str = setting(
        "embedded:smollm2-135m-instruct", label="Model", group="Teacher", standing="core", cli="--model",
        help="embedded:smollm2-135m-instruct, a local folder or .gguf file, or the server's model name.")
    engine: str = setting(
        "auto", label="Local engine", group="Teacher", choices=LOCAL_ENGINES, cli="--engine",
        before="transformers",
        choice_labels={"auto": "auto: llama.cpp when installed", "transformers": "transformers",
                       "llama.cpp": "llama.cpp"},
        help="How the local backend runs its model. auto: llama.cpp when it is installed and the model is a GGUF "
             "file, else transformers (the run records which). transformers: always installed, any model folder "
             "or GGUF. llama.cpp: GGUF files only; loads in 0.25 s (transformers: 2.6 s from its unpacked copy, 26 s the "
             "first time), writes samples 1.1–1.2× and reads labels ~4× as fast on a 2-core CPU "
             "(docs/benchmarks.md); needs the optional llama-cpp-python package "
             "(`make llama`, which `make install` runs).")
    gguf_weights: str = setting(
        "auto", label="GGUF weights (llama.cpp)", group="Teacher", choices=GGUF_WEIGHTS, before="file",
        choice_labels={"auto": "auto: F16 copy of a small Q4_1/Q5_1 file", "file": "as the file stores them",
                       "f16": "F16 copy"},
        help="Which weights the llama.cpp engine runs a GGUF with. f16: a copy in 16-bit floats, written once into "
             "the data folder's models/ (270 MB for the embedded teacher). llama.cpp reads prompts of Q4_1 and Q5_1 "
             "weights without its batched kernels: from the F16 copy the embedded teacher read prompts ~2× as fast "
             "and a default round's teacher steps took less time on a 2-core CPU (docs/benchmarks.md, *GGUF "
             "weights*). auto: the F16 copy for a Q4_1 or Q5_1 file of at most 512 MB, else the file's own. The "
             "run records what auto chose.")
    parallel_sequences: int = setting(
        4, label="Replies decoded together (llama.cpp)", group="Teacher", lo=1, hi=32, before=1,
        help="The llama.cpp engine decodes this many replies in one batch, each sampled on its own, a finished one "
             "replaced by the next prompt at once. From the embedded teacher's F16 copy, 4 replies together decode "
             "~2× the tokens/s of one on a 2-core CPU; more cores may use more (docs/benchmarks.md, *Replies "
             "decoded together*). 1 = one reply at a time.")
    base_url: str = setting(
        "", label="Base URL (OpenAI-compatible)", group="Teacher", standing="core", cli="--base-url",
        placeholder="https://api.openai.com/v1",
        help="For the openai backend: the server's /v1 URL. Empty = the OpenAI API.")
    max_new_tokens: int = setting(
        _SAMPLE.max_new_tokens, label="Max new tokens", group="Teacher", lo=1, hi=4096,
        help="Tokens per teacher reply at most: a generated sample is one line of about this length.")
    temperature: float = setting(
        _SAMPLE.temperature, label="Sampling temperature", group="Teacher", lo=0.0, hi=2.0, step=0.05,
        help="The teacher's sampling temperature: higher gives more varied samples; 0 is greedy, which makes small "
             "models repeat themselves.")
    top_p: float = setting(
        _SAMPLE.top_p, label="top_p", group="Teacher", lo=0.01, hi=1.0, step=0.01,
        help="Nucleus sampling: the teacher samples from the most likely tokens that together hold this much "
             "probability.")
    repetition_penalty: float = setting(
        _SAMPLE.repetition_penalty, label="Repetition penalty", group="Teacher", lo=0.1, hi=5.0, step=0.05,
        help="Above 1 discourages the teacher from repeating itself. Servers ignore it unless they accept it "
             "(vLLM, TGI and llama.cpp do; the OpenAI API does not).")
    batch_size: int = setting(
        _SAMPLE.batch_size, label="Teacher batch size", group="Teacher", lo=1, hi=1024,
        help="Prompts per forward pass of a local teacher on transformers. The llama.cpp engine takes a step's "
             "prompts in one call and decodes *Replies decoded together* of them at a time.")
    samples_per_prompt: int = setting(
        1, label="Samples per prompt (llama.cpp)", group="Teacher", lo=1, hi=16, before=1,
        help="A teacher on the llama.cpp engine continues each prompt for this many lines, one sample per line, "
             "so the prompt of seeds is read once for all of them (one-line tasks; other engines and servers write "
             "one sample per prompt).")
    prompts_per_draw: int = setting(
        1, label="Prompts per draw", group="Teacher", lo=1, hi=64, before=1,
        help="This many prompts of a label share one draw of seeds and feedback examples (each still sampled on "
             "its own), and run one after the other: the llama.cpp engine, or a server that caches prompt "
             "prefixes (vLLM, llama-server), then reads the shared prompt once for all of them. 1 = every prompt "
             "draws its own. 4 generates in about 0.74× the time on llama.cpp but, with the embedded teacher, "
             "gave a weaker student on every task measured (docs/benchmarks.md, *Prompts per draw*).")
    max_concurrency: int = setting(
        4, label="Concurrent requests (server)", group="Teacher", lo=1, hi=256,
        help="For the openai backend: requests in flight at once, for generating and for reading labels back. "
             "Match the server's parallelism (vLLM: dozens; llama-server: its -np slots).")
    timeout_s: float = setting(
        60.0, label="Request timeout (s)", group="Teacher", lo=1.0, hi=3600.0,
        help="For the openai backend: seconds to wait for one reply before it is retried.")
    price_in_per_m: float = setting(
        0.0, label="$ per 1M prompt tokens", group="Teacher", lo=0.0, hi=1000.0,
        help="The server's price for prompt tokens, to estimate the cost and enforce the budget cap.")
    price_out_per_m: float = setting(
        0.0, label="$ per 1M completion tokens", group="Teacher", lo=0.0, hi=1000.0,
        help="The server's price for completion tokens, to estimate the cost and enforce the budget cap.")
    budget_usd: float = setting(
        0.0, label="Budget cap ($, 0 = none)", group="Teacher", lo=0.0, hi=100_000.0,
        help="Stop the run cleanly before the teacher's estimated cost exceeds this (needs prices; 0 = no cap).")

    def problems(self) -> list[str]:
        p = field_problems(self, "Teacher: ")
        if not self.model.strip():
            p.append("Name the teacher model.")
        if self.backend == "openai" and self.base_url and not self.base_url.startswith(("http://", "https://")):
            p.append("The teacher's base URL must start with http:// or https://.")
        return p

    def generation_settings(self, seed: int = 0) -> GenerationSettings:
        """How the teacher samples in a round: these settings, with that round's seed."""
        return GenerationSettings(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                  repetition_penalty=self.repetition_penalty, seed=seed, batch_size=self.batch_size)


@dataclass
class StudentSpec:
    """Which small model is distilled into, and how it is trained each round (`training_args`)."""

    model: str = setting(
        "embedded:all-minilm-l6-v2", label="Student model", group="Student", cli="--student-model",
        help="embedded:all-minilm-l6-v2 or a local encoder folder.")
    epochs: int = setting(
        _TRAIN.epochs, label="Epochs", group="Student", lo=1, hi=100, cli="--epochs",
        help="Passes over the training set each round.")
    min_steps: int = setting(
        _TRAIN.min_steps, label="Min steps", group="Student", lo=0, hi=100_000, cli="--min-steps",
        help="Train at least this many steps each round, so mid-loop students converge (their energy is flat "
             "otherwise, and the feedback band is random).")
    max_steps: int = setting(
        _TRAIN.max_steps, label="Max steps (0 = none)", group="Student", lo=0, hi=1_000_000,
        help="At most this many optimizer steps per round (0 = no cap): keeps a round's time bounded on a CPU.")
    learning_rate: float = setting(
        _TRAIN.learning_rate, label="Learning rate", group="Student", lo=1e-7, hi=1.0, fmt="%.1e", step=1e-5,
        help="AdamW's peak learning rate (10% warm-up, then linear decay).")
    batch_size: int = setting(
        _TRAIN.batch_size, label="Student batch size", group="Student", lo=1, hi=1024,
        help="Training examples per optimizer step.")
    max_length: int = setting(
        _TRAIN.max_length, label="Max length (tokens)", group="Student", lo=8, hi=4096,
        help="Tokens per input the student reads; longer inputs are truncated.")
    loss: str = setting(
        _TRAIN.loss, label="Loss", group="Student", choices=LOSSES, cli="--loss",
        help="sce: symmetric cross-entropy, robust to noisy labels (paper: alpha 0.1, beta 1). ce: plain "
             "cross-entropy.")
    sce_alpha: float = setting(
        _TRAIN.sce_alpha, label="SCE alpha", group="Student", lo=0.0, hi=10.0, step=0.05,
        help="The weight of cross-entropy in the SCE loss (paper: 0.1).")
    sce_beta: float = setting(
        _TRAIN.sce_beta, label="SCE beta", group="Student", lo=0.0, hi=10.0, step=0.05,
        help="The weight of reverse cross-entropy in the SCE loss (paper: 1).")
    precision: str = setting(
        _TRAIN.precision, label="Training precision", group="Student", choices=PRECISIONS, before="fp32",
        help="auto: bf16 mixed precision where the processor computes bf16 natively (AVX512-BF16 or AMX CPUs, "
             "recent GPUs), else fp32. The weights and the exported student stay fp32 either way; bf16 trains "
             "MiniLM about 1.7× faster on a 2-core AVX512-BF16 CPU (docs/benchmarks.md).")
    warm_start: bool = setting(
        True, label="Warm-start each round", group="Student",
        help="Each round's student continues from the previous round's weights instead of starting again from the "
             "pretrained model.")
    label_smoothing: float = setting(
        _TRAIN.label_smoothing, label="Label smoothing", group="Student", standing="experimental", lo=0.0, hi=0.9,
        step=0.05, before=0.0,
        help="Share of each one-hot label spread over all labels (0 = none): a wrong generated label pulls the "
             "student less.")
    soft_label_weight: float = setting(
        _TRAIN.soft_label_weight, label="Soft-label weight", group="Student", lo=0.0, hi=1.0, step=0.1, before=0.0,
        help="Classification with a local teacher: after generating, the teacher reads each sample back as a "
             "few-shot classifier (calibrated), and the student learns (1 − w)·the label it was asked to write + "
             "w·what the teacher believes. 1 (default) = what the teacher believes only; 0 = the given labels only. "
             "A small teacher often writes a text that does not fit the label it was asked for (docs/benchmarks.md: "
             "+25 points on TREC at 256 samples).")
    soft_label_calibration: str = setting(
        "batch", label="Soft-label calibration", group="Student", choices=SOFT_LABEL_CALIBRATIONS,
        before="contextual",
        help="How the teacher's read-back is debiased. contextual: divide out what it says for empty inputs. batch: "
             "rescale each label so that a round's samples together carry the labels the teacher was asked to write "
             "(docs/benchmarks.md: its bias on real texts differs from its bias on empty ones).")
    final_fresh: bool = setting(
        False, label="Fresh final student", group="Student", standing="experimental", before=False,
        help="Train the final student (last round, retrain) from the pretrained model instead of continuing the "
             "previous round's: mid-loop students are trained to convergence for their energy, and carry that fit "
             "of the earlier rounds' noisy labels along.")
    average_rounds: str = setting(
        "auto", label="Average the rounds", group="Student", choices=AVERAGE_ROUNDS, before="off",
        choice_labels={"auto": f"auto: on from {AVERAGE_ROUNDS_FROM} samples a round", "on": "on", "off": "off"},
        help="The last round's student is the weight average of every round's student whose checkpoint is kept "
             "(each warm-started from the one before, so they lie on one fine-tuning path): the rounds' fits of the "
             "teacher's noisy labels average out (docs/benchmarks.md, *Averaging the rounds' students*). Needs warm "
             f"starts. auto: on when each round writes at least {AVERAGE_ROUNDS_FROM} samples; at 2,048 samples "
             "(410–512 a round) it lifted the last round's student on 8 of 9 cells measured, +3.9 points on "
             "average, while at 256 (64 a round), where round 1 trains on ~60 rows, it cost 1.4.")
    final_epochs: int = setting(
        0, label="Final epochs", group="Student", lo=0, hi=100, before=0,
        help="Epochs for the final student (last round, retrain; 0 = the same as every round). With early "
             "stopping, the most it may train.")
    early_stopping: bool = setting(
        False, label="Early stopping", group="Student", standing="experimental", before=False,
        help="Score the final student on the task's evaluation rows after every epoch and keep the best epoch: "
             "the one clean signal against memorising the teacher's label noise. Its metric on those rows is then "
             "optimistic (they chose the epoch); the Runs page says so.")

    def training_args(self, seed: int = 0, warm_start: bool = False, final: bool = False) -> TrainingArgs:
        """The TrainingArgs a round trains with. `final` = the run's last training (last round or retrain), where
        final_epochs, final_fresh and early_stopping apply."""
        return TrainingArgs(
            epochs=(self.final_epochs or self.epochs) if final else self.epochs, min_steps=self.min_steps,
            max_steps=self.max_steps, learning_rate=self.learning_rate, batch_size=self.batch_size,
            max_length=self.max_length, loss=self.loss, sce_alpha=self.sce_alpha, sce_beta=self.sce_beta, seed=seed,
            warm_start=warm_start and not (final and self.final_fresh), label_smoothing=self.label_smoothing,
            soft_label_weight=self.soft_label_weight, early_stopping=final and self.early_stopping,
            precision=self.precision,
        )

    def problems(self) -> list[str]:
        p = field_problems(self, "Student: ")
        if not self.model.strip():
            p.insert(0, "Name the student model.")
        return p


@dataclass
class LabelerSpec:
    """Who reads the generated texts back as a few-shot classifier for the student's soft labels
    (classification, soft-label weight > 0). The generating teacher by default; a run may generate with a fast
    teacher and read labels with a better one. `models` holds references `LabelerRef` parses."""

    models: list[str] = setting(
        factory=list, label="Labelers, one per line", group="Labels", cli="--labeler", placeholder="teacher",
        before=[],
        help="Who reads each generated text back for the soft labels, one per line: teacher (the model that "
             "generates), seeds (the student model trained on your seeds alone), a local model (embedded:gemma3-270m "
             "after `make gemma`, a folder, a .gguf file), or an OpenAI-compatible server as openai:MODEL@BASE_URL "
             "(openai:MODEL alone = the OpenAI API; its labels come from the server's log-probabilities). "
             "Empty = the teacher.")
    pick: str = setting(
        "first", label="Pick the labeler", group="Labels", choices=LABELER_PICKS, cli="--pick-labeler",
        before="first",
        help="With several labelers. first: the first reads. ensemble: all read and their calibrated probabilities "
             "are averaged. choose: before round 1 each labeler and the ensemble classify your evaluation rows "
             "few-shot, and the most accurate labels the run (the Runs page shows the table).")
    votes: int = setting(
        0, label="Label votes", group="Labels", lo=0, hi=20, cli="--label-votes", before=0,
        help="For a server that gives no log-probabilities: sample its answer this many times per text and use the "
             "vote shares as soft labels (0 = off: train on the labels it was asked to write). Costs that many "
             "requests per text.")

    def problems(self) -> list[str]:
        p = field_problems(self)
        for ref in self.models:
            p += LabelerRef.parse(ref).problems()
        if self.pick in ("ensemble", "choose") and len(self.models) < 2:
            p.append(f"Picking the labeler by '{self.pick}' needs at least two candidate labelers.")
        return p


@dataclass
class GoldSettings:
    """One run's GOLD loop. Defaults follow the paper and its official code where they apply (energy T 1,
    the 50th–80th percentile band, 3 feedback examples, feedback on every second prompt, SCE loss); the feedback
    strategy is coverage, which chooses among the band's share by where the samples lie and measured above the
    paper's random pick from the band (docs/benchmarks.md)."""

    mode: str = setting(
        "gold", label="Mode", group="GOLD loop", standing="core", choices=MODES, widget="radio",
        help="gold: feed high-energy (out-of-distribution) samples back to the teacher and filter noise. baseline: "
             "the same budget, plain generation from the seeds (no feedback, no noise filter).")
    rounds: int = setting(
        4, label="Rounds", group="GOLD loop", standing="core", lo=1, hi=100, cli="--rounds",
        help="How many generate → train → probe → score → select cycles.")
    samples_per_round: int = setting(
        64, label="Samples per round", group="GOLD loop", standing="core", lo=1, hi=100_000, cli="--per-round",
        help="Teacher samples asked for per round (split evenly across labels).")
    probe_size: int = setting(
        16, label="Probe size", group="GOLD loop", lo=0, hi=100_000, cli="--probe",
        help="Extra samples per round, asked for toward other styles and perspectives; the student scores them and "
             "the feedback band is chosen among all of the round's samples.")
    energy_temperature: float = setting(
        1.0, label="Energy temperature T", group="GOLD loop", lo=0.01, hi=100.0, step=0.1,
        help="T in E(x) = -T·logsumexp(f(x)/T) (paper: 1).")
    band_lo: float = setting(
        50.0, label="Band low percentile", group="GOLD loop", lo=0.0, hi=100.0, step=5.0,
        help="Samples between the band's two energy percentiles become the next round's in-context examples "
             "(paper: 50–80); this is the lower one.")
    band_hi: float = setting(
        80.0, label="Band high percentile", group="GOLD loop", lo=0.0, hi=100.0, step=5.0,
        help="The band's upper energy percentile (paper: 80): samples above it are flagged as noise.")
    feedback_count: int = setting(
        3, label="Feedback examples per prompt", group="GOLD loop", lo=0, hi=50,
        help="Feedback examples placed in each prompt that gets feedback (paper: 3).")
    feedback_rate: float = setting(
        0.5, label="Feedback rate", group="GOLD loop", lo=0.0, hi=1.0, step=0.05,
        help="Share of prompts that get feedback examples (official code: every second batch, 0.5).")
    feedback: str = setting(
        "coverage", label="Feedback strategy", group="GOLD loop", choices=FEEDBACK_STRATEGIES,
        before="energy_band",
        choice_labels={"coverage": "coverage", "energy_band": "energy_band (the paper's)",
                       "real_errors": "real_errors (experimental)", "student_loss": "student_loss (experimental)"},
        help="What goes back to the teacher as the next round's in-context examples. coverage: per label as many "
             "of the round's samples as the energy band holds, those furthest from the seeds, the evaluation rows' "
             "text and each other in the map's embedding space. energy_band: the round's samples between the "
             "band's percentiles of the student's energy, drawn at random. real_errors: the task's evaluation rows "
             "the student gets wrong (half of them steer, the other half measure; no probes). student_loss: the "
             "round's samples in the band of the student's loss on its soft label.")
    noise: str = setting(
        "drop", label="Noise", group="GOLD loop", choices=NOISE_STRATEGIES,
        choice_labels={"drop": "drop: out of training", "disagreement": "disagreement (experimental)",
                       "relabel": "relabel (experimental)", "keep": "keep: no noise filter"},
        help="What happens to samples above the band's upper percentile. drop: they are flagged as noise and stay "
             "out of training (shown, restorable). disagreement (experimental, classification): the same, ranked by "
             "how far the student's belief is from the sample's training target (KL) instead of by energy. relabel "
             "(experimental, classification): flagged by energy, they train under the label the student predicts for "
             "them (a vetoed sample still stays out). keep: nothing is flagged.")
    feedback_needs_agreement: bool = setting(
        True, label="Only agreed feedback", group="GOLD loop",
        help="Only samples whose teacher label the student predicts too may become feedback: keeps mislabeled "
             "samples from being fed back (the best detector of mislabeled samples measured, docs/architecture.md).")
    steer_labels: bool = setting(
        False, label="Steer label shares", group="GOLD loop", standing="experimental", before=False,
        help="GOLD, classification: split each round's samples across labels by how the round's student reads "
             "each label's evaluation rows (Steer label shares by), instead of evenly.")
    steer_labels_by: str = setting(
        "energy", label="Steer label shares by", group="GOLD loop", standing="experimental", choices=STEER_SIGNALS,
        before="energy",
        help="What sets the label shares when Steer label shares is on. energy: the student's mean energy on each "
             "label's evaluation rows (higher = less covered → more samples). errors: the student's error rate on "
             "each label's steering rows (half of the evaluation rows steer, the other half measure).")
    train_on_probes: bool = setting(
        False, label="Train on probes too", group="GOLD loop", standing="experimental", before=False,
        help="GOLD: probes (the samples pushed toward other styles) join training from the next round, read back "
             "by the teacher when soft labels are on, and the last round spends its probe budget on samples, since "
             "no round follows to use its probes. GOLD then trains on as many teacher samples as plain generation "
             "at the same budget.")
    keep_checkpoints: str = setting(
        "all", label="Keep checkpoints", group="Storage", choices=KEEP_CHECKPOINTS, before="all",
        choice_labels={"all": "every round's", "best_and_last": "best and last round's"},
        help="Which rounds' students stay on disk (about 90 MB each). all: every round's, so any round can be "
             "exported or mapped in the student's space. best_and_last: after each round, only the best round's by "
             "the evaluation metric (what Export picks) and the last one's (what the next round starts from); the "
             "others' metrics and training sets are kept.")
    seed: int = setting(
        0, label="Random seed", group="GOLD loop", lo=0, hi=2**31 - 1, cli="--seed",
        help="Random seed for prompts, sampling and training: the same seed repeats a run.")
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    student: StudentSpec = field(default_factory=StudentSpec)
    labeler: LabelerSpec = field(default_factory=LabelerSpec)

    def problems(self) -> list[str]:
        p = field_problems(self)
        if self.band_lo >= self.band_hi:
            p.append("The feedback band needs 0 ≤ lo < hi ≤ 100 (percentiles of energy).")
        # noise="relabel" flags samples as noise and relabels them, so relabeling always has flags to act on.
        return p + self.teacher.problems() + self.student.problems() + self.labeler.problems()

    def averages_rounds(self) -> bool:
        """Whether the loop's last round saves the average of the rounds' students: `student.average_rounds`, with
        auto resolved by the round's size (AVERAGE_ROUNDS_FROM)."""
        choice = self.student.average_rounds
        return choice == "on" or (choice == "auto" and self.samples_per_round >= AVERAGE_ROUNDS_FROM)

    def validate(self) -> "GoldSettings":
        problems = self.problems()
        if problems:
            raise SpecError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GoldSettings":
        """Settings as stored with a run, whenever it was stored: keys of settings that were replaced are read as
        their replacement (`upgrade_settings_dict`), unknown keys are ignored, and a missing key takes the value
        runs got before that setting existed (its `before`), else its default."""
        d = upgrade_settings_dict(d)
        teacher = _stored(TeacherSpec, d.pop("teacher", {}) or {})
        student = _stored(StudentSpec, d.pop("student", {}) or {})
        if "labeler" in d:
            labeler = _stored(LabelerSpec, d.pop("labeler") or {})
            labeler.models = [str(m) for m in labeler.models or []]
        else:  # before labelers existed only a local teacher read labels back; a remote one gave none
            labeler = LabelerSpec(models=["none"] if teacher.backend == "openai" else [])
        d = {k: v for k, v in d.items() if k not in SECTIONS}
        return _stored(cls, d, teacher=teacher, student=student, labeler=labeler)


SECTIONS = ("teacher", "student", "labeler")  # GoldSettings' nested settings, by field name

# Keys a stored run may hold for settings that were replaced, with the value they had when left out:
#   noise_filter / relabel_noise  two booleans, now the `noise` strategy (False/any = keep, True/False = drop,
#                                 True/True = relabel);
#   map_after_round               drawing the round's map, now a hook of the loop (not a setting): ignored.
REPLACED: dict[str, Any] = {"noise_filter": True, "relabel_noise": False, "map_after_round": True}
# Stored values of settings whose values were renamed: student.average_rounds was a yes/no before it had `auto`.
RENAMED_VALUES: dict[tuple[str, str], dict[Any, str]] = {("student", "average_rounds"): {True: "on", False: "off"}}


def noise_from_flags(noise_filter: bool, relabel_noise: bool) -> str:
    """The `noise` strategy the two booleans it replaced meant."""
    if not noise_filter:
        return "keep"
    return "relabel" if relabel_noise else "drop"


def upgrade_settings_dict(d: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of stored settings with replaced keys (REPLACED) and renamed values (RENAMED_VALUES) read as today's
    settings; a `noise` key wins over the booleans it replaced."""
    d = dict(d or {})
    for (section, key), renamed in RENAMED_VALUES.items():
        stored = d.get(section)
        if isinstance(stored, dict) and isinstance(stored.get(key), bool):
            d[section] = {**stored, key: renamed[stored[key]]}
    flags = {k: d.pop(k) for k in list(REPLACED) if k in d}
    if "noise" not in d and ("noise_filter" in flags or "relabel_noise" in flags):
        d["noise"] = noise_from_flags(bool(flags.get("noise_filter", REPLACED["noise_filter"])),
                                      bool(flags.get("relabel_noise", REPLACED["relabel_noise"])))
    return d


def before_values(cls) -> dict[str, Any]:
    """The values a run stored before these settings existed gets, for the fields of `cls` that have one."""
    out = {}
    for f in fields(cls):
        meta = setting_meta(f)
        if meta is not None and meta["before"] is not MISSING:
            out[f.name] = copy.deepcopy(meta["before"])
    return out


def _stored(cls, d: dict[str, Any], **sections: Any):
    names = {f.name for f in fields(cls)}
    return cls(**{**before_values(cls), **{k: v for k, v in d.items() if k in names}, **sections})

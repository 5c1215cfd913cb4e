"""The teacher LLM used directly as the task's model, few-shot: "the LLM" the distilled student is compared with.

Classification scores the log-likelihood of each label after a few-shot prompt of the seeds (no sampling), the
paper's protocol. Three read-outs:
  raw         argmax of the label log-likelihoods;
  calibrated  contextual calibration (Zhao et al., 2021): the label distribution the model gives content-free
              inputs ("N/A", "", "[MASK]") is divided out, which removes the prior a small model has for one
              label word (docs/architecture.md: raw 52% vs calibrated 66% on SST-2 for the embedded 135M teacher).
  batch       batch calibration (Zhou et al., 2024): the label distribution the model gives the rows themselves
              is rescaled to a uniform one (`match_prior`); TREC: 54% against 47% contextually calibrated.
Seq2seq answers greedily after the same kind of prompt and is read by exact match.

The prompt is the seeds as "Field: value" blocks under the instruction, identical for every row, so
`LocalTeacher.label_loglik` encodes it once and reuses its key/value cache.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gold.evaluation import task_metric
from gold.prompts import PromptOptions, field_title, one_line
from gold.specs import Example, TaskSpec
from gold.teachers.base import GenerationSettings, LabelScorer

CONTENT_FREE = ("N/A", "", "[MASK]")


@dataclass
class FewShotResult:
    """Outputs of the teacher on labeled rows, with the metrics and the speed."""

    outputs: dict[str, list[str]]  # read-out ("raw", "calibrated" or "greedy") -> one output per row
    metrics: dict[str, float | None]
    seconds: float
    rows: int
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def examples_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def _block(task: TaskSpec, inputs: dict[str, str], options: PromptOptions) -> str:
    return "".join(f"{field_title(task, f, options)}: {one_line(inputs.get(f, ''))}\n" for f in task.input_fields)


def fewshot_prefix(task: TaskSpec, seed: int = 0, options: PromptOptions | None = None) -> str:
    """Instruction, then every seed as an input block followed by its output line; seeds shuffled with `seed`
    so no label sits last by construction (recency bias)."""
    options = options or PromptOptions()
    out_title = field_title(task, task.output_name, options)
    seeds = list(task.seeds)
    random.Random(seed).shuffle(seeds)
    parts = [f"{task.instruction.strip()}\n\n"]
    for ex in seeds:
        parts.append(_block(task, ex.inputs, options) + f"{out_title}: {one_line(ex.output)}\n\n")
    return "".join(parts)


def row_prompt(task: TaskSpec, inputs: dict[str, str], options: PromptOptions | None = None) -> str:
    options = options or PromptOptions()
    return _block(task, inputs, options) + f"{field_title(task, task.output_name, options)}:"


@dataclass
class LabelProbs:
    """The teacher's label distribution for each row: raw (softmax of the label log-likelihoods) and
    contextually calibrated (divided by the content-free prior, renormalised)."""

    raw: np.ndarray  # [N, K], rows sum to 1
    calibrated: np.ndarray  # [N, K], rows sum to 1
    prior: np.ndarray  # [K]: what the teacher says with no content
    seconds: float


def label_probs(teacher, task: TaskSpec, inputs: Sequence[dict[str, str]], seed: int = 0,
                batch_size: int = 16, prior: np.ndarray | None = None) -> LabelProbs:
    """Few-shot label probabilities of a teacher that scores continuations (`label_loglik`), after a prompt of
    the seeds whose key-value cache is computed once. Used to read the teacher as a classifier (`classify`) and
    to give the student soft targets for generated samples (the knowledge-distillation half of GOLD).
    `prior`: the content-free prior of an earlier call with the same task and seed (a caller that scores in
    chunks computes it once)."""
    if task.kind != "classification":
        raise ValueError("Label probabilities are for classification tasks; use answer() for seq2seq.")
    if not isinstance(teacher, LabelScorer):
        raise ValueError("This teacher cannot score labels: it has no label_loglik (gold.teachers.base.LabelScorer).")
    prefix = fewshot_prefix(task, seed)
    candidates = [f" {label}" for label in task.labels]
    started = time.perf_counter()
    ll = teacher.label_loglik([row_prompt(task, x) for x in inputs], candidates, prefix=prefix, batch_size=batch_size)
    if prior is None:
        free_inputs = [{f: text for f in task.input_fields} for text in CONTENT_FREE]
        free = teacher.label_loglik([row_prompt(task, x) for x in free_inputs], candidates, prefix=prefix,
                                    batch_size=batch_size)
        prior = _softmax(free).mean(axis=0)  # the label distribution with no content
    raw = _softmax(ll) if len(inputs) else np.zeros((0, len(candidates)))
    calibrated = raw / prior
    calibrated = calibrated / calibrated.sum(axis=1, keepdims=True) if len(inputs) else calibrated
    return LabelProbs(raw, calibrated, prior, time.perf_counter() - started)


def match_prior(probs: np.ndarray, target: np.ndarray, iters: int = 200, tol: float = 1e-7) -> np.ndarray:
    """Batch calibration by prior matching: rescale each label's probability (one weight per label, rows
    renormalised) until the batch's mean distribution equals `target`.

    Why: contextual calibration divides out what the teacher says for content-free inputs, but a small model's
    bias on real inputs is different: on TREC the embedded teacher, contextually calibrated, still calls most
    questions "location". When the label mix of a batch is known (GOLD asked the teacher for each generated
    sample's label, so the mix of asked labels is known; a test batch is assumed balanced) the bias can be read
    off the batch itself (Zhou et al., 2024, "Batch Calibration"; the label-shift EM of Saerens et al., 2002).
    The weights are found by iterative proportional fitting; labels the target gives 0 keep probability 0."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or not len(p):
        return p.copy()
    t = np.asarray(target, dtype=np.float64)
    if t.shape != (p.shape[1],) or (t < 0).any() or t.sum() <= 0:
        raise ValueError(f"The target must be {p.shape[1]} non-negative numbers with a positive sum; got {target}.")
    t = t / t.sum()
    p = np.clip(p, 1e-12, None)
    w = np.ones(p.shape[1])
    for _ in range(iters):
        q = p * w
        q /= q.sum(axis=1, keepdims=True)
        mean = q.mean(axis=0)
        if np.abs(mean - t).max() < tol:
            break
        w *= np.where(mean > 0, t / mean, 0.0)
    q = p * w
    return q / q.sum(axis=1, keepdims=True)


def label_mix(task: TaskSpec, outputs: Sequence[str | None], smoothing: float = 1.0) -> np.ndarray:
    """The share of each label among `outputs` (the labels the teacher was asked for), add-`smoothing`
    so that a label asked for rarely keeps some mass."""
    counts = np.full(len(task.labels), float(smoothing))
    index = {label: i for i, label in enumerate(task.labels)}
    for out in outputs:
        if out in index:
            counts[index[out]] += 1
    return counts / counts.sum()


def classify(teacher, task: TaskSpec, rows: Sequence[Example], seed: int = 0, batch_size: int = 16) -> FewShotResult:
    """Few-shot predictions of a teacher that scores continuations (`label_loglik`): raw, contextually
    calibrated, and batch-calibrated (the rows, together, given every label equally often: `match_prior`; it
    reads the batch, never its labels)."""
    if task.kind != "classification":
        raise ValueError("classify() is for classification tasks; use answer() for seq2seq.")
    p = label_probs(teacher, task, [ex.inputs for ex in rows], seed=seed, batch_size=batch_size)
    labels = list(task.labels)
    balanced = match_prior(p.calibrated, np.full(len(labels), 1 / len(labels)))
    outputs = {"raw": [labels[i] for i in p.raw.argmax(axis=1)],
               "calibrated": [labels[i] for i in p.calibrated.argmax(axis=1)],
               "batch_calibrated": [labels[i] for i in balanced.argmax(axis=1)]}
    metrics = {k: task_metric(task, v, rows) for k, v in outputs.items()}
    return FewShotResult(outputs, metrics, p.seconds, len(rows),
                         extra={"content_free_prior": dict(zip(labels, np.round(p.prior, 4).tolist()))})


def answer(teacher, task: TaskSpec, rows: Sequence[Example], seed: int = 0, batch_size: int = 8,
           max_new_tokens: int = 16) -> FewShotResult:
    """Greedy few-shot answers (seq2seq), read up to the newline, scored by exact match."""
    prefix = fewshot_prefix(task, seed)
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0, repetition_penalty=1.0,
                                  seed=seed, stop=("\n",), batch_size=batch_size)
    started = time.perf_counter()
    completions = teacher.generate([prefix + row_prompt(task, ex.inputs) for ex in rows], settings)
    seconds = time.perf_counter() - started
    outputs = [c.text.strip() for c in completions]
    return FewShotResult({"greedy": outputs}, {"greedy": task_metric(task, outputs, rows)}, seconds, len(rows))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


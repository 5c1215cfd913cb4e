"""The classification student: a small encoder (all-MiniLM-L6-v2 by default) with a linear head.

Why this shape: the student must train in seconds on 2 CPU cores every round (GOLD retrains it each round),
score thousands of samples for energy, and export as a plain Hugging Face folder a user loads with one
`transformers.pipeline` call. So: fp32 weights (trained in bf16 mixed precision where the CPU has bf16
arithmetic, `training.autocast`), dynamic padding (SST-2 texts average 24 tokens: a fixed width wastes
most of the compute), fused AdamW, no Trainer (its overhead and logging are not worth it at 60–500 steps).

The student knows nothing of tasks or the store: it takes strings and label names.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from gold.energy import classification_loss, energy_from_logits
from gold.models import DEFAULT_STUDENT, ModelNotFound, embedded_encoder, force_offline, resolve
from gold.students import training
from gold.students.base import Prediction, ProgressFn, TrainExample, TrainingArgs, TrainReport

SIDECAR = "gold_student.json"  # our own notes beside the HF files; transformers ignores it
INFER_BATCH = 64
DEFAULT_MAX_LENGTH = 128


@dataclass
class Scores:
    """One forward pass over many texts, for re-scoring a round's samples and drawing its map at once."""

    logits: np.ndarray  # [N, K]
    probs: np.ndarray  # [N, K]
    energy: np.ndarray  # [N]
    embeddings: np.ndarray | None  # [N, H], L2-normalised; None unless asked for


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence the load report and progress bar ("classifier.weight MISSING" is expected for a fresh head)
    without changing the process-wide settings for anyone else."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ClassifierStudent:
    """Encoder + classification head, implementing the `Student` protocol for classification tasks.

    `base` is the folder the weights start from: the embedded MiniLM when None, else any local encoder or
    sequence-classification folder. A non-warm-start `fit` reloads from `base`, so each cold round starts
    from the same pretrained encoder and a freshly (seeded) initialised head.
    """

    kind = "classification"

    def __init__(self, labels: Sequence[str], base: str | Path | None = None, device: str | torch.device | None = None):
        labels = [str(label) for label in labels]
        if len(labels) < 2:
            raise ValueError("A classifier student needs at least 2 labels.")
        if len(set(labels)) != len(labels):
            raise ValueError(f"The labels must be distinct: {labels}.")
        force_offline()
        self.labels = labels
        self.label2id = {label: i for i, label in enumerate(labels)}
        self.base = _base_folder(base)
        self.device = _pick_device(device)
        self.max_length = DEFAULT_MAX_LENGTH
        self.loss_history: list[float] = []  # per step of the last fit, for tests and charts
        from transformers import AutoTokenizer

        with _quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.base))
        self.model = self._fresh_model(seed=0)

    # -- construction ---------------------------------------------------------------------------------------
    def _fresh_model(self, seed: int) -> torch.nn.Module:
        """The base weights with the task's head; a head that is new (or was trained for other labels) is
        initialised under `seed`, so two cold fits with the same seed start identically."""
        from transformers import AutoConfig, AutoModelForSequenceClassification

        base_config = AutoConfig.from_pretrained(str(self.base))
        base_labels = [v for _, v in sorted((int(k), v) for k, v in (getattr(base_config, "id2label", None) or {}).items())]
        is_classifier = any(a.endswith("ForSequenceClassification") for a in (base_config.architectures or []))
        with torch.random.fork_rng(devices=[]), _quiet_transformers():  # seeded head, caller's RNG untouched
            torch.manual_seed(seed)
            model = AutoModelForSequenceClassification.from_pretrained(
                str(self.base),
                num_labels=len(self.labels),
                id2label=dict(enumerate(self.labels)),
                label2id=dict(self.label2id),
                ignore_mismatched_sizes=True,  # a classifier base trained on a different label count
                dtype=torch.float32,
            )
            if is_classifier and base_labels != self.labels and len(base_labels) == len(self.labels):
                # Same count, other names: the loaded head would silently map to the wrong labels.
                _reinit_head(model)
        model.config.problem_type = "single_label_classification"
        return model.to(self.device).eval()

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device | None = None) -> "ClassifierStudent":
        """Restore a student written by `save`, or take any local sequence-classification folder as is."""
        from transformers import AutoConfig

        force_offline()
        folder = Path(folder)
        config = AutoConfig.from_pretrained(str(folder))
        labels = [v for _, v in sorted((int(k), v) for k, v in config.id2label.items())]
        student = cls(labels, base=folder, device=device)
        notes = _read_sidecar(folder)
        student.max_length = int(notes.get("max_length", DEFAULT_MAX_LENGTH))
        # A later cold fit should restart from the pretrained encoder, not from these fine-tuned weights.
        with contextlib.suppress(ModelNotFound):
            if notes.get("base"):
                student.base = _base_folder(notes["base"])
        return student

    # -- training -------------------------------------------------------------------------------------------
    def fit(self, examples: list[TrainExample], args: TrainingArgs, progress: ProgressFn | None = None,
            eval_examples: list[TrainExample] | None = None) -> TrainReport:
        """Fine-tune on `examples`. Steps = max(epochs·⌈n/batch⌉, min_steps), capped by max_steps when > 0.

        Batches are consecutive slices of a fresh seeded permutation each epoch, padded to their own longest
        text (no length sorting: sorted batches are correlated and hurt SGD on tiny sets). `progress` is
        called once per step; raising from it cancels the fit (the weights are then partly trained).
        With `args.early_stopping` and `eval_examples` (labeled rows whose targets are labels), accuracy on
        them is measured after every epoch and the best epoch's weights are the ones kept.
        """
        problems = args.problems()
        if problems:
            raise ValueError(" ".join(problems))
        if not examples:
            raise ValueError("There is nothing to train on: the training set is empty.")
        unknown = sorted({ex.target for ex in examples if ex.target not in self.label2id})
        if unknown:
            raise ValueError(f"Training targets that are not labels of this student: {unknown[:5]} (labels: {self.labels}).")
        judge = [ex for ex in (eval_examples or []) if ex.target in self.label2id] if args.early_stopping else []

        if not (args.warm_start and self.model is not None):
            self.model = self._fresh_model(args.seed)  # the old weights stay usable if this load fails
        self.max_length = args.max_length
        model = self.model
        n = len(examples)
        per_epoch = math.ceil(n / args.batch_size)
        steps = training.plan_steps(n, args)

        encoded = self.tokenizer([ex.text for ex in examples], truncation=True, max_length=args.max_length)["input_ids"]
        targets = self._targets(examples, args.soft_label_weight)
        weights = torch.tensor([float(ex.weight) for ex in examples], dtype=torch.float32)
        use_weights = bool((weights != 1).any())

        precision = training.compute_precision(self.device, args.precision)
        start = time.perf_counter()
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # seeded dropout, and the caller's RNG is left as it was
            torch.manual_seed(args.seed)
            try:
                model.train()
                keeper = self._train_steps(encoded, targets, weights if use_weights else None, args, steps, progress,
                                           judge, precision)
            finally:
                model.eval()
        seconds = time.perf_counter() - start
        tail = self.loss_history[-min(per_epoch, len(self.loss_history)) :]  # about the last epoch: steadier than one batch
        return TrainReport(
            steps=steps,
            examples=n,
            seconds=seconds,
            final_loss=float(np.mean(tail)) if tail else float("nan"),
            examples_per_second=training.steps_examples(n, args.batch_size, steps) / seconds if seconds > 0 else float("inf"),
            best_step=keeper.best_step if keeper else None,
            eval_history=keeper.history if keeper else [],
            precision=precision,
            eval_seconds=keeper.seconds if keeper else 0.0,
        )

    def _targets(self, examples: list[TrainExample], soft_weight: float) -> torch.Tensor:
        """Class indices, or probability rows when some examples carry a teacher's soft labels to mix in."""
        hard = torch.tensor([self.label2id[ex.target] for ex in examples], dtype=torch.long)
        if soft_weight <= 0 or all(ex.soft is None for ex in examples):
            return hard
        k = len(self.labels)
        rows = torch.nn.functional.one_hot(hard, k).float()
        for i, ex in enumerate(examples):
            if ex.soft is None:
                continue
            soft = torch.tensor([float(x) for x in ex.soft], dtype=torch.float32)
            if soft.shape != (k,) or not torch.isfinite(soft).all() or soft.min() < 0 or soft.sum() <= 0:
                raise ValueError(f"Soft labels must be {k} non-negative numbers (one per label); got {ex.soft}.")
            rows[i] = (1 - soft_weight) * rows[i] + soft_weight * soft / soft.sum()
        return rows

    def accuracy(self, examples: Sequence[TrainExample]) -> float:
        """Share of `examples` whose target is the predicted label."""
        if not examples:
            return 0.0
        preds = self.predict([ex.text for ex in examples])
        return sum(p.output == ex.target for p, ex in zip(preds, examples)) / len(examples)

    def _train_steps(
        self,
        encoded: list[list[int]],
        targets: torch.Tensor,
        weights: torch.Tensor | None,
        args: TrainingArgs,
        steps: int,
        progress: ProgressFn | None,
        judge: list[TrainExample],
        precision: str,
    ) -> training.BestWeights | None:
        model = self.model
        opt = training.Optimization(model, args, steps)
        rng = np.random.default_rng(args.seed)
        keeper = training.BestWeights(model, lambda: self.accuracy(judge)) if judge else None
        checkpoints = training.epoch_ends(len(encoded), args.batch_size, steps)
        self.loss_history = []
        threads = training.TorchThreads(self.device)
        try:
            for step, idx in enumerate(training.batches(len(encoded), args.batch_size, steps, rng), start=1):
                threads.adjust()  # as many threads as the cores others leave free (`training.TorchThreads`)
                batch = self._collate([encoded[i] for i in idx])
                with training.autocast(self.device, precision):
                    logits = model(**batch).logits
                loss = classification_loss(
                    logits.float(),
                    targets[idx].to(self.device),
                    args.loss,
                    args.sce_alpha,
                    args.sce_beta,
                    weights[idx].to(self.device) if weights is not None else None,
                    args.label_smoothing,
                )
                loss.backward()
                opt.step()
                value = float(loss.detach())
                self.loss_history.append(value)
                if keeper is not None and step in checkpoints:
                    keeper.offer(step)
                if progress is not None:
                    progress(step / steps, f"step {step}/{steps} · loss {value:.4f}")
        finally:
            threads.restore()
        if keeper is not None:
            keeper.restore()
        return keeper

    # -- inference ------------------------------------------------------------------------------------------
    def score(self, texts: Sequence[str], temperature: float = 1.0, embeddings: bool = False) -> Scores:
        """Logits, probabilities, energy and (optionally) embeddings from one forward pass per batch.

        Texts are run sorted by length so each batch pads little, then put back in the caller's order.
        """
        texts = [str(t) for t in texts]
        k = len(self.labels)
        hidden = self.model.config.hidden_size
        if not texts:
            empty = np.zeros((0, k), dtype=np.float32)
            return Scores(empty, empty.copy(), np.zeros(0, dtype=np.float32), np.zeros((0, hidden), dtype=np.float32) if embeddings else None)
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        logits_out = np.zeros((len(texts), k), dtype=np.float32)
        emb_out = np.zeros((len(texts), hidden), dtype=np.float32) if embeddings else None
        self.model.eval()
        with torch.inference_mode():
            for s in range(0, len(texts), INFER_BATCH):
                idx = order[s : s + INFER_BATCH]
                batch = self._collate([encoded[i] for i in idx])
                out = self.model(**batch, output_hidden_states=embeddings)
                logits_out[idx] = out.logits.float().cpu().numpy()
                if embeddings:
                    emb_out[idx] = training.mean_pool(out.hidden_states[-1], batch["attention_mask"]).cpu().numpy()
        t = torch.from_numpy(logits_out)
        probs = torch.softmax(t, dim=-1).numpy()
        energy = energy_from_logits(t, temperature).numpy()
        return Scores(logits_out, probs, energy, emb_out)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.score(texts).logits

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.predictions(self.score(texts).probs)

    def predictions(self, probs: np.ndarray) -> list[Prediction]:
        """Label, confidence and per-label probabilities from `score(...).probs`, so a caller that needs energy
        and predictions gets both from one forward pass."""
        out = []
        for row in probs:
            best = int(np.argmax(row))
            out.append(Prediction(self.labels[best], float(row[best]), {label: float(p) for label, p in zip(self.labels, row)}))
        return out

    def energy(self, texts: Sequence[str], outputs: list[str] | None = None, temperature: float = 1.0) -> np.ndarray:
        """E(x) = -T·logsumexp(f(x)/T). `outputs` is ignored: a classifier's energy does not depend on the
        label it was given (it is accepted so callers treat every student alike)."""
        return self.score(texts, temperature).energy

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Masked mean of the last hidden state, L2-normalised: the sentence-transformers recipe for MiniLM,
        so an untrained student gives the same map embeddings as the original model."""
        return self.score(texts, embeddings=True).embeddings

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write a plain HF folder (config with id2label/label2id, model.safetensors, tokenizer files) that
        `transformers.pipeline("text-classification", model=folder)` loads. Written beside the target and
        renamed into place, so a crash mid-save never leaves a half-written checkpoint where one was."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.config.id2label = dict(enumerate(self.labels))
        self.model.config.label2id = dict(self.label2id)
        with _quiet_transformers():
            self.model.save_pretrained(str(tmp))  # safetensors is the default
            self.tokenizer.save_pretrained(str(tmp))
        base = DEFAULT_STUDENT if self.base == _embedded_folder() else str(self.base)  # portable across machines
        notes = {"kind": self.kind, "labels": self.labels, "max_length": self.max_length, "base": base}
        (tmp / SIDECAR).write_text(json.dumps(notes, indent=2))
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------------------------
    def _collate(self, ids: list[list[int]]) -> dict[str, torch.Tensor]:
        """Pad a batch to its own longest sequence (dynamic padding)."""
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[row, : len(x)] = 1
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}


def _reinit_head(model: torch.nn.Module) -> None:
    """Re-draw the head's linear layers the way a fresh HF head is drawn (normal(0, initializer_range), bias 0)."""
    std = float(getattr(model.config, "initializer_range", 0.02))
    for name in ("pre_classifier", "classifier"):
        for module in getattr(model, name, torch.nn.Identity()).modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)


def _embedded_folder() -> Path | None:
    try:
        return embedded_encoder().folder
    except ModelNotFound:
        return None


def _base_folder(base: str | Path | None) -> Path:
    """A folder from None (the embedded MiniLM), an `embedded:` name, or a local model folder."""
    if base is None:
        return embedded_encoder().folder
    if isinstance(base, str) and base.startswith("embedded:"):
        return resolve(base).folder
    folder = Path(base).expanduser()
    if not (folder / "config.json").is_file():
        raise ModelNotFound(f"'{base}' is not a local model folder (no config.json there); GOLD Studio never downloads models.")
    return folder


def _read_sidecar(folder: Path) -> dict:
    try:
        return json.loads((folder / SIDECAR).read_text())
    except (OSError, ValueError):
        return {}

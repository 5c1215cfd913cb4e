"""The sequence-to-sequence student: a small causal LM (SmolLM2-135M-Instruct by default) that learns to map
an input text to an output text, e.g. a SVAMP question to its numeric answer.

Why a causal LM and not T5 (the paper's student): the only generative weights shipped offline with GOLD
Studio are the teacher's SmolLM2 GGUF, dequantized here to fp32 so they can be trained. A local T5 folder
(any config with `is_encoder_decoder`) works too, through a deliberately small second branch.

The format is plain completion, which tiny models follow far better than chat prompts (docs/architecture.md):
`"Input: {text}\\nOutput:"` + `" {target}"` + eos. Prompt and target are tokenized separately and
concatenated, so the model trains on exactly the token boundary it sees when it generates after the prompt.
Labels are -100 on the prompt *and* on the padding: the official GOLD code padded labels with the pad id,
which leaks padding into both the loss and the energy (and here pad == eos, so only positions can tell them
apart, never token ids).

The loss is always token-level cross-entropy. GOLD's symmetric CE is defined for a closed label set; its
reverse term over a 49k-token vocabulary with a clamped one-hot target is a near-constant penalty that
barely trains a generator, so `TrainingArgs.loss == "sce"` is accepted (a run's settings default to it) and
trained as CE; `loss_used` records what was actually done.

Like the classifier: fp32, dynamic padding, one AdamW, no Trainer; the optimizer/schedule/batching helpers
are the classifier's, imported rather than copied.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gold import gguf_unpacked
from gold.energy import IGNORE_INDEX, _per_example, sequence_energy, shift_for_causal
from gold.models import DEFAULT_TEACHER, ModelLocation, ModelNotFound, embedded_teacher, force_offline, resolve
from gold.students import training
from gold.students.base import Prediction, ProgressFn, TrainExample, TrainingArgs, TrainReport
from gold.students.classifier import SIDECAR, _pick_device, _quiet_transformers, _read_sidecar

log = logging.getLogger(__name__)

DEFAULT_SEQ2SEQ = DEFAULT_TEACHER  # the embedded SmolLM2 weights, the only offline generative model
DEFAULT_MAX_LENGTH = 128
DEFAULT_MAX_NEW_TOKENS = 16
INFER_BATCH = 16  # [16, ~100, 49152] fp32 logits ≈ 300 MB: enough parallelism, bounded memory


@dataclass
class PromptFormat:
    """How an (input, target) pair becomes text. Saved beside the weights so a loaded student, and anyone
    using the exported folder with plain transformers, prompts it exactly as it was trained."""

    prompt: str = "Input: {text}\nOutput:"
    target: str = " {target}"  # the leading space: the answer follows "Output:" as ordinary text
    stop: str = "\n"  # generation ends at the first newline (or eos)

    def render_prompt(self, text: str) -> str:
        return self.prompt.replace("{text}", str(text))

    def render_target(self, target: str) -> str:
        return self.target.replace("{target}", str(target))


# --- batching (pure functions of token ids, so the masking is testable without a model) -----------------
def collate_train(
    pairs: Sequence[tuple[list[int], list[int]]], pad_id: int, encoder_decoder: bool = False
) -> dict[str, torch.Tensor]:
    """A right-padded training batch from (prompt_ids, target_ids) pairs, padded to its own longest row.

    Causal LM: input = prompt + target; labels = the target ids at the target positions and -100 on the
    prompt and on every pad position. Encoder-decoder: input = prompt, labels = target padded with -100
    (the model builds its decoder inputs from the labels).
    """
    if not pairs:
        raise ValueError("Cannot collate an empty batch.")
    if encoder_decoder:
        inputs = [list(p) for p, _ in pairs]
        targets = [list(t) for _, t in pairs]
        batch = _pad_right(inputs, pad_id)
        labels = torch.full((len(pairs), max(len(t) for t in targets)), IGNORE_INDEX, dtype=torch.long)
        for row, t in enumerate(targets):
            labels[row, : len(t)] = torch.tensor(t, dtype=torch.long)
        batch["labels"] = labels
        return batch
    rows = [list(p) + list(t) for p, t in pairs]
    batch = _pad_right(rows, pad_id)
    labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
    for row, (p, t) in enumerate(pairs):
        labels[row, len(p) : len(p) + len(t)] = torch.tensor(list(t), dtype=torch.long)
    batch["labels"] = labels
    return batch


def collate_left(prompts: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-padded prompts for batched generation: every row's last real token sits at the same position,
    so the first generated token of every row is predicted from its own prompt's end, not from padding."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        if p:
            input_ids[row, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
            mask[row, width - len(p) :] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _pad_right(rows: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, r in enumerate(rows):
        input_ids[row, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[row, : len(r)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _truncate(prompt: list[int], target: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Fit prompt + target into max_length tokens.

    The target keeps at most half the budget and always its last token (eos), so a long answer still
    teaches the model to stop. The prompt keeps its *tail*: the template's "Output:" cue and, in word
    problems, the question itself come last.
    """
    if len(target) > max(1, max_length // 2):
        keep = max(1, max_length // 2)
        target = target[: keep - 1] + target[-1:]
    room = max_length - len(target)
    prompt = prompt[-room:] if room > 0 else []
    return prompt, target


# --- the student ------------------------------------------------------------------------------------------
class Seq2SeqStudent:
    """A causal LM (or a local T5) fine-tuned on (input, output) text pairs; implements the `Student` protocol.

    `base`: None or an `embedded:` name (the SmolLM2 GGUF, dequantized to fp32), a local `.gguf` file, or a
    local model folder. A GGUF base loads from its unpacked copy (gold/gguf_unpacked.py: ~3 s instead of
    ~20 s of de-quantizing, after the first time). A non-warm-start `fit` restarts from `base`; a student whose
    weights are still the base's skips that reload.
    """

    kind = "seq2seq"

    def __init__(
        self,
        base: str | Path | None = None,
        device: str | torch.device | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        prompt_format: PromptFormat | None = None,
    ):
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1.")
        force_offline()
        self.base = _base_location(base)
        self._source = gguf_unpacked.loadable(self.base)  # what transformers loads: a GGUF's unpacked copy
        self.device = _pick_device(device)
        self.max_new_tokens = int(max_new_tokens)
        self.max_length = DEFAULT_MAX_LENGTH
        self.format = prompt_format or PromptFormat()
        self.loss_history: list[float] = []
        self.loss_used = "ce"
        self._stop_ids: list[int] | None = None
        from transformers import AutoConfig, AutoTokenizer

        with _quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(str(self._source.folder), gguf_file=self._source.gguf_file)
            config = AutoConfig.from_pretrained(str(self._source.folder), gguf_file=self._source.gguf_file)
        self.encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
        if self.encoder_decoder and prompt_format is None:
            self.format = PromptFormat(target="{target}")  # T5 decodes the answer on its own: no leading space
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f"The tokenizer of '{self.base.folder}' has no eos token; a generator needs one to stop.")
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.tokenizer.eos_token_id)
        self.model = self._fresh_model()
        self._pristine = True  # the weights are exactly the base's

    # -- construction ---------------------------------------------------------------------------------------
    def _fresh_model(self) -> torch.nn.Module:
        """The base weights in fp32, as a plain (unquantized) model on the student's device.

        A GGUF base whose unpacked copy could not be written loads from the GGUF itself: `GgufConfig(dequantize=True)`
        forces dense weights even where a GGUF matmul kernel is installed (packed weights cannot be trained), and
        `detach_quantizer` leaves an ordinary model that `save_pretrained` writes.
        """
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, GgufConfig

        kwargs: dict = {"dtype": torch.float32}
        if self._source.gguf_file:
            kwargs["gguf_file"] = self._source.gguf_file
            kwargs["quantization_config"] = GgufConfig(gguf_file=self._source.gguf_file, dequantize=True)
        auto = AutoModelForSeq2SeqLM if self.encoder_decoder else AutoModelForCausalLM
        with _quiet_transformers():
            try:
                model = auto.from_pretrained(str(self._source.folder), **kwargs)
            except ValueError as e:
                if "Unrecognized configuration class" in str(e):
                    raise ValueError(
                        f"'{self.base.name}' is not a generative model (causal LM or T5-style encoder-decoder); "
                        "a seq2seq student needs one."
                    ) from e
                raise
        gguf_unpacked.detach_quantizer(model)
        model.generation_config.pad_token_id = self.pad_id
        return model.to(self.device).eval()

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device | None = None) -> "Seq2SeqStudent":
        """Restore a student written by `save` (prompt format, lengths), or take any local generative folder."""
        folder = Path(folder)
        notes = _read_sidecar(folder)
        fmt = PromptFormat(**notes["format"]) if isinstance(notes.get("format"), dict) else None
        max_new = int(notes.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        student = cls(base=folder, device=device, max_new_tokens=max_new, prompt_format=fmt)
        student.max_length = int(notes.get("max_length", DEFAULT_MAX_LENGTH))
        # A later cold fit should restart from the pretrained weights, not from these fine-tuned ones.
        with contextlib.suppress(ModelNotFound):
            if notes.get("base"):
                student.base = _base_location(notes["base"])
                student._pristine = False
        return student

    # -- tokenization ---------------------------------------------------------------------------------------
    def _prompt_ids(self, texts: Sequence[str]) -> list[list[int]]:
        prompts = [self.format.render_prompt(t) for t in texts]
        return [list(ids) for ids in self.tokenizer(prompts, add_special_tokens=True)["input_ids"]]

    def _target_ids(self, targets: Sequence[str]) -> list[list[int]]:
        """The target's tokens and one eos (a T5 tokenizer adds its own; a causal LM's tokenizer does not)."""
        rendered = [self.format.render_target(t) for t in targets]
        eos = self.tokenizer.eos_token_id
        encoded = self.tokenizer(rendered, add_special_tokens=self.encoder_decoder)["input_ids"]
        return [list(ids) if ids and ids[-1] == eos else list(ids) + [eos] for ids in encoded]

    def _pairs(
        self, texts: Sequence[str], targets: Sequence[str], max_length: int
    ) -> list[tuple[list[int], list[int]]]:
        return [_truncate(p, t, max_length) for p, t in zip(self._prompt_ids(texts), self._target_ids(targets))]

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in batch.items()}

    # -- training -------------------------------------------------------------------------------------------
    def fit(self, examples: list[TrainExample], args: TrainingArgs, progress: ProgressFn | None = None,
            eval_examples: list[TrainExample] | None = None) -> TrainReport:
        """Fine-tune on `examples` (text → target). Steps = max(epochs·⌈n/batch⌉, min_steps), capped by
        max_steps when > 0; AdamW with warm-up then linear decay; token CE over the target tokens, averaged per
        example and then over the batch (weighted by `TrainExample.weight`), so a long answer does not count
        more than a short one. `progress` is called once per step; raising from it cancels the fit.
        With `args.early_stopping` and `eval_examples`, the weights kept are those of the epoch with the lowest
        mean token loss on them (teacher-forced: decoding every row each epoch would cost more than the fit)."""
        problems = args.problems()
        if problems:
            raise ValueError(" ".join(problems))
        if not examples:
            raise ValueError("There is nothing to train on: the training set is empty.")
        if args.loss != "ce":
            log.info("Seq2seq students train with token cross-entropy; loss=%r does not apply.", args.loss)
        self.loss_used = "ce"

        if not args.warm_start and not self._pristine:
            self.model = None  # free the old weights before loading new ones
            self.model = self._fresh_model()
        self._pristine = False
        self.max_length = args.max_length
        model = self.model
        n = len(examples)
        per_epoch = -(-n // args.batch_size)
        steps = training.plan_steps(n, args)
        pairs = self._pairs([ex.text for ex in examples], [ex.target for ex in examples], args.max_length)
        weights = torch.tensor([float(ex.weight) for ex in examples], dtype=torch.float32)
        use_weights = bool((weights != 1).any())

        opt = training.Optimization(model, args, steps)
        rng = np.random.default_rng(args.seed)
        torch.manual_seed(args.seed)  # dropout, where the model has any

        judge = list(eval_examples or []) if args.early_stopping else []
        keeper = (training.BestWeights(model, lambda: -float(np.mean(self.loss([e.text for e in judge],
                                                                                [e.target for e in judge]))))
                  if judge else None)
        checkpoints = training.epoch_ends(n, args.batch_size, steps)
        precision = training.compute_precision(self.device, args.precision)
        model.train()
        self.loss_history = []
        seen = 0
        start = time.perf_counter()
        threads = training.TorchThreads(self.device)
        try:
            for step, idx in enumerate(training.batches(n, args.batch_size, steps, rng), start=1):
                threads.adjust()  # as many threads as the cores others leave free (`training.TorchThreads`)
                batch = self._to_device(collate_train([pairs[i] for i in idx], self.pad_id, self.encoder_decoder))
                with training.autocast(self.device, precision):
                    per_example = self._token_ce(batch)
                loss = _per_example(per_example.float(), weights[idx] if use_weights else None)
                loss.backward()
                opt.step()
                value = float(loss.detach())
                self.loss_history.append(value)
                seen += len(idx)
                if keeper is not None and step in checkpoints:
                    keeper.offer(step)
                if progress is not None:
                    progress(step / steps, f"step {step}/{steps} · loss {value:.4f}")
            if keeper is not None:
                keeper.restore()
        finally:
            threads.restore()
            model.eval()
        seconds = time.perf_counter() - start
        tail = self.loss_history[-min(per_epoch, len(self.loss_history)) :]
        return TrainReport(
            steps=steps,
            examples=n,
            seconds=seconds,
            final_loss=float(np.mean(tail)) if tail else float("nan"),
            examples_per_second=seen / seconds if seconds > 0 else float("inf"),
            best_step=keeper.best_step if keeper else None,
            eval_history=keeper.history if keeper else [],
            precision=precision,
            eval_seconds=keeper.seconds if keeper else 0.0,
        )

    def _target_logits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [B, T, V], labels [B, T]) aligned so logits[:, t] predict labels[:, t]."""
        labels = batch["labels"]
        if self.encoder_decoder:
            enc = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            logits = self.model(**enc, labels=labels).logits
            return logits, labels
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return shift_for_causal(logits, labels)

    def _token_ce(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean CE over each example's target tokens: [B]."""
        logits, labels = self._target_logits(batch)
        per_token = F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
        count = (labels != IGNORE_INDEX).sum(dim=-1).clamp(min=1)
        return per_token.sum(dim=-1) / count

    # -- inference ------------------------------------------------------------------------------------------
    def loss(self, texts: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        """Mean token cross-entropy of each target given its text (the training loss, without gradients):
        how well the student fits given pairs, e.g. before and after a round."""
        texts, targets = [str(t) for t in texts], [str(t) for t in targets]
        if len(texts) != len(targets):
            raise ValueError(f"Got {len(texts)} texts but {len(targets)} targets.")
        pairs = self._pairs(texts, targets, self.max_length)
        out = np.zeros(len(texts), dtype=np.float32)
        self.model.eval()
        with torch.inference_mode():
            for s in range(0, len(texts), INFER_BATCH):
                idx = np.arange(s, min(s + INFER_BATCH, len(texts)))
                batch = self._to_device(collate_train([pairs[i] for i in idx], self.pad_id, self.encoder_decoder))
                out[idx] = self._token_ce(batch).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Greedy answers, cut at the first newline or eos; confidence = exp(mean log-prob of the generated
        tokens up to and including the one that stopped it) — the geometric-mean token probability."""
        texts = [str(t) for t in texts]
        if not texts:
            return []
        prompts = [_truncate(p, [0], self.max_length)[0] for p in self._prompt_ids(texts)]
        order = np.argsort([len(p) for p in prompts], kind="stable")
        out: list[Prediction | None] = [None] * len(texts)
        stop = set(self._stop_token_ids())
        self.model.eval()
        with torch.inference_mode():
            for s in range(0, len(texts), INFER_BATCH):
                idx = order[s : s + INFER_BATCH]
                batch = self._to_device(collate_left([prompts[i] for i in idx], self.pad_id))
                gen = self.model.generate(
                    **batch,
                    do_sample=False,
                    num_beams=1,
                    max_new_tokens=self.max_new_tokens,
                    eos_token_id=sorted(stop),
                    pad_token_id=self.pad_id,
                    output_logits=True,
                    return_dict_in_generate=True,
                )
                start = 1 if self.encoder_decoder else batch["input_ids"].shape[1]  # T5: skip the decoder start token
                new = gen.sequences[:, start:].cpu()
                logprobs = torch.stack(gen.logits, dim=1).float().log_softmax(-1).cpu()  # [b, steps, V]
                chosen = logprobs.gather(-1, new[:, : logprobs.shape[1]].unsqueeze(-1)).squeeze(-1)
                for row, i in enumerate(idx):
                    ids = new[row].tolist()
                    end = next((k + 1 for k, tok in enumerate(ids) if tok in stop), len(ids))
                    text = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
                    answer = text.split(self.format.stop)[0].strip() if self.format.stop else text.strip()
                    confidence = float(torch.exp(chosen[row, :end].mean())) if end else 0.0
                    out[i] = Prediction(answer, confidence)
        return out  # type: ignore[return-value]

    def energy(self, texts: Sequence[str], outputs: list[str] | None = None, temperature: float = 1.0) -> np.ndarray:
        """Mean per-token energy -T·logsumexp(logits/T) over the target tokens of `outputs` (teacher-forced;
        the target's eos included, prompt and padding excluded). Without `outputs`, the student's own greedy
        answers are scored. Higher = more out-of-distribution."""
        texts = [str(t) for t in texts]
        if outputs is None:
            outputs = [p.output for p in self.predict(texts)]
        if len(outputs) != len(texts):
            raise ValueError(f"Got {len(texts)} texts but {len(outputs)} outputs.")
        if not texts:
            return np.zeros(0, dtype=np.float32)
        pairs = self._pairs(texts, [str(o) for o in outputs], self.max_length)
        order = np.argsort([len(p) + len(t) for p, t in pairs], kind="stable")
        energies = np.zeros(len(texts), dtype=np.float32)
        self.model.eval()
        with torch.inference_mode():
            for s in range(0, len(texts), INFER_BATCH):
                idx = order[s : s + INFER_BATCH]
                batch = self._to_device(collate_train([pairs[i] for i in idx], self.pad_id, self.encoder_decoder))
                logits, labels = self._target_logits(batch)
                e = sequence_energy(logits.float(), labels != IGNORE_INDEX, temperature)
                energies[idx] = e.cpu().numpy()
        return energies

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Masked mean of the last hidden state over the prompt's tokens, L2-normalised (the encoder's for T5).
        Right padding: a causal model's real tokens never attend to the pads after them."""
        texts = [str(t) for t in texts]
        hidden = int(getattr(self.model.config, "hidden_size", 0) or getattr(self.model.config, "d_model", 0))
        if not texts:
            return np.zeros((0, hidden), dtype=np.float32)
        prompts = [_truncate(p, [0], self.max_length)[0] for p in self._prompt_ids(texts)]
        order = np.argsort([len(p) for p in prompts], kind="stable")
        body = self.model.get_encoder() if self.encoder_decoder else self.model.base_model
        out = np.zeros((len(texts), hidden), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(texts), INFER_BATCH):
                idx = order[s : s + INFER_BATCH]
                batch = self._to_device(_pad_right([prompts[i] for i in idx], self.pad_id))
                states = body(**batch).last_hidden_state
                out[idx] = training.mean_pool(states, batch["attention_mask"]).cpu().numpy()
        return out

    def _stop_token_ids(self) -> list[int]:
        """eos plus every vocabulary token whose text contains the stop string (129 of SmolLM2's 49k contain
        a newline, e.g. "\\n\\n" or ".\\n"): generation then stops on its own instead of running to the limit."""
        if self._stop_ids is None:
            ids = {int(self.tokenizer.eos_token_id)}
            if self.format.stop:
                pieces = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
                ids.update(i for i, piece in enumerate(pieces) if self.format.stop in piece)
            self._stop_ids = sorted(ids)
        return self._stop_ids

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write a plain HF folder (config, model.safetensors, generation config, tokenizer) that
        `AutoModelForCausalLM.from_pretrained(folder)` and `pipeline("text-generation", model=folder)` load
        without gguf, plus `gold_student.json` with the prompt format. Written beside the target and renamed
        into place, so a crash mid-save never leaves a half-written checkpoint where one was."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        gguf_unpacked.detach_quantizer(self.model)
        gen = self.model.generation_config
        gen.pad_token_id = self.pad_id
        gen.eos_token_id = self.tokenizer.eos_token_id
        gen.max_new_tokens = self.max_new_tokens  # so a plain pipeline call answers at the trained length
        with _quiet_transformers():
            self.model.save_pretrained(str(tmp))
            self.tokenizer.save_pretrained(str(tmp))
        notes = {
            "kind": self.kind,
            "format": asdict(self.format),
            "max_length": self.max_length,
            "max_new_tokens": self.max_new_tokens,
            "encoder_decoder": self.encoder_decoder,
            "base": _portable_base(self.base),
            "usage": "prompt = format.prompt with {text} filled in; greedy-decode; the answer is the text before "
            "the first format.stop.",
        }
        (tmp / SIDECAR).write_text(json.dumps(notes, indent=2))
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)


def _base_location(base: str | Path | None) -> ModelLocation:
    """None or "" → the embedded SmolLM2 GGUF; otherwise an `embedded:` name, a .gguf file or a local folder."""
    if base is None or base == "":
        return embedded_teacher()
    return resolve(str(base))


def _portable_base(base: ModelLocation) -> str:
    """The embedded model by name, so a saved student's notes stay valid on another machine."""
    with contextlib.suppress(ModelNotFound):
        emb = embedded_teacher()
        if base.folder == emb.folder and base.gguf_file == emb.gguf_file:
            return DEFAULT_SEQ2SEQ
    return str(base.weights)

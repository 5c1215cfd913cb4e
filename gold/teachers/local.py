"""LocalTeacher: a causal LM run in-process with transformers (default: the embedded SmolLM2-135M GGUF).

Why these choices:
- Batched generation with LEFT padding: a decoder continues from the last position, so padding must sit
  before the prompt; prompts are sorted by length first so a batch wastes little on padding.
- Stops: a single-character stop (the newline of the completion recipe) is detected exactly and cheaply by
  token id — every vocabulary token whose text contains it ends that row. Longer stop strings can span
  tokens, so they are checked on the decoded tail of each row. Either way a row that stopped stops costing
  tokens, and the text is cut at the stop afterwards ("keep the first line").
- Seeded sampling inside `torch.random.fork_rng`, so a run is reproducible and the caller's RNG is untouched.
- `label_loglik` scores candidate continuations (label words) for teacher few-shot classification; a shared
  few-shot prefix is encoded once and its key/value cache reused for every row.
"""

from __future__ import annotations

import functools
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers import logging as hf_logging
from transformers.cache_utils import DynamicCache

from gold.models import DEFAULT_TEACHER, ModelLocation, force_offline, resolve
from gold.teachers.base import (
    Completion,
    GenerationSettings,
    Prompt,
    ProgressFn,
    TeacherError,
    Usage,
    plain_transcript,
    truncate_at_stop,
)

_CACHE: dict[tuple[str, str, int | None], "LocalTeacher"] = {}
_CACHE_LOCK = threading.Lock()


def pick_device(device: str | None = None) -> str:
    """CUDA when present (and not overridden), else CPU."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence the loading progress bars, which would fill a worker's log: transformers' own bar, and the
    plain tqdm its GGUF de-quantizer uses (patched for the duration of the load only)."""
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    gguf_utils = None
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
        original = getattr(gguf_utils, "tqdm", None)
        if original is not None:
            gguf_utils.tqdm = functools.partial(original, disable=True)
    except ImportError:  # a transformers without GGUF support: nothing to silence
        original = None
    try:
        yield
    finally:
        if gguf_utils is not None and original is not None:
            gguf_utils.tqdm = original
        if bar:
            hf_logging.enable_progress_bar()


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run with `n` torch CPU threads, then restore the previous count."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _StopCriteria(StoppingCriteria):
    """Per-row stop detection for batched generation; records how many tokens each row generated.

    HF ANDs the returned per-row booleans into its "unfinished" mask, so a finished row stops while the rest
    of the batch goes on. `lengths[i]` counts the new tokens of row i up to and including its stop token
    (-1 while still running).
    """

    def __init__(self, tokenizer: Any, prompt_len: int, batch: int, stop_ids: torch.Tensor, text_stops: Sequence[str]):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stop_ids = stop_ids
        self.text_stops = tuple(text_stops)
        # a stop string of n characters spans at most n tokens (plus slack for byte-level pieces)
        self.window = max((len(s) for s in self.text_stops), default=0) + 3
        self.done = torch.zeros(batch, dtype=torch.bool)
        self.lengths = [-1] * batch

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        n_new = input_ids.shape[1] - self.prompt_len
        last = input_ids[:, -1].cpu()
        hit = torch.isin(last, self.stop_ids) if self.stop_ids.numel() else torch.zeros_like(self.done)
        if self.text_stops:
            for i in range(input_ids.shape[0]):
                if self.done[i] or hit[i]:
                    continue
                tail_ids = input_ids[i, max(self.prompt_len, input_ids.shape[1] - self.window):]
                tail = self.tokenizer.decode(tail_ids, skip_special_tokens=False)
                if any(s in tail for s in self.text_stops):
                    hit[i] = True
        newly = hit & ~self.done
        for i in torch.nonzero(newly).flatten().tolist():
            self.lengths[i] = n_new
        self.done |= newly
        return self.done.to(input_ids.device)


class LocalTeacher:
    """A transformers causal LM as a GOLD teacher. Prefers completion-form prompts (DESIGN.md)."""

    prompt_style = "completion"

    def __init__(
        self, model: str = DEFAULT_TEACHER, device: str | None = None, dtype: torch.dtype | None = None,
        threads: int | None = None,
    ):
        """`threads`: torch CPU threads while this teacher runs (None = leave torch's setting). On a CPU shared
        with other busy processes, 1 thread measured ~3x faster than 2: OpenMP threads spin-wait when cores
        are oversubscribed."""
        force_offline()
        self.threads = threads
        self.location: ModelLocation = resolve(model)
        self.device = pick_device(device)
        self.name = self.location.name
        self.usage = Usage()
        if dtype is None:
            dtype = torch.bfloat16 if self.device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        kw: dict[str, Any] = {"gguf_file": self.location.gguf_file} if self.location.gguf_file else {}
        started = time.perf_counter()
        try:
            with _quiet_loading():
                self.tokenizer = AutoTokenizer.from_pretrained(self.location.folder, **kw)
                self.model = AutoModelForCausalLM.from_pretrained(self.location.folder, dtype=dtype, **kw)
        except Exception as exc:  # a corrupt or unsupported file: say which, keep the cause
            raise TeacherError(f"Could not load the teacher model from {self.location.weights}: {exc}") from exc
        self.model.to(self.device).eval()
        self.load_seconds = time.perf_counter() - started
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids: list[int] = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None]
        self._stop_id_cache: dict[tuple[str, ...], torch.Tensor] = {}
        self._lock = threading.Lock()  # one generate at a time per model: torch threads are shared anyway

    # -- construction helpers ----------------------------------------------------------------------------------
    @classmethod
    def cached(cls, model: str = DEFAULT_TEACHER, device: str | None = None, threads: int | None = None) -> "LocalTeacher":
        """One loaded teacher per (model, device, threads) per process: loading costs ~15 s and ~1 GB."""
        key = (model or DEFAULT_TEACHER, pick_device(device), threads)
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = cls(model, device, threads=threads)
            return _CACHE[key]

    def __repr__(self) -> str:
        return f"LocalTeacher(name={self.name!r}, device={self.device!r})"

    # -- prompts -------------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """The text the model sees: a completion prompt as is; chat messages through the model's chat template."""
        if isinstance(prompt, str):
            return prompt
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        # no template (a base model): a plain transcript still gives it something to continue
        return plain_transcript(prompt)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _stop_token_ids(self, stops: tuple[str, ...]) -> torch.Tensor:
        """Ids of every vocabulary token whose text contains a single-character stop (exact for those stops)."""
        if stops not in self._stop_id_cache:
            chars = [s for s in stops if len(s) == 1]
            ids = set(self.eos_ids)
            if chars:
                for i in range(len(self.tokenizer)):
                    piece = self.tokenizer.decode([i], skip_special_tokens=False)
                    if any(c in piece for c in chars):
                        ids.add(i)
            self._stop_id_cache[stops] = torch.tensor(sorted(ids), dtype=torch.long)
        return self._stop_id_cache[stops]

    # -- generation ----------------------------------------------------------------------------------------------
    def generate(
        self, prompts: list[Prompt], settings: GenerationSettings | None = None, progress: ProgressFn | None = None
    ) -> list[Completion]:
        """One completion per prompt, in order. Sampling is seeded by `settings.seed` (per batch)."""
        settings = (settings or GenerationSettings()).validate()
        if not prompts:
            return []
        texts = [self.render(p) for p in prompts]
        stops = settings.stops_for("completion" if all(isinstance(p, str) for p in prompts) else "chat")
        lengths = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
        results: list[Completion | None] = [None] * len(texts)
        n_batches = (len(order) + settings.batch_size - 1) // settings.batch_size
        devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
        with self._lock, _threads(self.threads), torch.random.fork_rng(devices=devices), torch.inference_mode():
            for b in range(n_batches):
                idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
                torch.manual_seed((settings.seed * 1_000_003 + b) % (2**63))
                for i, c in zip(idx, self._generate_batch([texts[i] for i in idx], settings, stops)):
                    results[i] = c
                if progress:
                    progress((b + 1) / n_batches, f"teacher: batch {b + 1}/{n_batches}")
        done = [c for c in results if c is not None]
        self.usage.add(done)
        return done

    def _generate_batch(self, texts: list[str], s: GenerationSettings, stops: tuple[str, ...]) -> list[Completion]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        prompt_len = enc.input_ids.shape[1]
        criteria = _StopCriteria(
            self.tokenizer, prompt_len, len(texts), self._stop_token_ids(stops), [x for x in stops if len(x) > 1]
        )
        kw: dict[str, Any] = {"max_new_tokens": s.max_new_tokens, "repetition_penalty": s.repetition_penalty}
        if s.temperature > 0:
            # top_k 50 is HF's default, which the prototype's recipe ran with; pinned so a model's config can't change it
            kw.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=50)
        else:
            kw.update(do_sample=False)
        out = self.model.generate(
            **enc,
            **kw,
            stopping_criteria=StoppingCriteriaList([criteria]),
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_ids,
        )
        gen = out[:, prompt_len:].cpu()
        prompt_tokens = enc.attention_mask.sum(dim=1).tolist()
        completions = []
        for i in range(len(texts)):
            n = criteria.lengths[i] if criteria.lengths[i] >= 0 else gen.shape[1]
            text = self.tokenizer.decode(gen[i, :n], skip_special_tokens=True)
            text, hit = truncate_at_stop(text, stops)
            stopped = criteria.lengths[i] >= 0
            completions.append(Completion(text, int(prompt_tokens[i]), int(n), "stop" if stopped or hit else "length"))
        return completions

    # -- scoring -------------------------------------------------------------------------------------------------
    def label_loglik(
        self,
        prompts: Sequence[str],
        candidates: Sequence[str],
        prefix: str = "",
        batch_size: int = 16,
        normalize: bool = False,
    ) -> np.ndarray:
        """Log-likelihood of each candidate continuation after each prompt: shape (len(prompts), len(candidates)).

        The text scored is `prefix + prompt + candidate`; tokens of the three parts are encoded separately and
        concatenated, so each candidate is scored on exactly its own tokens (write candidates with their
        leading space, e.g. " positive"). `prefix` (e.g. the few-shot examples, identical for every row) is
        run once and its key/value cache reused. `normalize` divides by the candidate's token count, which
        matters when candidates differ in length.
        """
        if not candidates:
            raise ValueError("label_loglik needs at least one candidate.")
        tok = self.tokenizer
        prefix_ids = tok(prefix, add_special_tokens=False).input_ids if prefix else []
        prompt_ids = [tok(p, add_special_tokens=False).input_ids for p in prompts]
        cand_ids = [tok(c, add_special_tokens=False).input_ids for c in candidates]
        if any(not c for c in cand_ids):
            raise ValueError("A candidate is empty: every candidate needs at least one token.")
        if not prefix_ids and any(not p for p in prompt_ids):
            raise ValueError("A prompt is empty and there is no prefix: the first candidate token has no context.")
        rows = [(i, k, prompt_ids[i] + cand_ids[k], len(prompt_ids[i])) for i in range(len(prompts)) for k in range(len(candidates))]
        scores = np.zeros((len(prompts), len(candidates)), dtype=np.float64)
        if not rows:
            return scores
        rows.sort(key=lambda r: len(r[2]))
        dev = self.device
        with self._lock, _threads(self.threads), torch.inference_mode():
            prefix_kv: list[tuple[torch.Tensor, torch.Tensor]] = []
            prefix_last = None
            if prefix_ids:
                out = self.model(input_ids=torch.tensor([prefix_ids], device=dev), use_cache=True)
                prefix_kv = [(k, v) for k, v, *_ in out.cache]
                prefix_last = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            P = len(prefix_ids)
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                B, L = len(chunk), max(len(r[2]) for r in chunk)
                ids = torch.full((B, L), tok.pad_token_id, dtype=torch.long)
                mask = torch.zeros((B, L), dtype=torch.long)
                for j, (_, _, seq, _) in enumerate(chunk):  # right padding: real tokens keep positions P..P+n-1
                    ids[j, : len(seq)] = torch.tensor(seq)
                    mask[j, : len(seq)] = 1
                kw: dict[str, Any] = {}
                if P:
                    kw["cache"] = DynamicCache(ddp_cache_data=[(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in prefix_kv])
                    mask = torch.cat([torch.ones((B, P), dtype=torch.long), mask], dim=1)
                    kw["position_ids"] = torch.arange(P, P + L, device=dev).unsqueeze(0).expand(B, -1)
                out = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=bool(P), **kw)
                logp = torch.log_softmax(out.logits.float(), dim=-1).cpu()
                for j, (i, k, seq, lp) in enumerate(chunk):
                    total = 0.0
                    for pos in range(lp, len(seq)):  # token at pos is predicted by the logits at pos-1
                        dist = logp[j, pos - 1] if pos > 0 else prefix_last
                        total += float(dist[seq[pos]])
                    scores[i, k] = total / (len(seq) - lp) if normalize else total
        return scores

"""LocalTeacher: a causal LM run in-process with transformers (default: the embedded SmolLM2-135M GGUF).

Why these choices:
- Batched generation with LEFT padding: a decoder continues from the last position, so padding must sit
  before the prompt; prompts are sorted by length first so a batch wastes little on padding.
- Stops: a single-character stop (the newline of the completion recipe) is detected exactly and cheaply by
  token id — every vocabulary token whose text contains it ends that row. Longer stop strings can span
  tokens, so they are checked on the decoded tail of each row. Either way a row that stopped stops costing
  tokens, and the text is cut at the stop afterwards ("keep the first line").
- The tokenizer's BOS token goes first where the tokenizer adds one (Gemma's does; SmolLM2's does not): every
  text is otherwise encoded without special tokens, and Gemma-3-270m without its BOS read TREC labels at 33%
  batch-calibrated accuracy instead of 53% (60 dev rows).
- Seeded sampling inside `torch.random.fork_rng`, so a run is reproducible and the caller's RNG is untouched.
- `label_loglik` scores candidate continuations (label words) for teacher few-shot classification; a shared
  few-shot prefix is encoded once and its key/value cache reused for every row.
- Prefix caches are the model's own cache objects, copied per use and grown to a batch with the Cache API, never
  rebuilt from raw tensors: a model with sliding-window layers (Gemma 3) keeps only the last window of keys in
  those layers, a layout only its own cache object describes correctly to the attention masks.
- Token log-probabilities come from the raw logits (before repetition penalty, temperature and top-p), as
  OpenAI-compatible servers report them. A one-token request with log-probabilities (how a label is read over
  HTTP) skips `generate` for one forward pass, and keeps the key/value cache of the prefix shared by
  consecutive requests (automatic prefix caching, one entry), so a label read costs only its own tokens.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers import logging as hf_logging
from transformers.cache_utils import Cache

from gold import gguf_unpacked
from gold.models import DEFAULT_TEACHER, ModelLocation, force_offline, resolve
from gold.teachers.base import (
    Completion,
    GenerationSettings,
    ProgressFn,
    Prompt,
    TeacherError,
    TokenLogprob,
    Usage,
    common_prefix_len,
    plain_transcript,
    truncate_at_stop,
)

_CACHE: dict[tuple[str, str, int | None], "LocalTeacher"] = {}
_CACHE_LOCK = threading.Lock()

# A shared prefix shorter than this is not worth keeping: copying its cache costs about what recomputing it does.
MIN_SHARED_TOKENS = 16
# prompt_logprobs runs long texts in chunks: the logits of a chunk are tokens x vocabulary (262k for Gemma 3).
PROMPT_CHUNK_TOKENS = 256
# HF's default top-k, which the prototype's sampling recipe ran with; pinned so a model's config can't change it.
SAMPLING_TOP_K = 50

# (log-probability of the token, its top alternatives best first); None for a prompt's unpredicted first token
Scored = tuple[float | None, list[tuple[str, float]]]


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


@dataclass
class _PrefixEntry:
    """Token ids and the model's key/value cache after exactly those tokens (never run forward itself: copied)."""

    ids: list[int]
    cache: Cache

    def starts(self, ids: Sequence[int]) -> bool:
        """Whether `ids` continues this prefix by at least one token (the last token always runs)."""
        n = len(self.ids)
        return len(ids) > n and list(ids[:n]) == self.ids


def _cache_copy(cache: Cache, batch: int = 1) -> Cache:
    """A private copy of a prefix cache, repeated to `batch` rows. A copy, because a forward pass extends the
    cache it is given (static layouts even write in place) and the prefix must stay as it is for the next use;
    the Cache API's repeat, because only the cache knows its layers' layouts (full, sliding window, ...)."""
    out = copy.deepcopy(cache)
    if batch > 1:
        out.batch_repeat_interleave(batch)
    return out


def _bos_ids(tokenizer: Any) -> list[int]:
    """[BOS] when the tokenizer puts one before a text it encodes with special tokens, else []."""
    bos = tokenizer.bos_token_id
    return [bos] if bos is not None and tokenizer("a").input_ids[:1] == [bos] else []


def _sampling_processors(s: GenerationSettings) -> LogitsProcessorList:
    """The logits processors HF `generate` runs for these settings, in its order (repetition penalty, then
    temperature, top-k, top-p), so the one-token fast path picks the token `generate` would."""
    procs = LogitsProcessorList()
    if s.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(float(s.repetition_penalty)))
    if s.temperature > 0:
        if s.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(s.temperature))
        procs.append(TopKLogitsWarper(SAMPLING_TOP_K))
        if s.top_p < 1.0:
            procs.append(TopPLogitsWarper(s.top_p))
    return procs


class LocalTeacher:
    """A transformers causal LM as a GOLD teacher. Prefers completion-form prompts (docs/architecture.md)."""

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
        started = time.perf_counter()
        try:
            with _quiet_loading():
                source = gguf_unpacked.loadable(self.location)  # a GGUF from its unpacked copy (gold/gguf_unpacked.py)
                kw: dict[str, Any] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
                self.tokenizer = AutoTokenizer.from_pretrained(source.folder, **kw)
                self.model = AutoModelForCausalLM.from_pretrained(source.folder, dtype=dtype, **kw)
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
        self._bos = _bos_ids(self.tokenizer)
        self._prefix: _PrefixEntry | None = None  # the one-token fast path's prefix cache (under _lock)
        self._previous_ids: list[int] = []  # the fast path's previous request, to find the shared prefix

    # -- construction helpers ----------------------------------------------------------------------------------
    @classmethod
    def cached(cls, model: str = DEFAULT_TEACHER, device: str | None = None, threads: int | None = None) -> "LocalTeacher":
        """One loaded teacher per (model, device, threads) per process: loading a GGUF costs ~2.6 s from its unpacked
        copy (26 s the first time, which writes it; `bench/model_load.py`) and ~1 GB."""
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

    def _encode(self, text: str) -> list[int]:
        """The ids the model runs on: the text's own tokens (no special tokens added, so a text split in parts
        encodes as the parts), after the BOS where the tokenizer uses one, once even if the text (a chat
        template) already starts with it."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        return ids if ids[: len(self._bos)] == self._bos else self._bos + ids

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
        """One completion per prompt, in order. Sampling is seeded by `settings.seed` (per batch).

        With `settings.top_logprobs` set, each completion carries one `TokenLogprob` per generated token (the
        stop token included, so a reply cut to "" still says what the model believed at its first token);
        concatenated, their texts are the reply before the stop string was cut."""
        settings = (settings or GenerationSettings()).validate()
        if not prompts:
            return []
        texts = [self.render(p) for p in prompts]
        stops = settings.stops_for("completion" if all(isinstance(p, str) for p in prompts) else "chat")
        batch_fn = self._next_token_batch if self._one_token_read(settings) else self._generate_batch
        lengths = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
        results: list[Completion | None] = [None] * len(texts)
        n_batches = (len(order) + settings.batch_size - 1) // settings.batch_size
        devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
        with self._lock, _threads(self.threads), torch.random.fork_rng(devices=devices), torch.inference_mode():
            for b in range(n_batches):
                idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
                torch.manual_seed((settings.seed * 1_000_003 + b) % (2**63))
                for i, c in zip(idx, batch_fn([texts[i] for i in idx], settings, stops)):
                    results[i] = c
                if progress:
                    progress((b + 1) / n_batches, f"teacher: batch {b + 1}/{n_batches}")
        done = [c for c in results if c is not None]
        self.usage.add(done)
        return done

    @staticmethod
    def _one_token_read(s: GenerationSettings) -> bool:
        """A label read over HTTP: one token and its log-probabilities, served by one forward pass."""
        return s.max_new_tokens == 1 and s.top_logprobs is not None

    def _generate_batch(self, texts: list[str], s: GenerationSettings, stops: tuple[str, ...]) -> list[Completion]:
        enc = self.tokenizer.pad({"input_ids": [self._encode(t) for t in texts]}, return_tensors="pt").to(self.device)
        prompt_len = enc.input_ids.shape[1]
        criteria = _StopCriteria(
            self.tokenizer, prompt_len, len(texts), self._stop_token_ids(stops), [x for x in stops if len(x) > 1]
        )
        kw: dict[str, Any] = {"max_new_tokens": s.max_new_tokens, "repetition_penalty": s.repetition_penalty}
        if s.temperature > 0:
            kw.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=SAMPLING_TOP_K)
        else:
            kw.update(do_sample=False)
        out = self.model.generate(
            **enc,
            **kw,
            stopping_criteria=StoppingCriteriaList([criteria]),
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_ids,
            return_dict_in_generate=True,
            output_logits=s.top_logprobs is not None,
        )
        gen = out.sequences[:, prompt_len:].cpu()
        prompt_tokens = enc.attention_mask.sum(dim=1).tolist()
        completions = []
        for i in range(len(texts)):
            n = criteria.lengths[i] if criteria.lengths[i] >= 0 else gen.shape[1]
            text = self.tokenizer.decode(gen[i, :n], skip_special_tokens=True)
            text, hit = truncate_at_stop(text, stops)
            stopped = criteria.lengths[i] >= 0
            c = Completion(text, int(prompt_tokens[i]), int(n), "stop" if stopped or hit else "length")
            if s.top_logprobs is not None:
                tokens = gen[i, :n].tolist()
                logits = torch.stack([step[i] for step in out.logits[:n]])
                c.logprobs = self._entries(tokens, self._scored(logits, tokens, s.top_logprobs))
            completions.append(c)
        return completions

    def _next_token_batch(self, texts: list[str], s: GenerationSettings, stops: tuple[str, ...]) -> list[Completion]:
        """One new token per text without `generate`: each row's last logits come from the kept prefix cache;
        the token is picked for the whole batch at once (argmax, or one multinomial draw over the processed
        distribution under the batch's seed), as `generate` picks its first token."""
        ids = [self._encode(t) for t in texts]
        if any(not row for row in ids):
            raise ValueError("A prompt is empty: the first generated token has no context.")
        logits = torch.stack([self._last_logits(row) for row in ids])
        procs = _sampling_processors(s)
        scores = torch.cat([procs(torch.tensor([row], device=self.device), logits[j : j + 1].clone())
                            for j, row in enumerate(ids)])
        if s.temperature > 0:
            picked = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            picked = scores.argmax(dim=-1)
        stop_ids = set(self._stop_token_ids(stops).tolist())
        completions = []
        for j, token in enumerate(picked.tolist()):
            text, hit = truncate_at_stop(self.tokenizer.decode([token], skip_special_tokens=True), stops)
            finish = "stop" if hit or token in stop_ids else "length"
            c = Completion(text, len(ids[j]), 1, finish)
            c.logprobs = self._entries([token], self._scored(logits[j : j + 1], [token], s.top_logprobs or 0))
            completions.append(c)
        return completions

    # -- forward passes and log-probabilities -------------------------------------------------------------------
    def _run(self, ids: Sequence[int], start: int, cache: Cache | None, last_only: bool) -> tuple[torch.Tensor, Cache]:
        """One sequence forward at positions start.., continuing `cache` (which the pass extends; None = the
        model makes its own, of its own layout). Returns the float32 logits ([1 or len(ids), vocab]) and the
        cache. `last_only` computes the last position's logits only: the others would be tokens x vocabulary."""
        out = self.model(
            input_ids=torch.tensor([list(ids)], device=self.device),
            position_ids=torch.arange(start, start + len(ids), device=self.device).unsqueeze(0),
            cache=cache, use_cache=True, logits_to_keep=1 if last_only else 0,
        )
        return out.logits[0].float(), out.cache

    def _last_logits(self, ids: list[int]) -> torch.Tensor:
        """The next-token logits after `ids`, reusing the one kept prefix entry (vLLM-style automatic prefix
        caching with a single entry).

        The entry is the longest token prefix this request shares with the previous one, once that is at least
        MIN_SHARED_TOKENS longer than what the entry already covers (so a few tokens two rows happen to share
        do not replace a long few-shot prefix). The request's last token always runs, so its logits are fresh."""
        shared = min(common_prefix_len(self._previous_ids, ids), len(ids) - 1)
        self._previous_ids = ids
        base = self._prefix if self._prefix is not None and self._prefix.starts(ids) else None
        start = len(base.ids) if base else 0
        if shared >= start + MIN_SHARED_TOKENS:
            _, cache = self._run(ids[start:shared], start, _cache_copy(base.cache) if base else None, last_only=True)
            base = self._prefix = _PrefixEntry(ids[:shared], cache)
            start = shared
        logits, _ = self._run(ids[start:], start, _cache_copy(base.cache) if base else None, last_only=True)
        return logits[-1]

    def _piece(self, token: int) -> str:
        """A token's text decoded alone, special tokens named (an end-of-text alternative must be visible)."""
        return self.tokenizer.decode([token], skip_special_tokens=False)

    def _scored(self, logits: torch.Tensor, targets: Sequence[int], k: int) -> list[Scored]:
        """Row i of `logits` scored for targets[i]: its log-probability under the raw distribution and the k
        most likely tokens, best first."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        chosen = logp.gather(1, torch.tensor(list(targets), device=logp.device).unsqueeze(1)).squeeze(1).tolist()
        if not k:
            return [(lp, []) for lp in chosen]
        values, indices = logp.topk(k, dim=-1)
        return [(lp, [(self._piece(t), v) for t, v in zip(ti, vi)])
                for lp, ti, vi in zip(chosen, indices.tolist(), values.tolist())]

    def _entries(self, tokens: Sequence[int], scored: Sequence[Scored]) -> list[TokenLogprob]:
        """TokenLogprob per token; a token's offset is the length of the token texts before it, so offsets
        index into the concatenated texts (vLLM's `text_offset`)."""
        entries, offset = [], 0
        for token, (lp, top) in zip(tokens, scored):
            text = self._piece(token)
            entries.append(TokenLogprob(text, lp, top, offset))
            offset += len(text)
        return entries

    def prompt_logprobs(self, text: str, top_logprobs: int = 0) -> list[TokenLogprob]:
        """Every token of `text`, tokenized as `generate` tokenizes a prompt, with its log-probability given the
        tokens before it and its `top_logprobs` most likely alternatives: what `echo` returns on the OpenAI
        completions endpoint. The first token's log-probability is None (nothing predicts it) unless the model
        runs with a BOS token, which is not part of `text` and gets no entry. Long texts run in chunks of
        PROMPT_CHUNK_TOKENS through the model's own cache, so memory stays at one chunk's logits."""
        if not 0 <= top_logprobs <= 20:
            raise ValueError("top_logprobs must be between 0 and 20 (the OpenAI API's limit).")
        ids = self._encode(text)
        bos = len(ids) - self.count_tokens(text)
        scored: list[Scored] = [(None, [])] if ids else []
        with self._lock, _threads(self.threads), torch.inference_mode():
            cache = None
            for start in range(0, len(ids) - 1, PROMPT_CHUNK_TOKENS):
                chunk = ids[start : start + PROMPT_CHUNK_TOKENS]
                logits, cache = self._run(chunk, start, cache, last_only=False)
                targets = ids[start + 1 : start + 1 + len(chunk)]
                scored += self._scored(logits[: len(targets)], targets, top_logprobs)
        return self._entries(ids[bos:], scored[bos:])

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

        The text scored is `prefix + prompt + candidate`. `prefix + prompt` is encoded as one text, as a server
        encodes the prompt it is sent (encoding the parts apart splits tokens where they meet, e.g. the prefix's
        closing blank line, and reads the labels measurably differently from the same model over HTTP); the
        candidate's tokens are appended, so each candidate is scored on exactly its own tokens (write candidates
        with their leading space, e.g. " positive"). The tokens every row shares with the encoded `prefix` (the
        few-shot examples, identical for every row) are run once and their key/value cache reused (the BOS
        token, where the model uses one, heads them). `normalize` divides by the candidate's token count, which
        matters when candidates differ in length.
        """
        if not candidates:
            raise ValueError("label_loglik needs at least one candidate.")
        tok = self.tokenizer
        prefix_ids, prompt_ids = self._split_shared(prefix, prompts)
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
        with self._lock, _threads(self.threads), torch.inference_mode():
            prefix_cache, prefix_last = None, None
            if prefix_ids:
                logits, prefix_cache = self._run(prefix_ids, 0, None, last_only=True)
                prefix_last = logits[-1]
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                totals = self._candidate_logliks(chunk, len(prefix_ids), prefix_cache, prefix_last)
                for (i, k, seq, lp), total in zip(chunk, totals):
                    scores[i, k] = total / (len(seq) - lp) if normalize else total
        return scores

    def _split_shared(self, prefix: str, prompts: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """(shared ids, each row's own ids): every `prefix + prompt` encoded whole, and the longest run of the
        encoded prefix's tokens that every row starts with, to be computed once."""
        if not prefix:
            return list(self._bos), [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        prefix_ids = self._encode(prefix)
        whole = [self._encode(prefix + p) for p in prompts]
        shared = len(prefix_ids)
        for ids in whole:
            n = 0
            while n < min(shared, len(ids)) and ids[n] == prefix_ids[n]:
                n += 1
            shared = n
        return prefix_ids[:shared], [ids[shared:] for ids in whole]

    def _candidate_logliks(self, chunk: list[tuple[int, int, list[int], int]], P: int, prefix_cache: Cache | None,
                           prefix_last: torch.Tensor | None) -> list[float]:
        """One batch of (row, candidate, prompt+candidate ids, prompt length): the summed log-probability of each
        candidate's tokens. Right padding, so real tokens keep positions P..P+n-1 after the prefix."""
        B, L = len(chunk), max(len(r[2]) for r in chunk)
        ids = torch.full((B, L), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((B, L), dtype=torch.long)
        # the token at pos is predicted by the logits at pos - 1 (by the prefix's last logits for pos 0); only
        # those positions go through the output layer, a third of the batch or less, and with a 262k vocabulary
        # (Gemma 3) the output layer is most of the compute
        keep = torch.zeros((B, L), dtype=torch.bool)
        for j, (_, _, seq, lp) in enumerate(chunk):
            ids[j, : len(seq)] = torch.tensor(seq)
            mask[j, : len(seq)] = 1
            keep[j, max(lp, 1) - 1 : len(seq) - 1] = True
        kw: dict[str, Any] = {}
        if prefix_cache is not None:
            kw["cache"] = _cache_copy(prefix_cache, B)
            mask = torch.cat([torch.ones((B, P), dtype=torch.long), mask], dim=1)
            kw["position_ids"] = torch.arange(P, P + L, device=self.device).unsqueeze(0).expand(B, -1)
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                            use_cache=prefix_cache is not None, logits_to_keep=keep.to(self.device), **kw).logits
        kept = iter(logits.float())  # [kept positions, vocabulary], row by row, positions ascending
        totals = []
        for _, _, seq, lp in chunk:
            dists = [next(kept) if pos > 0 else prefix_last for pos in range(lp, len(seq))]
            logp = torch.log_softmax(torch.stack(dists), dim=-1)
            totals.append(float(logp[torch.arange(len(dists)), torch.tensor(seq[lp:])].sum()))
        return totals

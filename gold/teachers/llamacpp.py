"""LlamaCppTeacher: the local teacher's GGUF run by llama.cpp (`llama-cpp-python`) instead of transformers.

Why a second engine for the same model: transformers de-quantizes the embedded Q4_1 GGUF to fp32 and runs it
through PyTorch, which on a small CPU spends most of its time outside the matrix products. llama.cpp runs the
quantized weights natively. `bench/teacher_engines.py` measures both side by side on the same prompts.

Why this teacher samples in Python rather than with llama.cpp's own sampler: GOLD's generation recipe
(docs/architecture.md: temperature 0.9, top-k 50, top-p 0.95, repetition penalty 1.2, stop at a newline) was
measured with HF semantics, where the repetition penalty covers every token in the context, the few-shot examples
included, and is applied before the temperature. llama.cpp's penalty sees only the generated tokens and its chain
adds min-p. So the model's next-token logits come from llama.cpp and the same processors as `LocalTeacher` run on
them here, in numpy (~0.2 ms a token against ~5 ms for the forward pass). Each prompt gets its own seeded generator
(seed, position in the batch), so a reply does not depend on which other prompts share its batch.

Replies are decoded several at a time on a context of their own (`parallel_decode`: `sequences` of them in one
batch, continuous, each new prompt starting from the longest prefix already in the cache); prompts run sorted so
that those sharing a prefix follow each other. Label reads run on the main context one row at a time, keeping
the few-shot prefix (`_feed`).

Which weights it runs (`weights`, the run's *GGUF weights*): the file's own, or an F16 copy where the file's type
has no batched kernel in llama.cpp's CPU backend (the embedded teacher's Q4_1): `gguf_weights` says why and when.

Why weights stay in llama.cpp's plain CPU buffers on a processor with AMX tiles (`uses_extra_buffers`): a build
for such a processor moves quantized weights into its AMX buffer, and decoding after the kept prefix then ends the
process with a segmentation fault (seen on an Intel Xeon with AMX, in a VM; llama.cpp's AMX buffer has no
`get_tensor`). The embedded teacher is Q4_1, which no other extra buffer (the repacked AVX2/AVX-512 layouts)
takes, so it loses nothing; only a user's own Q4_0 GGUF on such a processor runs without the repacked layout.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import gold.teachers.gguf_weights as gguf_weights
from gold.cpu import ThreadGovernor
from gold.models import DEFAULT_TEACHER, ModelLocation, force_offline, resolve
from gold.teachers.base import (
    Completion,
    GenerationSettings,
    ProgressFn,
    Prompt,
    TeacherError,
    Usage,
    common_prefix_len,
    plain_transcript,
    truncate_at_stop,
)
from gold.teachers.parallel_decode import ParallelDecoder, Reply

ENGINE = "llama.cpp"
INSTALL_HINT = "pip install llama-cpp-python (or `make llama`), which compiles llama.cpp in a few minutes"
TOP_K = 50  # HF's default, which the prototype's recipe ran with (the transformers teacher pins it too)
# Replies decoded together: on 2 cores the embedded teacher's F16 copy decodes 4 sequences at ~2x the tokens/s of
# one, and 8 at no more than 4 (bench/teacher_sequences.py).
DEFAULT_SEQUENCES = 4

_CACHE: dict[tuple[str, int | None, str, int], "LlamaCppTeacher"] = {}
_CACHE_LOCK = threading.Lock()
# Every live teacher, closed at exit while llama_cpp's module is still whole: freed later, during the interpreter's
# teardown, its native contexts print "Exception ignored ... 'NoneType' object is not callable".
_LIVE: "weakref.WeakSet[LlamaCppTeacher]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for teacher in list(_LIVE):
        teacher.close()


def available() -> bool:
    """Whether llama-cpp-python is installed (without importing it: the import loads a shared library)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def default_threads() -> int:
    """OMP_NUM_THREADS when set (the worker and the benchmarks set it to share a small CPU), else every core.
    llama.cpp has its own thread pool and does not read that variable itself."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max()
    return z - np.log(np.exp(z).sum())


def kept_tokens(logits: np.ndarray, context: np.ndarray, s: GenerationSettings) -> tuple[np.ndarray, np.ndarray]:
    """The tokens HF's processors keep and their probabilities, in HF's order: repetition penalty over every
    token of the context (a positive logit divided, a negative one multiplied), temperature, top-k, top-p.
    Returns (token ids, probabilities), most likely first; greedy (temperature 0) keeps the argmax alone."""
    z = logits.astype(np.float32, copy=True)  # float32 as HF's processors; the kept few go to float64 below
    if s.repetition_penalty != 1.0 and context.size:
        seen = np.unique(context)
        seen = seen[seen < z.size]
        v = z[seen]
        z[seen] = np.where(v < 0, v * s.repetition_penalty, v / s.repetition_penalty)
    if s.temperature <= 0:
        return np.array([int(np.argmax(z))]), np.ones(1)
    # the temperature divides every logit by the same positive number, so it keeps the top-k set: pick the set on
    # the raw logits and scale only those (a vocabulary-wide pass less per token)
    k = min(TOP_K, z.size)
    top = np.argpartition(z, z.size - k)[z.size - k:]
    zk = z[top].astype(np.float64) / s.temperature
    order = np.argsort(-zk, kind="stable")
    top, zk = top[order], zk[order]
    pt = np.exp(zk - zk[0])
    pt /= pt.sum()
    if s.top_p < 1.0:
        # HF keeps the smallest set whose mass reaches top_p, always at least one token
        cum = np.cumsum(pt)
        keep = int(np.searchsorted(cum, s.top_p, side="left")) + 1
        pt = pt[:keep] / pt[:keep].sum()
        top = top[:keep]
    return top, pt


def process_logits(logits: np.ndarray, context: np.ndarray, s: GenerationSettings) -> np.ndarray:
    """`kept_tokens` as a probability vector over the whole vocabulary (zeros outside the kept set)."""
    top, pt = kept_tokens(logits, context, s)
    p = np.zeros(logits.size, dtype=np.float64)
    p[top] = pt
    return p


def sample_token(logits: np.ndarray, context: list[int], s: GenerationSettings, rng: np.random.Generator) -> int:
    """One token drawn from the kept set (the argmax when greedy): a draw over ~50 tokens, not the vocabulary."""
    top, pt = kept_tokens(logits, np.asarray(context), s)
    return int(top[rng.choice(pt.size, p=pt)]) if pt.size > 1 else int(top[0])


def uses_extra_buffers() -> bool:
    """Whether the installed llama.cpp may move weights into its CPU "extra" buffers: not when it was built with
    AMX (module docstring), where those buffers crash the decoder."""
    import llama_cpp

    return b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info()


_params_lock = threading.Lock()


@contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """`Llama(...)` with `use_extra_bufts` set: the binding's constructor takes its model parameters from
    `llama_model_default_params()` and has no argument for this field, so that function is wrapped while one
    model loads (under a lock: two teachers may load at once in one process)."""
    import llama_cpp.llama_cpp as capi

    with _params_lock:
        default = capi.llama_model_default_params

        def params():
            p = default()
            p.use_extra_bufts = use_extra_bufts
            return p

        capi.llama_model_default_params = params
        try:
            yield
        finally:
            capi.llama_model_default_params = default


class LlamaCppTeacher:
    """A GGUF model run by llama.cpp as a GOLD teacher. Same protocol and recipe as `LocalTeacher`."""

    prompt_style = "completion"
    engine = ENGINE
    # Key/value caches kept between calls (the decoder's slots for replies, `_feed` for label reads): a prompt
    # continued right after its own reply evaluates only the new tokens (`prompts.run_requests` writes
    # several-line requests so).
    keeps_prefix = True

    def __init__(self, model: str = DEFAULT_TEACHER, threads: int | None = None, n_ctx: int = 4096,
                 adapt: bool = True, weights: str = "auto", sequences: int = DEFAULT_SEQUENCES):
        """`threads`: the most llama.cpp threads (None = `default_threads()`); `adapt`: run fewer while other work
        holds cores (`gold.cpu`: a busy core slows every thread at llama.cpp's barriers), else always that many.
        `n_ctx`: the longest prompt plus reply. `weights`: the file's own or an F16 copy (`gguf_weights`).
        `sequences`: replies decoded together (`parallel_decode`); 1 decodes one reply at a time."""
        force_offline()
        self.location: ModelLocation = resolve(model)
        if not self.location.gguf_file:
            raise TeacherError(
                f"The llama.cpp engine runs GGUF files; {self.location.weights} is a transformers folder. "
                "Pick the transformers engine for it, or give a .gguf file."
            )
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise TeacherError(f"The llama.cpp engine is not installed: {INSTALL_HINT}.") from exc
        self.name = self.location.name
        self.threads = threads or default_threads()
        self.governor = ThreadGovernor(self.threads) if adapt and self.threads > 1 else None
        self.running_threads = self.threads  # what llama.cpp runs with now
        self.usage = Usage()
        self._fed_tokens = 0  # label reads' prompt tokens actually run
        started = time.perf_counter()
        self.weights, self.weights_path, self.weights_note = self._weights(weights)
        try:
            with _model_params(use_extra_bufts=uses_extra_buffers()):
                self.llm = Llama(model_path=str(self.weights_path), n_ctx=n_ctx, n_threads=self.threads,
                                 n_threads_batch=self.threads, verbose=False, seed=0)
        except Exception as exc:  # a corrupt or unsupported file: say which, keep the cause
            raise TeacherError(f"llama.cpp could not load the teacher model {self.location.weights}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        self.n_ctx = n_ctx
        self.n_vocab = self.llm.n_vocab()
        self.eos_ids = {int(self.llm.token_eos())} - {-1}
        meta = getattr(self.llm, "metadata", {}) or {}
        self.chat_template = meta.get("tokenizer.chat_template")
        self._pieces: list[bytes] | None = None
        self._stop_id_cache: dict[tuple[str, ...], frozenset[int]] = {}
        self.decoder = ParallelDecoder(self.llm._model, self.threads, sequences)
        self.sequences = self.decoder.sequences
        self._lock = threading.Lock()
        _LIVE.add(self)

    @property
    def decodes_together(self) -> bool:
        """Whether replies share decode batches: then a caller should hand over all its prompts in one call, since
        a call's last replies leave slots idle (a default round's 64 prompts took 25.0–25.9 s in one call, 28.0–32.9
        s in four calls of 16, on 2 cores)."""
        return self.sequences > 1

    def close(self) -> None:
        """Free the native contexts and the model (the teacher is unusable after)."""
        self.decoder.close()
        self.llm.close()

    @property
    def evaluated_prompt_tokens(self) -> int:
        """Prompt tokens actually run, replies' and label reads' (the rest came from a kept cache)."""
        return self.decoder.evaluated_prompt_tokens + self._fed_tokens

    def _weights(self, weights: str) -> tuple[str, Path, str]:
        """Which weights to load (`gguf_weights`): ("f16" or "file", the path, what it is in words). An F16 copy
        that cannot be written (read-only or full data folder) falls back to the file's own weights, and the note
        says why: the run goes on, only slower."""
        path = self.location.weights
        ftype = gguf_weights.type_name(gguf_weights.file_type(path))
        if gguf_weights.resolved_weights(weights, path) == "file":
            return "file", path, f"{ftype}, as the file stores them"
        try:
            return "f16", gguf_weights.f16_copy(path, threads=self.threads), f"F16, converted from the file's {ftype}"
        except OSError as exc:
            return "file", path, f"{ftype}, as the file stores them (no F16 copy: {exc})"

    @classmethod
    def cached(cls, model: str = DEFAULT_TEACHER, threads: int | None = None,
               weights: str = "auto", sequences: int = DEFAULT_SEQUENCES) -> "LlamaCppTeacher":
        """One loaded model per (model, threads, weights, sequences) per process."""
        key = (model or DEFAULT_TEACHER, threads, weights, sequences)
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = cls(model, threads=threads, weights=weights, sequences=sequences)
            return _CACHE[key]

    def __repr__(self) -> str:
        return f"LlamaCppTeacher(name={self.name!r}, weights={self.weights!r}, sequences={self.sequences})"

    # -- prompts -------------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """A completion prompt as is; chat messages through the GGUF's chat template (or a plain transcript)."""
        if isinstance(prompt, str):
            return prompt
        if self.chat_template:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            return env.from_string(self.chat_template).render(messages=prompt, add_generation_prompt=True, bos_token="", eos_token="")
        return plain_transcript(prompt)

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _piece(self, token: int) -> bytes:
        if self._pieces is None:
            self._pieces = [self.llm.detokenize([i], special=False) for i in range(self.n_vocab)]
        return self._pieces[token]

    def _stop_ids(self, stops: tuple[str, ...]) -> frozenset[int]:
        """Tokens whose text contains a single-character stop: such a token ends the reply (exact, cheap)."""
        if stops not in self._stop_id_cache:
            chars = [s.encode("utf-8") for s in stops if len(s) == 1]
            ids = set(self.eos_ids)
            if chars:
                ids |= {i for i in range(self.n_vocab) if any(c in self._piece(i) for c in chars)}
            self._stop_id_cache[stops] = frozenset(ids)
        return self._stop_id_cache[stops]

    # -- generation ----------------------------------------------------------------------------------------------
    def generate(
        self, prompts: list[Prompt], settings: GenerationSettings | None = None, progress: ProgressFn | None = None
    ) -> list[Completion]:
        """One completion per prompt, in order. Prompt i samples from a generator seeded by (settings.seed, i)."""
        settings = (settings or GenerationSettings()).validate()
        if not prompts:
            return []
        chat = not all(isinstance(p, str) for p in prompts)
        stops = settings.stops_for("chat" if chat else "completion")
        ids = [self.tokenize(self.render(p), special=not isinstance(p, str)) for p in prompts]
        results: list[Completion | None] = [None] * len(ids)
        for i, prompt in enumerate(ids):  # what cannot run is answered before anything does
            if not prompt:
                results[i] = Completion("", 0, 0, "error", error="The prompt is empty.")
            elif len(prompt) + settings.max_new_tokens > self.n_ctx:
                results[i] = Completion("", len(prompt), 0, "error", error=(
                    f"The prompt has {len(prompt)} tokens; with {settings.max_new_tokens} new ones it exceeds "
                    f"the llama.cpp context of {self.n_ctx} tokens."))
        order = sorted((i for i in range(len(ids)) if results[i] is None), key=lambda i: (ids[i], i))
        stop_ids = self._stop_ids(stops)
        long_stops = [x.encode("utf-8") for x in stops if len(x) > 1]
        tail_len = max((len(x) for x in long_stops), default=0) + 3
        done = [0]
        step = max(1, len(order) // 20)

        def take(reply: Reply, token: int) -> str | None:
            if token in self.eos_ids:
                return "stop"
            reply.new.append(token)
            if token in stop_ids:
                return "stop"
            if long_stops:
                tail = b"".join(self._piece(t) for t in reply.new[-tail_len:])
                if any(x in tail for x in long_stops):
                    return "stop"
            return None

        def on_done(reply: Reply, finish: str) -> None:
            text = self.llm.detokenize(reply.new, special=False).decode("utf-8", errors="replace")
            text, hit = truncate_at_stop(text, stops)
            results[reply.index] = Completion(text, len(reply.prompt), len(reply.new),
                                              "stop" if hit or finish == "stop" else "length")
            done[0] += 1
            if progress and (done[0] % step == 0 or done[0] == len(order)):
                progress(done[0] / len(order), f"teacher: {done[0]}/{len(order)} prompts")

        with self._lock:
            self.decoder.run(ids, order, settings, lambda z, ctx, rng: sample_token(z, ctx, settings, rng),
                             take, on_done, self._fit_threads)
        out = [c for c in results if c is not None]
        self.usage.add(out)
        return out

    def _logits(self) -> np.ndarray:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _fit_threads(self) -> None:
        """Run as many threads as the governor allows now (called before every evaluation; it looks at the
        machine at most every `gold.cpu.RECHECK_S`)."""
        if self.governor is None:
            return
        n = self.governor.threads()
        if n != self.running_threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self.llm.ctx, n, n)
            self.decoder.set_threads(n)
            self.running_threads = n

    def _feed(self, tokens: list[int]) -> None:
        """Evaluate `tokens` after what the context already holds that they share (the cached prefix)."""
        self._fit_threads()
        common = common_prefix_len(self.llm.input_ids[: self.llm.n_tokens], tokens)
        keep = min(common, len(tokens) - 1)  # at least one token is evaluated, so its logits are fresh
        self.llm.n_tokens = keep
        self.llm.eval(tokens[keep:])
        self._fed_tokens += len(tokens) - keep

    # -- scoring -------------------------------------------------------------------------------------------------
    def _bos(self) -> list[int]:
        """[BOS] when the GGUF says its model is run after one (Gemma), else [] (SmolLM2), as `LocalTeacher`."""
        bos = int(self.llm.token_bos())
        return [bos] if bos >= 0 and self.llm._model.add_bos_token() else []

    def label_loglik(self, prompts: Sequence[str], candidates: Sequence[str], prefix: str = "",
                     batch_size: int = 16, normalize: bool = False) -> np.ndarray:
        """Log-likelihood of each candidate continuation after each prompt, shape (len(prompts), len(candidates)),
        with `LocalTeacher.label_loglik`'s semantics: `prefix + prompt` encoded whole (after the BOS where the
        model uses one), each candidate's own tokens appended and summed (`normalize`: divided by their count).

        Why it is fast here: prompts run sorted, so the few-shot prefix they share stays in llama.cpp's key/value
        cache and only each row's own tokens are evaluated; a candidate's first token is read from the row's last
        logits, so single-token label words (most) cost no extra evaluation at all. `batch_size` is accepted for
        the protocol; llama.cpp evaluates a row's tokens in one batch of its own."""
        if not candidates:
            raise ValueError("label_loglik needs at least one candidate.")
        cand_ids = [self.tokenize(c) for c in candidates]
        if any(not c for c in cand_ids):
            raise ValueError("A candidate is empty: every candidate needs at least one token.")
        bos = self._bos()
        rows = []
        for p in prompts:
            ids = self.tokenize(prefix + p)
            rows.append(ids if ids[: len(bos)] == bos else bos + ids)
        if any(len(ids) <= len(bos) for ids in rows):
            raise ValueError("A prompt is empty and there is no prefix: the first candidate token has no context.")
        longest = max((len(ids) for ids in rows), default=0) + max(len(c) for c in cand_ids)
        if longest > self.n_ctx:
            raise TeacherError(f"A labeling prompt has {longest} tokens, more than the llama.cpp context of "
                               f"{self.n_ctx} tokens: use fewer or shorter examples.")
        scores = np.zeros((len(prompts), len(candidates)), dtype=np.float64)
        with self._lock:
            for i in sorted(range(len(rows)), key=lambda i: rows[i]):
                ids = rows[i]
                self._feed(ids)
                first = _log_softmax(self._logits())
                for k, cand in enumerate(cand_ids):
                    total = float(first[cand[0]])
                    if len(cand) > 1:
                        self.llm.n_tokens = len(ids)  # back to the row's end: the candidate's own tokens follow
                        for prev, token in zip(cand[:-1], cand[1:]):
                            self.llm.eval([prev])
                            total += float(_log_softmax(self._logits())[token])
                    scores[i, k] = total / len(cand) if normalize else total
                self.llm.n_tokens = len(ids)
        return scores

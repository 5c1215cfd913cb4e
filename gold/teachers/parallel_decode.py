"""Several replies decoded together on one llama.cpp context: what makes the llama.cpp teacher fast on a CPU.

One reply at a time, every new token is a matrix-vector product over all the weights: memory-bound, and with F16
weights (`gguf_weights`) slower than with Q4_1. Decoding several sequences in one `llama_decode` turns it into a
small matrix-matrix product that runs on llama.cpp's batched kernels: on 2 cores the embedded teacher's F16 copy
decodes 4 sequences at ~2× the tokens/s of one (`bench/teacher_sequences.py`).

The decoder is continuous: a slot whose reply ended takes the next prompt in the same step as the others' next
tokens, so replies of different lengths do not wait for the longest. Its key/value cache outlives a call, and a
new prompt starts from the longest prefix any slot already evaluated (`llama_memory_seq_cp` shares those cells),
so prompts sorted next to each other (same instruction, same drawn seeds) and a reply continued with its next
line evaluate only what is new. Every prompt samples from its own generator, so a reply does not depend on which
prompts ran beside it (up to the kernels' rounding, which differs with the batch's size).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from gold.teachers.base import GenerationSettings, common_prefix_len

# A prompt that could start from a prefix still being evaluated in this step waits one step for it when that
# saves at least this many tokens (prompts drawn alike share hundreds; the instruction alone, a few dozen).
DEFER_FOR_TOKENS = 32
CELL_ROUND = 256  # context sizes are rounded up to this, so a slightly longer call does not rebuild it


@dataclass
class Reply:
    """One prompt's reply while it is decoded."""

    index: int
    prompt: list[int]
    rng: np.random.Generator
    new: list[int] = field(default_factory=list)
    next_token: int | None = None  # sampled, waiting to be evaluated in the next step


@dataclass
class Slot:
    """One llama.cpp sequence: the tokens its cache holds (`evaluated` of them already run) and its reply."""

    tokens: list[int] = field(default_factory=list)
    evaluated: int = 0
    reply: Reply | None = None


SampleFn = Callable[[np.ndarray, list[int], np.random.Generator], int]


class ParallelDecoder:
    """`sequences` slots on a context of their own (the teacher's main context keeps the label reads' prefix)."""

    def __init__(self, model: Any, threads: int, sequences: int):
        self.model = model  # llama_cpp._internals.LlamaModel, shared with the teacher's main context
        self.threads = threads
        self.sequences = max(1, int(sequences))
        self.ctx: Any = None
        self.per_slot = 0  # tokens each slot can hold in the current context
        self.slots: list[Slot] = []
        self.evaluated_prompt_tokens = 0
        self.steps = 0  # llama_decode calls: one per token of the longest reply in flight, not per reply

    def set_threads(self, n: int) -> None:
        self.threads = n
        if self.ctx is not None:
            self.ctx.set_n_threads(n, n)

    def _ensure_context(self, need: int) -> None:
        """A context where every slot can hold `need` tokens; rebuilt (cache dropped) only when it grows."""
        if self.ctx is not None and need <= self.per_slot:
            return
        import llama_cpp
        from llama_cpp._internals import LlamaContext

        self.close()
        per_slot = -(-need // CELL_ROUND) * CELL_ROUND
        p = llama_cpp.llama_context_default_params()
        p.n_ctx = per_slot * self.sequences
        p.n_batch = p.n_ctx  # one step may start every slot's prompt beside the others' next tokens
        p.n_ubatch = min(512, p.n_ctx)
        p.n_seq_max = self.sequences
        p.kv_unified = True  # one pool of cells, so slots share a prefix's cells instead of copying them
        p.n_threads = p.n_threads_batch = self.threads
        self.ctx = LlamaContext(model=self.model, params=p, verbose=False)
        self.per_slot = per_slot
        self.slots = [Slot() for _ in range(self.sequences)]

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None
            self.per_slot = 0
            self.slots = []

    def _source(self, prompt: list[int]) -> tuple[int, int, int]:
        """(slot, evaluated tokens it shares with `prompt`, tokens shared counting those still queued)."""
        best, best_len, queued_len = -1, 0, 0
        for j, slot in enumerate(self.slots):
            n = common_prefix_len(slot.tokens, prompt)
            queued_len = max(queued_len, n)
            n = min(n, slot.evaluated)
            if n > best_len:
                best, best_len = j, n
        return best, best_len, queued_len

    def _start(self, s: int, reply: Reply, batch: list[tuple[int, int, int, bool]]) -> None:
        """Put `reply`'s prompt in slot `s`, from the longest evaluated prefix any slot holds."""
        prompt = reply.prompt
        src, shared, _ = self._source(prompt)
        shared = min(shared, len(prompt) - 1)  # the last prompt token is run, so its logits are fresh
        slot = self.slots[s]
        if src == s or shared == 0:
            keep = shared if src == s else 0
            self.ctx.kv_cache_seq_rm(s, keep, -1)
        else:
            self.ctx.kv_cache_seq_rm(s, 0, -1)
            self.ctx.kv_cache_seq_cp(src, s, 0, shared)
            keep = shared
        slot.tokens, slot.evaluated, slot.reply = list(prompt[:keep]), keep, reply
        for pos in range(keep, len(prompt)):
            batch.append((prompt[pos], pos, s, pos == len(prompt) - 1))
        slot.tokens.extend(prompt[keep:])
        self.evaluated_prompt_tokens += len(prompt) - keep

    def run(self, prompts: list[list[int]], order: list[int], settings: GenerationSettings,
            sample: SampleFn, take: Callable[[Reply, int], str | None],
            on_done: Callable[[Reply, str], None], fit_threads: Callable[[], None]) -> None:
        """Decode every prompt in `order` to its end. `sample(logits, context, rng)` picks a token;
        `take(reply, token)` adds it to the reply and says whether the reply ended there ("stop"); `on_done(reply,
        finish)` takes a finished reply ("stop" or "length", after `max_new_tokens`)."""
        import llama_cpp

        if not order:
            return
        self._ensure_context(max(len(prompts[i]) for i in order) + settings.max_new_tokens)
        for s, slot in enumerate(self.slots):  # a call that ended in an exception leaves replies half done: drop
            if slot.reply is not None or len(slot.tokens) > slot.evaluated:
                slot.reply, slot.tokens = None, slot.tokens[:slot.evaluated]
                self.ctx.kv_cache_seq_rm(s, slot.evaluated, -1)
        pending = deque(order)
        raw = llama_cpp.llama_batch_init(self.per_slot * self.sequences, 0, 1)
        try:
            while True:
                batch: list[tuple[int, int, int, bool]] = []
                for s, slot in enumerate(self.slots):  # replies in flight: their next token
                    r = slot.reply
                    if r is not None and r.next_token is not None:
                        batch.append((r.next_token, len(slot.tokens), s, True))
                        slot.tokens.append(r.next_token)
                        r.next_token = None
                for s, slot in enumerate(self.slots):  # free slots: the next prompts
                    if slot.reply is not None or not pending:
                        continue
                    i = pending[0]
                    _, ready, queued = self._source(prompts[i])
                    if batch and queued - ready >= DEFER_FOR_TOKENS:
                        break  # its prefix is being evaluated in this step: start it in the next
                    pending.popleft()
                    rng = np.random.default_rng([settings.seed, i])
                    self._start(s, Reply(i, prompts[i], rng), batch)
                if not batch:
                    return
                fit_threads()
                self._decode(raw, batch)
                for k, (_, _, s, wants) in enumerate(batch):
                    if not wants:
                        continue
                    slot = self.slots[s]
                    slot.evaluated = len(slot.tokens)
                    r = slot.reply
                    assert r is not None
                    ptr = llama_cpp.llama_get_logits_ith(self.ctx.ctx, k)
                    logits = np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab(),))
                    token = sample(logits, r.prompt + r.new, r.rng)
                    end = take(r, token)
                    if end is None and len(r.new) >= settings.max_new_tokens:
                        end = "length"
                    if end is not None:
                        on_done(r, end)
                        slot.reply = None
                    else:
                        r.next_token = token
        finally:
            llama_cpp.llama_batch_free(raw)

    def _decode(self, raw: Any, batch: list[tuple[int, int, int, bool]]) -> None:
        import llama_cpp

        for k, (token, pos, seq, logits) in enumerate(batch):
            raw.token[k], raw.pos[k], raw.n_seq_id[k], raw.logits[k] = token, pos, 1, logits
            raw.seq_id[k][0] = seq
        raw.n_tokens = len(batch)
        self.steps += 1
        code = llama_cpp.llama_decode(self.ctx.ctx, raw)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")

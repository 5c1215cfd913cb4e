"""How many replies should the llama.cpp teacher decode together? Side by side in one invocation, per weights
(the file's Q4_1 and the F16 copy, `teacher.gguf_weights`), thread count and number of sequences:

  raw          llama.cpp's own decode tokens/s with that many sequences in one batch, each after a 140-token
               prompt (no sampling, nothing else): the limit of the machine for that batch;
  generate     the teacher's `generate` on 32 real generation prompts (SST-2 + TREC, the product's sampling
               recipe, one sample per prompt) with `sequences` slots: samples/s, completion tokens/s, tokens per
               reply, the share that ended at the stop, distinct replies; best of `--repeats` passes;
  achieved     generate's tokens/s over the best raw rate of its weights and threads (the teacher's decode against
               llama.cpp's own best on this machine).

Usage:
  .venv/bin/python bench/teacher_sequences.py                                 # file,f16 x 1,2 threads x 1,2,4,8
  .venv/bin/python bench/teacher_sequences.py --weights f16 --threads 2 --sequences 1,4

Prints a table and writes bench/results/teacher_sequences.json.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS, machine, machine_line, write_json  # noqa: I001


def raw_decode_rate(teacher: Any, sequences: int, prompt_tokens: int = 140, steps: int = 32) -> float:
    """llama.cpp's decode tokens/s for `sequences` sequences in one batch, after a prompt each (best of two)."""
    import llama_cpp
    from llama_cpp._internals import LlamaContext

    p = llama_cpp.llama_context_default_params()
    p.n_ctx = sequences * (prompt_tokens + steps + 8)
    p.n_batch, p.n_ubatch, p.n_seq_max, p.kv_unified = p.n_ctx, min(512, p.n_ctx), sequences, True
    p.n_threads = p.n_threads_batch = teacher.threads
    ctx = LlamaContext(model=teacher.llm._model, params=p, verbose=False)
    prompt = teacher.tokenize("Here are some examples of movie reviews, some negative and some positive. " * 12)
    prompt = prompt[:prompt_tokens]
    batch = llama_cpp.llama_batch_init(p.n_ctx, 0, 1)

    def submit(items: list[tuple[int, int, int, bool]]) -> None:
        for k, (tok, pos, seq, logits) in enumerate(items):
            batch.token[k], batch.pos[k], batch.n_seq_id[k], batch.logits[k] = tok, pos, 1, logits
            batch.seq_id[k][0] = seq
        batch.n_tokens = len(items)
        if llama_cpp.llama_decode(ctx.ctx, batch):
            raise RuntimeError("llama_decode failed")

    best = float("inf")
    try:
        for _ in range(2):
            llama_cpp.llama_memory_clear(ctx.memory, True)
            for s in range(sequences):
                submit([(t, j, s, j == len(prompt) - 1) for j, t in enumerate(prompt)])
            t0 = time.perf_counter()
            for k in range(steps):
                submit([(prompt[-1], len(prompt) + k, s, True) for s in range(sequences)])
            best = min(best, time.perf_counter() - t0)
    finally:
        llama_cpp.llama_batch_free(batch)
        ctx.close()
    return sequences * steps / best


def generation_prompts(n: int = 32) -> list[str]:
    from gold import prompts
    from gold.examples import example_spec

    out: list[str] = []
    for key in ("sst2", "trec"):
        reqs = prompts.plan_requests(example_spec(key), n // 2, rng=random.Random(0))
        out += [str(r.prompt) for r in reqs]
    return out[:n]


def measure_generate(teacher: Any, texts: list[str], repeats: int) -> dict[str, Any]:
    from gold.teachers.base import GenerationSettings

    best, outs = float("inf"), []
    for rep in range(repeats):
        t0 = time.perf_counter()
        outs = teacher.generate(texts, GenerationSettings(seed=rep))
        best = min(best, time.perf_counter() - t0)
    tokens = sum(c.completion_tokens for c in outs)
    return {"seconds": round(best, 2), "samples_per_s": round(len(texts) / best, 2),
            "tok_s": round(tokens / best, 1), "tokens_per_reply": round(tokens / len(outs), 1),
            "ended_at_stop": round(sum(c.finish_reason == "stop" for c in outs) / len(outs), 2),
            "distinct": round(len({c.text for c in outs}) / len(outs), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="file,f16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--sequences", default="1,2,4,8")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "teacher_sequences.json"))
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gold.models import DEFAULT_TEACHER
    from gold.teachers.llamacpp import LlamaCppTeacher, available

    if not available():
        sys.exit("error: the llama.cpp engine is not installed (`make llama`)")
    texts = generation_prompts(a.prompts)
    rows: list[dict[str, Any]] = []
    for weights in [w.strip() for w in a.weights.split(",") if w.strip()]:
        for threads in [int(t) for t in a.threads.split(",")]:
            group = []
            for seqs in [int(s) for s in a.sequences.split(",")]:
                teacher = LlamaCppTeacher(DEFAULT_TEACHER, threads=threads, adapt=False, weights=weights,
                                          sequences=seqs)
                row = {"weights": weights, "threads": threads, "sequences": seqs,
                       "raw_decode_tok_s": round(raw_decode_rate(teacher, seqs), 1),
                       **measure_generate(teacher, texts, a.repeats)}
                teacher.decoder.close()
                del teacher
                print(f"{weights:>4} {threads}t x{seqs}: raw {row['raw_decode_tok_s']:6.1f} tok/s, generate "
                      f"{row['samples_per_s']:5.2f} samples/s {row['tok_s']:6.1f} tok/s", flush=True)
                group.append(row)
            best_raw = max(r["raw_decode_tok_s"] for r in group)
            one = group[0]
            for r in group:
                r["share_of_best_raw"] = round(r["tok_s"] / best_raw, 3)
                r["samples_over_first"] = round(r["samples_per_s"] / one["samples_per_s"], 2)
            rows += group
    info = machine()
    data = {"machine": machine_line(info), "machine_info": info, "prompts": len(texts), "repeats": a.repeats,
            "results": rows, "command": "bench/teacher_sequences.py " + " ".join(sys.argv[1:])}
    print_table(data)
    write_json(Path(a.out), data)
    print(f"\n{data['machine']}; written {a.out}")


def print_table(data: dict[str, Any]) -> None:
    cols = ["weights", "threads", "sequences", "raw_decode_tok_s", "samples_per_s", "samples_over_first", "tok_s",
            "share_of_best_raw", "tokens_per_reply", "ended_at_stop", "distinct"]
    print("\n" + "".join(f"{c:>19}" for c in cols))
    for r in data["results"]:
        print("".join(f"{str(r[c]):>19}" for c in cols))


if __name__ == "__main__":
    main()

"""A round's generation prompts handed to the llama.cpp teacher (replies decoded together) in one call, against
batches of `teacher.batch_size` (16): at each batch's end its last replies leave the other slots idle.

Usage: .venv/bin/python bench/teacher_calls.py [--prompts 64] [--repeats 2] [--threads 2]

The same 64 SST-2 prompts, as a default round plans them, each way in turn (`--repeats` passes), through
`prompts.run_requests` as the generate step calls it. Prints a table and writes bench/results/teacher_calls.json.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from common import RESULTS, machine, machine_line, write_json  # noqa: I001

from gold import prompts
from gold.examples import example_spec
from gold.specs import GoldSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "teacher_calls.json"))
    a = ap.parse_args()
    from gold.teachers.llamacpp import LlamaCppTeacher

    settings = GoldSettings()
    teacher = LlamaCppTeacher(threads=a.threads, sequences=settings.teacher.parallel_sequences)
    requests = prompts.plan_requests(example_spec("sst2"), a.prompts, style="completion", rng=random.Random(0))
    base = settings.teacher.generation_settings(seed=1)
    prompts.run_requests(teacher, requests[:8], base)  # warm: the context made, the few-shot prefix evaluated
    ways = {"one call": a.prompts, f"batches of {settings.teacher.batch_size}": settings.teacher.batch_size}
    passes: dict[str, list[dict]] = {k: [] for k in ways}
    for _ in range(a.repeats):
        for name, size in ways.items():
            t0 = time.perf_counter()
            tokens = 0
            for start in range(0, a.prompts, size):
                out = prompts.run_requests(teacher, requests[start:start + size], base.with_(seed=base.seed + start))
                tokens += sum(c.completion_tokens for c in out)
            seconds = time.perf_counter() - t0
            passes[name].append({"seconds": round(seconds, 2), "completion_tokens": tokens,
                                 "tokens_per_s": round(tokens / seconds, 1)})
    rows = {name: {"best_s": min(p["seconds"] for p in ps), "best_tokens_per_s": max(p["tokens_per_s"] for p in ps),
                   "passes": ps} for name, ps in passes.items()}
    one, batched = rows["one call"], rows[f"batches of {settings.teacher.batch_size}"]
    print(f"{'how':<16} {'best s':>7} {'tok/s':>7}   passes (s)")
    for name, r in rows.items():
        print(f"{name:<16} {r['best_s']:>7.1f} {r['best_tokens_per_s']:>7.1f}   "
              + ", ".join(str(p["seconds"]) for p in r["passes"]))
    ratio = one["best_tokens_per_s"] / batched["best_tokens_per_s"]
    print(f"one call: {ratio:.2f}x the completion tokens/s of batches; {a.prompts} prompts, "
          f"{settings.teacher.parallel_sequences} sequences, {a.threads} threads\n{machine_line(machine())}")
    write_json(Path(a.out),
               {"prompts": a.prompts, "threads": a.threads, "sequences": settings.teacher.parallel_sequences,
                "rows": rows, "one_call_over_batches_tok_s": round(ratio, 3),
                "machine": machine_line(machine()), "machine_info": machine()})


if __name__ == "__main__":
    main()

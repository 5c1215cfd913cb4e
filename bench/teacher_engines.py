"""The local teacher's two engines side by side: transformers (batched, the default) and llama.cpp, on the same
embedded GGUF, the same generation prompts (SST-2 and TREC, as a run plans them) and the same sampling recipe.

Usage: .venv/bin/python bench/teacher_engines.py [--prompts 32] [--threads 1,2] [--repeats 2]

For each thread count, the engines take turns (transformers, llama.cpp, transformers, …) `--repeats` times, so a
neighbour's load falls on both; the table keeps each engine's best pass. Reported per engine: samples/s,
completion tokens/s, load seconds, and what the replies look like (mean tokens, share that ended at the stop,
distinct share) so a faster engine that writes different data would show. Writes
bench/results/teacher_engines.json.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from common import RESULTS, ROOT, machine, machine_line, write_json  # noqa: I001

from gold import prompts
from gold.examples import example_spec
from gold.teachers.base import GenerationSettings


def generation_prompts(n: int) -> list[str]:
    """n/2 SST-2 and n/2 TREC completion prompts, planned the way a round plans them."""
    out: list[str] = []
    for key in ("sst2", "trec"):
        reqs = prompts.plan_requests(example_spec(key), n // 2, style="completion", rng=random.Random(0))
        out += [r.prompt for r in reqs]
    return out


def load(engine: str, threads: int):
    t0 = time.perf_counter()
    if engine == "transformers":
        from gold.teachers.local import LocalTeacher

        teacher = LocalTeacher(threads=threads)
    else:
        from gold.teachers.llamacpp import LlamaCppTeacher

        teacher = LlamaCppTeacher(threads=threads, adapt=False)  # the count asked for, whatever the load
    return teacher, time.perf_counter() - t0


def one_pass(teacher, texts: list[str], settings: GenerationSettings) -> dict[str, Any]:
    t0 = time.perf_counter()
    comps = teacher.generate(texts, settings)
    secs = time.perf_counter() - t0
    tokens = sum(c.completion_tokens for c in comps)
    return {
        "seconds": round(secs, 2), "samples_per_s": round(len(comps) / secs, 3),
        "tokens_per_s": round(tokens / secs, 1),
        "mean_tokens": round(tokens / len(comps), 1),
        "stopped_share": round(sum(c.finish_reason == "stop" for c in comps) / len(comps), 3),
        "distinct_share": round(len({c.text.strip() for c in comps}) / len(comps), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32, help="generation prompts (half SST-2, half TREC)")
    ap.add_argument("--threads", default="1,2", help="thread counts to measure, comma-separated")
    ap.add_argument("--repeats", type=int, default=2, help="alternating passes per engine (the best is kept)")
    ap.add_argument("--batch", type=int, default=16, help="the transformers engine's batch size (the product's)")
    a = ap.parse_args()
    texts = generation_prompts(a.prompts)
    settings = GenerationSettings(seed=0, batch_size=a.batch)
    out: dict[str, Any] = {"prompts": len(texts), "settings": settings.to_dict(), "by_threads": {}}
    started = time.perf_counter()
    for threads in [int(t) for t in a.threads.split(",")]:
        teachers = {name: load(name, threads) for name in ("transformers", "llama.cpp")}
        for teacher, _ in teachers.values():
            teacher.generate(texts[:2], settings)  # warm-up (first-call allocations, the stop-token table)
        passes: dict[str, list[dict[str, Any]]] = {name: [] for name in teachers}
        for _ in range(a.repeats):
            for name, (teacher, _) in teachers.items():
                passes[name].append(one_pass(teacher, texts, settings))
        row = {}
        for name, (_, load_s) in teachers.items():
            best = max(passes[name], key=lambda p: p["samples_per_s"])
            row[name] = {**best, "load_s": round(load_s, 2), "passes": passes[name]}
        ratio = row["llama.cpp"]["samples_per_s"] / row["transformers"]["samples_per_s"]
        row["llama_over_transformers"] = round(ratio, 2)
        out["by_threads"][str(threads)] = row
        del teachers
    info = machine()
    out["machine"] = machine_line(info)
    out["machine_info"] = info
    out["seconds"] = round(time.perf_counter() - started)
    print_table(out)
    path = RESULTS / "teacher_engines.json"
    write_json(path, out)
    print(f"\n{out['machine']}; {out['seconds']} s; written {path.relative_to(ROOT)}")


def print_table(out: dict[str, Any]) -> None:
    print(f"\n{out['prompts']} generation prompts (SST-2 + TREC), temperature {out['settings']['temperature']}, "
          f"top-p {out['settings']['top_p']}, repetition penalty {out['settings']['repetition_penalty']}")
    print(f"{'threads':<8} {'engine':<13} {'samples/s':>9} {'tok/s':>7} {'load s':>7} {'tokens':>7} "
          f"{'stopped':>8} {'distinct':>8}")
    for threads, row in out["by_threads"].items():
        for name in ("transformers", "llama.cpp"):
            r = row[name]
            print(f"{threads:<8} {name:<13} {r['samples_per_s']:>9.2f} {r['tokens_per_s']:>7.1f} {r['load_s']:>7.1f} "
                  f"{r['mean_tokens']:>7.1f} {r['stopped_share']:>8.2f} {r['distinct_share']:>8.2f}")
        print(f"{threads:<8} llama.cpp / transformers: {row['llama_over_transformers']}×")


if __name__ == "__main__":
    main()

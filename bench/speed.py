"""How fast each part of GOLD Studio runs, measured side by side in one process on the embedded models.

Usage: .venv/bin/python bench/speed.py [--quick] [--llama-cpp] [--skip explore,umap10k]

Rows (targets in brackets):
  teacher      generation tokens/s and samples/s at batch 1 and batched, on the SST-2 generation prompts
               (teacher_batched_over_single ≥ 4); with --llama-cpp and llama-cpp-python installed, the same
               prompts through the llama.cpp engine (llama_cpp_over_batched);
  student      training examples/s on SST-2 texts (student_train_ex_per_s ≥ 75 on 2 cores) and inference
               examples/s (student_infer_ex_per_s);
  latency      one example at a time: the teacher classifying few-shot (label log-likelihoods) against the
               student's predict (student_over_teacher_speedup ≥ 100);
  umap         the map's layout of 2,000 and 10,000 MiniLM embeddings, cold (first call: numba compiles) and warm;
  round        one full GOLD round with the product's defaults (64 samples + 16 probes, read back, train,
               probe, score, select, measure) through the engine, timed as a worker runs it: the round's own
               path (round_64_s ≤ 90), then its map, which a worker draws while the next round runs
               (round_64_map_s); the seconds of each step (round_64_steps_s);
  explore      the Explore page's server-side render with 10,000 samples (explore_10k_render_s ≤ 2), via AppTest;
  memory       the process's peak RSS after the round: what a worker holding both models needs (peak_rss_mb).
On a machine with a GPU the teacher and student run there and the same keys hold the GPU figures.
Prints a table and writes bench/results/speed.json (`--quick`: speed_quick.json).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from typing import Any

from common import RESULTS, ROOT, machine, machine_line, write_json  # noqa: I001

from gold.examples import example_spec

TARGETS = {"teacher_batched_over_single": (">=", 4), "student_train_ex_per_s": (">=", 75),
           "student_over_teacher_speedup": (">=", 100), "round_64_s": ("<=", 90), "explore_10k_render_s": ("<=", 2)}


def timed(fn) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_teacher(out: dict, prompts_n: int, batch: int) -> None:
    from gold import prompts
    from gold.teachers.base import GenerationSettings
    from gold.teachers.local import LocalTeacher

    teacher, load_s = timed(LocalTeacher.cached)
    out["teacher_load_s"] = round(load_s, 1)
    task = example_spec("sst2")
    reqs = prompts.plan_requests(task, prompts_n, style="completion", rng=random.Random(0))
    texts = [r.prompt for r in reqs]
    settings = GenerationSettings(seed=0, batch_size=1)
    teacher.generate(texts[:2], settings)  # warm-up
    rows = {}
    for name, bs, sample in (("single", 1, texts[: max(4, prompts_n // 4)]), ("batched", batch, texts)):
        comps, secs = timed(lambda: teacher.generate(sample, settings.with_(batch_size=bs)))
        tokens = sum(c.completion_tokens for c in comps)
        rows[name] = {"batch": bs, "prompts": len(sample), "tokens_per_s": tokens / secs, "samples_per_s": len(sample) / secs}
    out["teacher"] = rows
    out["teacher_batched_over_single"] = round(rows["batched"]["tokens_per_s"] / rows["single"]["tokens_per_s"], 2)


def bench_llama_cpp(out: dict, prompts_n: int) -> None:
    """The same prompts through the product's llama.cpp engine (bench/teacher_engines.py compares the two in depth)."""
    from gold.teachers import llamacpp

    if not llamacpp.available():
        out["llama_cpp"] = f"not installed ({llamacpp.INSTALL_HINT})"
        return
    import torch

    from gold import prompts
    from gold.teachers.base import GenerationSettings

    teacher = llamacpp.LlamaCppTeacher(threads=torch.get_num_threads())
    reqs = prompts.plan_requests(example_spec("sst2"), prompts_n, style="completion", rng=random.Random(0))
    texts = [r.prompt for r in reqs]
    teacher.generate(texts[:2], GenerationSettings(seed=0, batch_size=8))  # warm-up
    comps, secs = timed(lambda: teacher.generate(texts, GenerationSettings(seed=0, batch_size=8)))
    tokens = sum(c.completion_tokens for c in comps)
    out["llama_cpp"] = {"batch": 1, "prompts": len(texts), "tokens_per_s": tokens / secs, "samples_per_s": len(texts) / secs}
    if isinstance(out.get("teacher"), dict):
        out["llama_cpp_over_batched"] = round(out["llama_cpp"]["samples_per_s"] / out["teacher"]["batched"]["samples_per_s"], 2)


def sst2_texts() -> tuple[list[str], list[str], list]:
    task = example_spec("sst2")
    return [e.inputs["text"] for e in task.eval_set], [e.output for e in task.eval_set], task


def bench_student(out: dict, steps: int) -> None:
    from gold.students.base import TrainExample, TrainingArgs
    from gold.students.classifier import ClassifierStudent
    from gold.students.training import steps_examples

    texts, labels, task = sst2_texts()
    student = ClassifierStudent(task.labels)
    examples = [TrainExample(t, y) for t, y in zip(texts, labels)]
    args = TrainingArgs(epochs=1, min_steps=steps, max_steps=steps, batch_size=16, seed=0, loss="ce")
    student.fit(examples, TrainingArgs(epochs=1, min_steps=2, max_steps=2, batch_size=16, loss="ce"))  # warm-up
    report, secs = timed(lambda: student.fit(examples, args))
    out["student_train_ex_per_s"] = round(steps_examples(len(examples), 16, report.steps) / secs, 1)
    student.predict(texts[:32])
    _, secs = timed(lambda: student.predict(texts))
    out["student_infer_ex_per_s"] = round(len(texts) / secs, 1)
    out["_student"] = student


def bench_latency(out: dict, n: int) -> None:
    """Per-example latency, one example at a time, teacher few-shot vs student."""
    from gold.teachers import fewshot
    from gold.teachers.local import LocalTeacher

    task = example_spec("sst2")
    rows = task.eval_set[:n]
    teacher, student = LocalTeacher.cached(), out["_student"]
    fewshot.classify(teacher, task, rows[:1])  # warm-up
    t_teacher = [timed(lambda r=r: fewshot.classify(teacher, task, [r]))[1] for r in rows]
    student.predict([rows[0].inputs["text"]])
    t_student = [timed(lambda r=r: student.predict([r.inputs["text"]]))[1] for r in rows]
    out["teacher_latency_ms"] = round(1000 * statistics.median(t_teacher), 1)
    out["student_latency_ms"] = round(1000 * statistics.median(t_student), 2)
    out["student_over_teacher_speedup"] = round(statistics.median(t_teacher) / statistics.median(t_student), 1)


def bench_umap(out: dict, sizes: list[int]) -> None:
    from gold.maps import get_encoder, layout_2d

    texts, _, _ = sst2_texts()
    encoder = get_encoder()
    for n in sizes:
        many = [f"{texts[i % len(texts)]} ({i})" for i in range(n)]
        vectors, secs = timed(lambda: encoder.encode(many))
        out[f"embed_{n // 1000}k_s"] = round(secs, 1)
        _, cold = timed(lambda: layout_2d(vectors, seed=0))
        _, warm = timed(lambda: layout_2d(vectors, seed=1))
        out[f"umap_{n // 1000}k_cold_s"] = round(cold, 2)
        out[f"umap_{n // 1000}k_warm_s"] = round(warm, 2)


def bench_round(out: dict) -> None:
    """The default round as the worker runs it. The worker draws a round's map in the background while the next
    round runs (`RunHooks(background=True)`), so the round's own path is what a user waits on between rounds; the map
    is timed after it, on its own."""
    from gold.context import RunContext
    from gold.loop import RunHooks, draw_map, execute_run
    from gold.specs import GoldSettings
    from gold.store import Store

    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        task_id = store.create_task(example_spec("sst2"))
        settings = GoldSettings(rounds=1, samples_per_round=64, probe_size=16, seed=0)
        run_id = store.create_run(task_id, settings.to_dict(), name="bench")
        store.claim_run("bench", only=[run_id])
        _, secs = timed(lambda: execute_run(RunContext(store, run_id, "bench"), RunHooks(draw_maps=False)))
        _, map_secs = timed(lambda: draw_map(store, run_id, 1, settings.seed))
        m = store.rounds(run_id)[0].metrics
        out["round_64_s"] = round(secs, 1)
        out["round_64_map_s"] = round(map_secs, 1)
        out["round_64_steps_s"] = dict(m.step_seconds or {})
        out["round_64_kept"] = m.kept
        store.close()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def bench_explore(out: dict) -> None:
    import explore_speed

    r = explore_speed.measure(10_000, reruns=3)
    out["explore_10k_render_s"] = r["render_warm_s"]
    out["explore_10k_first_render_s"] = r["render_first_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer prompts and steps, no 10k UMAP")
    ap.add_argument("--llama-cpp", action="store_true", help="also time the GGUF through llama-cpp-python")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: teacher, student, latency, umap, "
                                               "umap10k, round, explore")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    prompts_n, steps, lat_n = (16, 12, 10) if a.quick else (32, 30, 30)
    if a.quick:
        skip.add("umap10k")
    out: dict[str, Any] = {}
    started = time.perf_counter()
    parts = [("teacher", lambda: bench_teacher(out, prompts_n, 16)),
             ("llama_cpp", lambda: bench_llama_cpp(out, prompts_n) if a.llama_cpp else None),
             ("student", lambda: bench_student(out, steps)),
             ("latency", lambda: bench_latency(out, lat_n) if "_student" in out else None),
             ("umap", lambda: bench_umap(out, [2000] + ([] if "umap10k" in skip else [10_000]))),
             ("round", lambda: bench_round(out)),
             ("explore", lambda: bench_explore(out))]
    for name, fn in parts:
        if name in skip:
            continue
        print(f"… {name}", flush=True)
        fn()
    out.pop("_student", None)
    info = machine()
    out["machine"] = machine_line(info)
    out["machine_info"] = info
    out["seconds"] = round(time.perf_counter() - started)
    print_table(out)
    path = RESULTS / ("speed_quick.json" if a.quick else "speed.json")
    write_json(path, out)
    print(f"\n{out['machine']}; {out['seconds']} s; written {path.relative_to(ROOT)}")


def print_table(out: dict[str, Any]) -> None:
    print(f"\n{'measure':<32} {'value':>10}  target")
    for key, value in out.items():
        if isinstance(value, (int, float)) and not key.startswith("machine"):
            target = TARGETS.get(key)
            mark = ""
            if target:
                ok = value >= target[1] if target[0] == ">=" else value <= target[1]
                mark = f"{target[0]} {target[1]}  {'met' if ok else 'MISSED'}"
            print(f"{key:<32} {value:>10}  {mark}")
    for name in ("teacher", "llama_cpp"):
        rows = out.get(name)
        if isinstance(rows, dict):
            for label, r in (rows.items() if "batch" not in rows else [("batch 1", rows)]):
                if isinstance(r, dict):
                    print(f"{name + ' ' + label:<32} {r['tokens_per_s']:>8.1f} tok/s  {r['samples_per_s']:.2f} samples/s "
                          f"(batch {r['batch']}, {r['prompts']} prompts)")
        elif rows:
            print(f"{name:<32} {rows}")


if __name__ == "__main__":
    main()

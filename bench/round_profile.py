"""Where a GOLD round's seconds go: one round with the product's defaults (64 samples + 16 probes, SST-2), step by
step, for each teacher engine and thread count, side by side in one invocation, with each step's throughput next
to what this machine can do at most.

Usage:
  .venv/bin/python bench/round_profile.py                          # engines transformers,llama.cpp x threads 1,2
  .venv/bin/python bench/round_profile.py --engines auto --threads 2
  .venv/bin/python bench/round_profile.py --engines auto --threads 2 --samples-per-prompt 1,4
  .venv/bin/python bench/round_profile.py --engines auto --threads 2 --prompts-per-draw 1,4
  .venv/bin/python bench/round_profile.py --engines transformers,auto --threads 2 --precisions fp32,auto
  .venv/bin/python bench/round_profile.py --engines transformers,auto --threads 2 --gguf-weights file,auto
  .venv/bin/python bench/round_profile.py --engines transformers,auto --threads 2 --sequences 1,4

A configuration is an engine, a thread count, the teacher's samples per prompt, its prompts per draw of examples,
the student's training precision, the weights llama.cpp runs the GGUF with (`teacher.gguf_weights`: the file's
Q4_1, or its F16 copy) and the replies it decodes together (`teacher.parallel_sequences`); the transformers
engine ignores the last two. Ratios (`round_over_first`, `critical_over_first`) are against the first configuration listed.
Each configuration runs in a child process of its own (fresh models, its own peak memory), one after the other, so
the ratios between them are measured under the same conditions. Per configuration:

  steps        wall seconds of generate, label, train, probe, score, select, measure (the loop's own
               `step_seconds`) and of the map drawn after the round (the worker's hook), `round_s`, their sum, and
               `critical_s`, the round without the map (the worker draws it in the background while the next
               round runs);
  roofline     the limits the steps are held against, measured here with the same threads:
               - matmul GFLOP/s: torch fp32 (and bf16) matrix products of the student's shapes (MiniLM: a batch
                 of 16 texts of ~32 tokens through the 384→384, 384→1536 and 1536→384 projections);
               - llama.cpp decode tokens/s: the teacher's GGUF (in the configuration's weights) evaluating one
                 token at a time after a few-shot prompt, nothing else (llama.cpp's own best for a single sequence
                 on this machine), the same with the configuration's number of sequences in one batch
                 (`llama_batch_decode_tok_s`, `bench/teacher_sequences.py`), and evaluating a 128-token prompt in
                 one batch (what each prompt token of a sample costs);
  achieved     the student's training GFLOP/s (6 × its non-embedding parameters × tokens + attention, over the
               examples the optimizer saw) as a share of the fp32 matmul rate, and of the bf16 one when it trained
               in bf16, over the whole train step and over its optimizer steps alone (`train_steps_*`: the step
               without loading and saving the student and without early stopping's scoring of the evaluation rows
               after every epoch, `train_eval_s`); the teacher's decode (completion tokens per second of the generate step) as a share of
               llama.cpp's better rate, single or batched;
  memory       the child's peak RSS with teacher, labeler, student and map encoder loaded.

Prints a table and writes bench/results/round_profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, ROOT, machine, machine_line, write_json  # noqa: I001

STUDENT_BATCH, STUDENT_TOKENS = 16, 32


def matmul_gflops(threads: int, hidden: int = 384, ffn: int = 1536, reps: int = 30, dtype: str = "fp32") -> float:
    """GFLOP/s of the student's projection shapes in `dtype` ("fp32" or "bf16"; forward-size products, backward
    ones are the same shapes transposed), best of three timings."""
    import torch

    torch.set_num_threads(threads)
    rows = STUDENT_BATCH * STUDENT_TOKENS
    shapes = [(rows, hidden, hidden), (rows, hidden, ffn), (rows, ffn, hidden)]
    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    mats = [(torch.randn(m, k, dtype=kind), torch.randn(k, n, dtype=kind)) for m, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes) * reps
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            for a, b in mats:
                a @ b
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def llama_decode_tokens_per_s(threads: int, tokens: int = 64, weights: str = "auto") -> float | None:
    """llama.cpp evaluating one token at a time after a prompt: its own single-sequence decode rate."""
    from gold.teachers import llamacpp

    if not llamacpp.available():
        return None
    teacher = llamacpp.LlamaCppTeacher.cached(threads=threads, weights=weights)
    llm = teacher.llm
    prompt = teacher.tokenize("Write a short movie review.\n\nReview: a fine film with a strong cast\nReview:")
    llm.reset()
    llm.eval(prompt)
    token = prompt[-1]
    t0 = time.perf_counter()
    for _ in range(tokens):
        llm.eval([token])
    rate = tokens / (time.perf_counter() - t0)
    llm.reset()
    return rate


def llama_batch_decode_tokens_per_s(threads: int, sequences: int, weights: str = "auto") -> float | None:
    """llama.cpp decoding `sequences` sequences in one batch, one token each per step: its rate at that batch."""
    from gold.teachers import llamacpp
    from teacher_sequences import raw_decode_rate

    if not llamacpp.available():
        return None
    return raw_decode_rate(llamacpp.LlamaCppTeacher.cached(threads=threads, weights=weights), sequences)


def llama_prompt_tokens_per_s(threads: int, tokens: int = 128, weights: str = "auto") -> float | None:
    """llama.cpp evaluating a prompt of `tokens` tokens in one batch: what every prompt token of a sample costs."""
    from gold.teachers import llamacpp

    if not llamacpp.available():
        return None
    teacher = llamacpp.LlamaCppTeacher.cached(threads=threads, weights=weights)
    llm = teacher.llm
    ids = teacher.tokenize("Here are some examples of movie reviews, some negative and some positive. " * 16)[:tokens]
    best = float("inf")
    for _ in range(3):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        best = min(best, time.perf_counter() - t0)
    llm.reset()
    return len(ids) / best


def student_train_flops_per_token(model: Any, tokens: float) -> float:
    """Training FLOPs per token of an encoder: 6 × non-embedding parameters (forward 2, backward 4) plus the
    attention products (scores and mix: 4·L·d forward per layer, ×3 with backward)."""
    cfg = model.config
    d, ff, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    params = layers * (4 * d * d + 2 * d * ff)
    return 6 * params + 3 * 4 * tokens * d * layers


def profile_one(engine: str, threads: int, samples: int, probes: int, per_prompt: int = 1,
                precision: str = "auto", per_draw: int = 1, weights: str = "auto",
                sequences: int = 4) -> dict[str, Any]:
    """One configuration, in this (child) process: the roofline numbers, then one round through the engine."""
    import torch

    torch.set_num_threads(threads)
    from gold.context import RunContext
    from gold.examples import example_spec
    from gold.loop import RunHooks, execute_run
    from gold.specs import GoldSettings
    from gold.store import Store
    from gold.students.training import compute_precision
    from gold.teachers import resolved_engine

    out: dict[str, Any] = {"engine": engine, "threads": threads, "samples_per_prompt": per_prompt,
                           "prompts_per_draw": per_draw, "gguf_weights": weights, "parallel_sequences": sequences,
                           "ran_on": resolved_engine(engine, GoldSettings().teacher.model), "precision": precision,
                           "trained_in": compute_precision(torch.device("cpu"), precision)}
    out["matmul_gflops"] = round(matmul_gflops(threads), 1)
    out["matmul_bf16_gflops"] = round(matmul_gflops(threads, dtype="bf16"), 1)
    decode = llama_decode_tokens_per_s(threads, weights=weights)
    out["llama_decode_tok_s"] = round(decode, 1) if decode else None
    batched = llama_batch_decode_tokens_per_s(threads, sequences, weights=weights)
    out["llama_batch_decode_tok_s"] = round(batched, 1) if batched else None
    prompt_rate = llama_prompt_tokens_per_s(threads, weights=weights)
    out["llama_prompt_tok_s"] = round(prompt_rate, 1) if prompt_rate else None

    class TimedMap(RunHooks):
        def after_round(self, ctx, n, settings):
            t0 = time.perf_counter()
            super().after_round(ctx, n, settings)
            out.setdefault("step_s", {})["map"] = round(time.perf_counter() - t0, 2)

    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        task = example_spec("sst2")
        task_id = store.create_task(task)
        settings = GoldSettings(rounds=1, samples_per_round=samples, probe_size=probes, seed=0)
        settings.teacher.engine = out["ran_on"]
        settings.teacher.samples_per_prompt = per_prompt
        settings.teacher.prompts_per_draw = per_draw
        settings.teacher.gguf_weights = weights
        settings.teacher.parallel_sequences = sequences
        settings.student.precision = precision
        run_id = store.create_run(task_id, settings.to_dict(), name="profile")
        store.claim_run("profile", only=[run_id])
        t0 = time.perf_counter()
        execute_run(RunContext(store, run_id, "profile"), hooks=TimedMap())
        out["wall_s"] = round(time.perf_counter() - t0, 1)  # model loads included
        m = store.rounds(run_id)[0].metrics
        usage = store.get_run(run_id).usage
        steps = {**(m.step_seconds or {}), **out.get("step_s", {})}
        out["step_s"] = steps
        out["round_s"] = round(sum(steps.values()), 1)
        out["critical_s"] = round(out["round_s"] - steps.get("map", 0), 1)
        gen_s = steps.get("generate", 0) + steps.get("probe", 0)
        completion = usage.get("completion_tokens", 0)
        out["teacher_tok_s"] = round(completion / gen_s, 1) if gen_s else None
        out["prompt_tokens"] = usage.get("prompt_tokens", 0)  # what the generation prompts held
        if out["ran_on"] == "llama.cpp":  # what llama.cpp ran of them (and of the label reads): the roofline's
            # measurements feed llama.cpp directly, so only the round's teacher counts here
            out["evaluated_prompt_tokens"] = sum(t.evaluated_prompt_tokens for t in _loaded_teachers())
        out["samples_per_s"] = round(((m.gen_kept or 0) + (m.probe_kept or 0)) / gen_s, 2) if gen_s else None
        out["label_samples_per_s"] = round((m.soft_labeled or 0) / steps["label"], 2) if steps.get("label") else None

        from gold.checkpoints import load_checkpoint
        from gold.students.training import steps_examples
        from gold.steps.train import training_set

        student = load_checkpoint(store, run_id, 1)
        rows = training_set(store, run_id, task, settings).rows
        lengths = [len(student.tokenizer(r.text).input_ids) for r in rows]
        mean_tokens = sum(lengths) / len(lengths)
        seen = steps_examples(len(rows), settings.student.batch_size, m.train_steps or 0)
        flops = seen * mean_tokens * student_train_flops_per_token(student.model, mean_tokens)
        train_s = steps.get("train", 0)
        out["train_examples_per_s"] = round(seen / train_s, 1) if train_s else None
        out["train_mean_tokens"] = round(mean_tokens, 1)
        out["train_gflops"] = round(flops / train_s / 1e9, 2) if train_s else None
        out["train_share_of_matmul"] = round(out["train_gflops"] / out["matmul_gflops"], 3) if train_s else None
        # The step is more than optimizer steps: the student is loaded and saved, and early stopping scores the
        # evaluation rows after every epoch (inference, not training). The optimizer steps alone:
        out["train_fit_s"], out["train_eval_s"] = m.train_fit_seconds, m.train_eval_seconds
        steps_s = (m.train_fit_seconds or 0) - (m.train_eval_seconds or 0)
        if steps_s > 0:
            out["train_steps_s"] = round(steps_s, 1)
            out["train_steps_gflops"] = round(flops / steps_s / 1e9, 2)
            out["train_steps_share_of_matmul"] = round(out["train_steps_gflops"] / out["matmul_gflops"], 3)
        if out["trained_in"] == "bf16" and train_s:  # the limit of the arithmetic the fit actually ran in
            out["train_share_of_bf16_matmul"] = round(out["train_gflops"] / out["matmul_bf16_gflops"], 3)
        if out["teacher_tok_s"] and decode:
            out["decode_share_of_llama"] = round(out["teacher_tok_s"] / max(decode, batched or 0), 3)
        store.close()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def _loaded_teachers() -> list[Any]:
    """The llama.cpp teachers this process loaded (the round's, from the engine's per-process cache)."""
    from gold.teachers import llamacpp

    return list(llamacpp._CACHE.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="transformers,llama.cpp", help="teacher engines (auto, transformers, llama.cpp)")
    ap.add_argument("--threads", default="1,2", help="thread counts, each a configuration")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--probes", type=int, default=16)
    ap.add_argument("--samples-per-prompt", default="1", help="the teacher's samples per prompt, each a configuration")
    ap.add_argument("--prompts-per-draw", default="1", help="prompts sharing one draw of examples, each a "
                    "configuration")
    ap.add_argument("--precisions", default="auto", help="the student's training precisions (auto, bf16, fp32), each "
                    "a configuration")
    ap.add_argument("--gguf-weights", default="auto", help="the weights llama.cpp runs the GGUF with (auto, file, "
                    "f16), each a configuration of the llama.cpp engine (transformers ignores them: it runs once)")
    ap.add_argument("--sequences", default="4", help="replies llama.cpp decodes together, each a configuration of "
                    "the llama.cpp engine")
    ap.add_argument("--out", default=str(RESULTS / "round_profile.json"))
    ap.add_argument("--one", nargs=7, metavar=("ENGINE", "THREADS", "K", "PRECISION", "DRAW", "WEIGHTS", "SEQS"),
                    help=argparse.SUPPRESS)  # the child's entry
    a = ap.parse_args()
    if a.one:
        print("RESULT " + json.dumps(profile_one(a.one[0], int(a.one[1]), a.samples, a.probes, int(a.one[2]),
                                                 a.one[3], int(a.one[4]), a.one[5], int(a.one[6]))), flush=True)
        return
    first_w, first_q = a.gguf_weights.split(",")[0], a.sequences.split(",")[0]
    configs = [(e.strip(), int(t), int(k), p.strip(), int(d), w.strip(), int(q)) for t in a.threads.split(",")
               for e in a.engines.split(",") if e.strip() for k in a.samples_per_prompt.split(",")
               for p in a.precisions.split(",") if p.strip() for d in a.prompts_per_draw.split(",")
               for w in a.gguf_weights.split(",") if w.strip() for q in a.sequences.split(",") if q.strip()
               if e.strip() != "transformers" or (w == first_w and q == first_q)]  # one transformers round
    results = []
    for engine, threads, per_prompt, precision, per_draw, weights, seqs in configs:
        print(f"… {engine}, {threads} thread(s), {per_prompt} sample(s) per prompt, training in {precision}, "
              f"{per_draw} prompt(s) per draw, GGUF weights {weights}, {seqs} replies together", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run([sys.executable, str(Path(__file__)), "--one", engine, str(threads), str(per_prompt),
                               precision, str(per_draw), weights, str(seqs), "--samples", str(a.samples),
                               "--probes", str(a.probes)],
                              capture_output=True, text=True, env=env, cwd=ROOT)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            sys.exit(f"error: the {engine}/{threads} configuration failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(line[7:]))
    for r in results:  # each configuration against the first one (list the reference first)
        if r is not results[0]:
            r["round_over_first"] = round(r["round_s"] / results[0]["round_s"], 3)
            r["critical_over_first"] = round(r["critical_s"] / results[0]["critical_s"], 3)
    info = machine()
    data = {"machine": machine_line(info), "machine_info": info, "samples": a.samples, "probes": a.probes,
            "configs": results, "command": "bench/round_profile.py " + " ".join(sys.argv[1:])}
    print_table(data)
    path = Path(a.out)
    write_json(path, data)
    print(f"\n{data['machine']}; written {path}")


def print_table(data: dict[str, Any]) -> None:
    rows = data["configs"]
    steps = ["generate", "label", "train", "probe", "score", "select", "measure", "map"]
    head = f"{'seconds':<24}" + "".join(
        f"{r['ran_on'][:9] + ' ' + str(r['threads']) + 't k' + str(r.get('samples_per_prompt', 1)) + ' d' + str(r.get('prompts_per_draw', 1)) + ' ' + r.get('trained_in', 'fp32') + ' ' + _weights(r):>36}"
        for r in rows)
    print(f"\nOne round, {data['samples']} samples + {data['probes']} probes (SST-2, product defaults)\n{head}")
    for s in steps:
        print(f"{s:<24}" + "".join(f"{r['step_s'].get(s, 0):>36.1f}" for r in rows))
    for key in ("round_s", "critical_s", "wall_s", "matmul_gflops", "matmul_bf16_gflops", "train_gflops",
                "train_share_of_matmul", "train_fit_s", "train_eval_s", "train_steps_s", "train_steps_gflops",
                "train_steps_share_of_matmul", "train_share_of_bf16_matmul", "train_examples_per_s", "llama_decode_tok_s",
                "llama_batch_decode_tok_s",
                "llama_prompt_tok_s", "prompt_tokens", "evaluated_prompt_tokens", "teacher_tok_s", "decode_share_of_llama", "samples_per_s", "label_samples_per_s",
                "peak_rss_mb", "round_over_first", "critical_over_first"):
        print(f"{key:<24}" + "".join(f"{str(r.get(key, '-')):>36}" for r in rows))


def _weights(r: dict[str, Any]) -> str:
    """The weights and replies decoded together llama.cpp ran in a configuration ("file", 1 where a result predates
    the setting), "-" on transformers."""
    if r["ran_on"] != "llama.cpp":
        return "-"
    return f"{r.get('gguf_weights', 'file')} x{r.get('parallel_sequences', 1)}"


if __name__ == "__main__":
    main()

"""Which weights should llama.cpp run the embedded teacher with? The file's Q4_1, or a copy in another type.

The embedded GGUF is Q4_1, a type llama.cpp's CPU backend multiplies without its batched kernels, and a GOLD round
mostly reads prompts. This script measures, side by side in one invocation, for each weight type:

  rates      prompt tokens/s (a 128-token prompt evaluated in one batch) and decode tokens/s (one token at a time
             after a prompt), for each thread count: what a sample's ~120 prompt tokens and ~30 new ones cost;
  labels     the few-shot teacher on each task's 200 test rows (the label read a run's soft labels come from):
             accuracy raw and batch-calibrated, rows/s, and how often its batch-calibrated label agrees with the
             file's own weights' (the reference) — a copy that changed the teacher would show here;
  size       the file's bytes;
  fidelity   on 12 real generation prompts, the next-token distribution against the transformers engine's (the
             same GGUF de-quantized to fp32, run by PyTorch: the model as its weights define it): mean KL, the
             median largest logit difference, and how often the most likely token is the same.

`file` and `f16` are what the product offers (`teacher.gguf_weights`); `--also q8_0,q4_0` adds copies converted
here for comparison only (a Q4_0 copy of Q4_1 weights is quantized twice and loses precision; it is not offered).

Usage:
  .venv/bin/python bench/teacher_weights.py                              # file, f16; threads 1,2; 3 tasks
  .venv/bin/python bench/teacher_weights.py --also q8_0,q4_0 --threads 2 --tasks sst2
  .venv/bin/python bench/teacher_weights.py --print                      # the table of the last run again
  .venv/bin/python bench/teacher_weights.py --only-fidelity --also q8_0,q4_0   # fidelity alone, into the JSON

Prints a table and writes bench/results/teacher_weights.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS, WORK, machine, machine_line, write_json  # noqa: I001
from quality import example_task

EXTRA_TYPES = {"q8_0": 7, "q4_0": 2}  # llama.cpp's LLAMA_FTYPE_MOSTLY_* values


def bench_copy(kind: str, threads: int) -> Path:
    """A copy of the embedded GGUF in another type, for comparison only (cached under bench/.work)."""
    import llama_cpp
    from llama_cpp._logger import set_verbose

    from gold.models import DEFAULT_TEACHER, resolve

    src = resolve(DEFAULT_TEACHER).weights
    out = WORK / "teacher_weights" / f"{src.stem}.{kind}.gguf"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize, params.nthread = EXTRA_TYPES[kind], True, threads
        set_verbose(False)
        partial = out.with_suffix(".partial")
        if llama_cpp.llama_model_quantize(str(src).encode(), str(partial).encode(), params):
            sys.exit(f"error: llama.cpp could not write a {kind} copy")
        os.replace(partial, out)
    return out


def load(kind: str, threads: int):
    from gold.models import DEFAULT_TEACHER
    from gold.teachers.llamacpp import LlamaCppTeacher

    if kind in ("file", "f16"):
        return LlamaCppTeacher(DEFAULT_TEACHER, threads=threads, adapt=False, weights=kind)
    return LlamaCppTeacher(str(bench_copy(kind, threads)), threads=threads, adapt=False, weights="file")


def fidelity(teacher, reference: list[Any], texts: list[str]) -> dict[str, float]:
    """The teacher's next-token distribution after each text against the reference logits (fp32 transformers)."""
    import numpy as np

    kls, diffs, same = [], [], 0
    for text, ref in zip(texts, reference):
        teacher.llm.reset()
        teacher.llm.eval(teacher.tokenize(text))
        z = np.array(teacher._logits(), dtype=np.float64)
        lp_ref, lp = ref - np.logaddexp.reduce(ref), z - np.logaddexp.reduce(z)
        kls.append(float((np.exp(lp_ref) * (lp_ref - lp)).sum()))
        diffs.append(float(np.abs(z - ref).max()))
        same += int(np.argmax(z) == np.argmax(ref))
    teacher.llm.reset()
    return {"kl_to_fp32": float(np.mean(kls)), "max_logit_diff_median": round(float(np.median(diffs)), 4),
            "top1_agrees": round(same / len(texts), 3)}


def reference_logits(texts: list[str]) -> list[Any]:
    """The transformers engine's last-position logits for each text (fp32, de-quantized GGUF)."""
    import numpy as np
    import torch

    from gold.teachers.local import LocalTeacher

    lt = LocalTeacher.cached(threads=2)
    out = []
    for text in texts:
        ids = lt.tokenizer(text, return_tensors="pt").input_ids
        with torch.no_grad():
            out.append(lt.model(ids).logits[0, -1].double().numpy().astype(np.float64))
    return out


def generation_texts(n: int = 12) -> list[str]:
    import random

    from gold import prompts
    from gold.examples import example_spec

    texts = []
    for key in ("sst2", "trec", "agnews"):
        texts += [str(r.prompt) for r in prompts.plan_requests(example_spec(key), n // 3, rng=random.Random(0))]
    return texts[:n]


def rates(teacher, prompt_tokens: int = 128, decode_tokens: int = 64) -> tuple[float, float]:
    """(prompt tokens/s, decode tokens/s), each the best of three timings."""
    llm = teacher.llm
    ids = teacher.tokenize("Here are some examples of movie reviews, some negative and some positive. " * 16)
    ids = ids[:prompt_tokens]
    best_prompt = best_decode = float("inf")
    for _ in range(3):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        best_prompt = min(best_prompt, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(decode_tokens):
            llm.eval([ids[-1]])
        best_decode = min(best_decode, time.perf_counter() - t0)
    llm.reset()
    return prompt_tokens / best_prompt, decode_tokens / best_decode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="file,f16", help="weights the product offers, each measured")
    ap.add_argument("--also", default="", help="other types converted here for comparison (q8_0, q4_0)")
    ap.add_argument("--threads", default="1,2", help="thread counts for the rates")
    ap.add_argument("--tasks", default="sst2,trec,agnews", help="tasks whose test rows the teacher labels")
    ap.add_argument("--test-rows", type=int, default=200)
    ap.add_argument("--label-threads", type=int, default=2, help="threads for the label reads")
    ap.add_argument("--out", default=str(RESULTS / "teacher_weights.json"))
    ap.add_argument("--print", action="store_true", help="print the table of --out again; measure nothing")
    ap.add_argument("--only-fidelity", action="store_true", help="measure fidelity alone, into --out's rows")
    a = ap.parse_args()
    if a.print:
        print_table(json.loads(Path(a.out).read_text()))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gold.teachers import fewshot
    from gold.teachers.llamacpp import available

    if not available():
        sys.exit("error: the llama.cpp engine is not installed (`make llama`)")
    kinds = [k.strip() for k in a.weights.split(",") + a.also.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in ("file", "f16", *EXTRA_TYPES)]
    if unknown:
        sys.exit(f"error: unknown weights {', '.join(unknown)} (file, f16, {', '.join(EXTRA_TYPES)})")
    texts = generation_texts()
    reference = reference_logits(texts)
    if a.only_fidelity:
        if not Path(a.out).is_file():
            sys.exit(f"error: --only-fidelity adds to the rows of {a.out}, which does not exist: measure them first")
        data = json.loads(Path(a.out).read_text())
        for row in data["results"]:
            if row["weights"] in kinds:
                teacher = load(row["weights"], a.label_threads)
                row["fidelity"] = fidelity(teacher, reference, texts)
                print(f"{row['weights']:>5}: {row['fidelity']}", flush=True)
                del teacher
        print_table(data)
        write_json(Path(a.out), data)
        return
    tasks = [example_task(t.strip(), a.test_rows) for t in a.tasks.split(",") if t.strip()]
    results: list[dict[str, Any]] = []
    reference: dict[str, list[str]] = {}
    for kind in kinds:
        row: dict[str, Any] = {"weights": kind, "rates": {}, "tasks": {}}
        for threads in [int(t) for t in a.threads.split(",")]:
            teacher = load(kind, threads)
            prompt, decode = rates(teacher)
            row["rates"][str(threads)] = {"prompt_tok_s": round(prompt, 1), "decode_tok_s": round(decode, 1)}
            print(f"{kind:>5} {threads}t: prompt {prompt:7.1f} tok/s, decode {decode:6.1f} tok/s", flush=True)
            del teacher
        teacher = load(kind, a.label_threads)
        row["file_bytes"] = teacher.weights_path.stat().st_size
        row["note"] = teacher.weights_note
        row["fidelity"] = fidelity(teacher, reference, texts)
        for task in tasks:
            r = fewshot.classify(teacher, task.spec, task.test, seed=0)
            labels = r.outputs["batch_calibrated"]
            reference.setdefault(task.key, labels)
            agree = sum(x == y for x, y in zip(labels, reference[task.key])) / len(labels)
            row["tasks"][task.key] = {"raw": r.metrics["raw"], "batch_calibrated": r.metrics["batch_calibrated"],
                                      "rows_per_s": round(r.examples_per_s, 2), "agrees_with_first": round(agree, 3)}
            print(f"{kind:>5} {task.key}: raw {r.metrics['raw']:.1%}, batch-calibrated "
                  f"{r.metrics['batch_calibrated']:.1%}, {r.examples_per_s:.1f} rows/s, agrees with "
                  f"{kinds[0]} on {agree:.1%}", flush=True)
        del teacher
        results.append(row)
    info = machine()
    data = {"machine": machine_line(info), "machine_info": info, "test_rows": a.test_rows,
            "label_threads": a.label_threads, "results": results,
            "command": "bench/teacher_weights.py " + " ".join(sys.argv[1:])}
    print_table(data)
    write_json(Path(a.out), data)
    print(f"\n{data['machine']}; written {a.out}")


def print_table(data: dict[str, Any]) -> None:
    rows = data["results"]
    first = rows[0]
    print(f"\n{'weights':<8}{'MB':>7}" + "".join(f"{'prompt ' + t + 't':>11}{'decode ' + t + 't':>11}"
                                              for t in first["rates"]) +
          "".join(f"{k + ' acc':>12}{'agree':>7}{'rows/s':>8}" for k in first["tasks"]) +
          f"{'KL to fp32':>12}{'top-1':>7}")
    for r in rows:
        line = f"{r['weights']:<8}{r['file_bytes'] / 1e6:>7.0f}"
        for t, v in r["rates"].items():
            ratio_p = v["prompt_tok_s"] / first["rates"][t]["prompt_tok_s"]
            ratio_d = v["decode_tok_s"] / first["rates"][t]["decode_tok_s"]
            line += f"{v['prompt_tok_s']:>6.0f} {ratio_p:.1f}×{v['decode_tok_s']:>6.0f} {ratio_d:.1f}×"
        for v in r["tasks"].values():
            line += f"{v['batch_calibrated']:>12.1%}{v['agrees_with_first']:>7.0%}{v['rows_per_s']:>8.1f}"
        f = r.get("fidelity")
        line += f"{f['kl_to_fp32']:>12.2e}{f['top1_agrees']:>7.0%}" if f else f"{'-':>12}{'-':>7}"
        print(line)


if __name__ == "__main__":
    main()

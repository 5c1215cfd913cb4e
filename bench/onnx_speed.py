"""The int8 ONNX export against the plain PyTorch folder, side by side in one process, on the SST-2 dev rows.

Usage: .venv/bin/python bench/onnx_speed.py [--home GOLD_HOME] [--run ID|latest] [--threads 1] [--repeat 3]
Prints a table and writes bench/results/onnx_speed.json. Not a test: timings depend on the machine and its
neighbours, so every case is timed `--repeat` times, interleaved with the others (a busy moment hits all of
them alike), the best kept, and the load average recorded beside it. One thread by default: on a shared
2-core machine a second thread measures the neighbours more than the model.

The student is the exported round of a finished SST-2 run: `--home`, else the newest under
bench/.work/quality/homes/sst2-gold-* (left by `make bench-quality`), else a throw-away store whose one
round's student is MiniLM fine-tuned on the 8 SST-2 seeds (weak, but a real trained classifier).

Rows: the PyTorch folder (fp32, `AutoModelForSequenceClassification`), the same graph as fp32 ONNX (what
the runtime alone gives), int8 with every MatMul quantized, and the int8 ONNX export as shipped (the
feed-forward output projections kept fp32), each at batch 1 and batch 32 with the same tokenizer and
the same length-sorted batches (what `gold.onnx_export.OnnxClassifier` and the in-app student do); examples/s,
accuracy on the 300 labeled rows, agreement of predictions with PyTorch at the same batch size, and the
largest probability difference. Sizes are of the folders a user downloads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, WORK, exported_run  # noqa: I001 — puts the repository on sys.path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from gold import export, onnx_export  # noqa: E402

DEV = ROOT / "gold" / "example_data" / "sst2" / "dev.jsonl"
OUT = RESULTS / "onnx_speed.json"
QUALITY_HOMES = WORK / "quality" / "homes"
BATCHES = (1, 32)


def find_home() -> Path | None:
    """The newest finished SST-2 GOLD run left by the quality benchmark, if any."""
    homes = sorted(QUALITY_HOMES.glob("sst2-gold-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for home in homes:
        if (home / "gold.db").is_file() or any(home.glob("*.db")):
            return home
    return None


def seed_trained_student(spec):
    """MiniLM fine-tuned on the 8 SST-2 seeds: weak, but a real trained classifier."""
    from gold.students.base import TrainExample, TrainingArgs
    from gold.students.classifier import ClassifierStudent

    student = ClassifierStudent(spec.labels, device="cpu")
    student.fit([TrainExample(ex.inputs["text"], ex.output) for ex in spec.seeds],
                TrainingArgs(min_steps=60, seed=0, loss="ce"))
    return student


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class TorchRunner:
    """The PyTorch folder, batched exactly like OnnxClassifier (same tokenizer, same length-sorted batches)."""

    def __init__(self, folder: Path):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.max_length = int(self.tokenizer.model_max_length)

    def logits(self, texts: list[str], batch_size: int) -> np.ndarray:
        lengths = [len(i) for i in self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        with self.torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                idx = order[s : s + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                out[idx] = self.model(**enc).logits.float().numpy()
        return out


def timed(fn) -> tuple[float, float, np.ndarray]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="a GOLD_HOME with a finished SST-2 classification run")
    ap.add_argument("--run", default="latest", help="run id or 'latest' (with --home)")
    ap.add_argument("--threads", default="1", help="thread counts for torch and onnxruntime, comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per case (best kept), interleaved")
    a = ap.parse_args()

    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    import onnxruntime

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
    threads = sorted({int(t) for t in a.threads.split(",")})

    work = Path(tempfile.mkdtemp(prefix="gold-onnx-bench-"))
    try:
        run = exported_run(Path(a.home) if a.home else find_home(), a.run, work, seed_trained_student,
                           "MiniLM fine-tuned on the 8 SST-2 seeds")
        store, run_id, round_n, source = run.store, run.run_id, run.round_n, run.source
        t = time.perf_counter()
        pt_folder = export.export_student(store, run_id, work / "pytorch", round_n, include_data=False).path
        export_pt_s = time.perf_counter() - t
        t = time.perf_counter()
        int8_folder = onnx_export.export_onnx(store, run_id, work / "onnx-int8", round_n).path
        export_onnx_s = time.perf_counter() - t
        fp32_folder, all_folder = work / "onnx-fp32", work / "onnx-int8-all"
        onnx_export.convert(pt_folder, fp32_folder, quantize=False)
        onnx_export.convert(pt_folder, all_folder, keep_ffn_output=False)
        store.close()

        labels = json.loads((pt_folder / "config.json").read_text())["id2label"]
        labels = [labels[str(i)] for i in range(len(labels))]
        want = np.array([labels.index(g) for g in gold])
        folders = {"pytorch fp32": pt_folder, "onnx fp32": fp32_folder, "onnx int8 all": all_folder,
                   "onnx int8 export": int8_folder}
        sizes = {name: folder_bytes(f) for name, f in folders.items()}
        weights = {name: (f / ("model.safetensors" if name == "pytorch fp32" else "model.onnx")).stat().st_size
                   for name, f in folders.items()}

        print(f"student: {source}, round {round_n}; {len(texts)} SST-2 dev rows; load avg at start "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"export: PyTorch folder {export_pt_s:.1f} s, int8 ONNX folder {export_onnx_s:.1f} s "
              "(trace, quantize, check on the task's evaluation rows)")
        for name, size in sizes.items():
            print(f"  {name:<18} {size / 1e6:7.1f} MB folder (weights {weights[name] / 1e6:.1f} MB)")

        results = []
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            runners = {name: TorchRunner(f) if name == "pytorch fp32"
                       else onnx_export.OnnxClassifier(f, threads=n_threads) for name, f in folders.items()}
            cases = [(name, b) for b in BATCHES for name in runners]
            best: dict[tuple[str, int], dict] = {}
            outputs: dict[tuple[str, int], np.ndarray] = {}
            for name, b in cases:  # warm-up, and the predictions
                outputs[(name, b)] = runners[name].logits(texts, b)
            for _ in range(a.repeat):
                for name, b in cases:
                    wall, cpu, _ = timed(lambda: runners[name].logits(texts, b))
                    if (name, b) not in best or wall < best[(name, b)]["seconds"]:
                        best[(name, b)] = {"seconds": wall, "cpu_seconds": cpu, "load_avg_1m": os.getloadavg()[0]}
            for name, b in cases:
                logits = outputs[(name, b)]
                ref = outputs[("pytorch fp32", b)]
                probs, ref_probs = onnx_export.softmax(logits), onnx_export.softmax(ref)
                r = {"case": name, "batch": b, "threads": n_threads, **best[(name, b)],
                     "examples_per_s": len(texts) / best[(name, b)]["seconds"],
                     "examples_per_cpu_s": len(texts) / best[(name, b)]["cpu_seconds"]
                     if best[(name, b)]["cpu_seconds"] > 0 else None,
                     "accuracy": float((logits.argmax(1) == want).mean()),
                     "agreement_with_pytorch": float((logits.argmax(1) == ref.argmax(1)).mean()),
                     "max_prob_diff": float(np.abs(probs - ref_probs).max()),
                     "mean_prob_diff": float(np.abs(probs - ref_probs).mean())}
                results.append(r)

        print(f"\n{'case':<16} {'threads':>7} {'batch':>5} {'ex/s':>8} {'ex/cpu-s':>9} {'speed-up':>8} {'accuracy':>8} "
              f"{'agree':>7} {'max dp':>7} {'load':>5}")
        for r in results:
            base = next(x for x in results if x["case"] == "pytorch fp32" and x["batch"] == r["batch"]
                        and x["threads"] == r["threads"])
            r["speedup_vs_pytorch"] = r["examples_per_s"] / base["examples_per_s"]
            cpu = f"{r['examples_per_cpu_s']:9.1f}" if r["examples_per_cpu_s"] else f"{'—':>9}"
            print(f"{r['case']:<16} {r['threads']:>7} {r['batch']:>5} {r['examples_per_s']:8.1f} {cpu} "
                  f"{r['speedup_vs_pytorch']:7.2f}x {r['accuracy']:8.4f} {r['agreement_with_pytorch']:7.1%} "
                  f"{r['max_prob_diff']:7.3f} {r['load_avg_1m']:5.2f}")

        result = {
            "meta": {
                "student": source, "round": round_n, "cpu_count": os.cpu_count(), "torch": torch.__version__,
                "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__,
                "python": platform.python_version(), "repeat": a.repeat,
                "texts": f"{len(texts)} SST-2 dev rows (gold/example_data/sst2/dev.jsonl), length-sorted batches",
                "quantization": "onnxruntime quantize_dynamic, QInt8 weights per channel, opset "
                                f"{onnx_export.OPSET}; 'onnx int8 export' keeps the feed-forward output "
                                "projections fp32 (gold.onnx_export.fp32_nodes), 'onnx int8 all' quantizes every "
                                "MatMul",
            },
            "size_bytes": sizes,
            "weights_bytes": weights,
            "timings_s": {"export_pytorch_folder": export_pt_s, "export_onnx_int8": export_onnx_s},
            "throughput": results,
        }
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten {OUT.relative_to(ROOT)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

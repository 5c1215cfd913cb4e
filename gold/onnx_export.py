"""ONNX export of a classifier student, quantized to int8: one `model.onnx` that onnxruntime runs on a CPU
without torch and without GOLD Studio.

Why: a distilled student is meant to be served cheaply. Measured by `bench/onnx_speed.py` on the 300 SST-2
dev rows (one CPU thread): 2.7x smaller than the PyTorch folder, 3.0x faster at batch 1 and 1.9x at batch 32,
accuracy 0.3 to 0.7 points below the PyTorch student's (98-99% of predictions the same). The predictions
that change are near-ties, so on a small evaluation set the difference can reach a few rows either way: each
export measures its own agreement and accuracy and writes them into its README.md.

How: `torch.onnx.export` (the TorchScript exporter, which needs no extra package) traces the fp32 student
with dynamic batch and sequence axes; `onnxruntime.quantization.quantize_dynamic` turns its MatMul/Gemm
weights into int8 per output channel (one scale per tensor lost 3 points on SST-2, per channel 1 to 2) and
leaves activations to be quantized per batch at run time. Each layer's feed-forward output projection stays
fp32 (`fp32_nodes`): quantizing it too is faster still (4.3x at batch 1) but cost a full point of accuracy.
Because activation scales are computed over a whole batch, `OnnxClassifier` batches texts of similar length
together (less padding, tighter ranges), as the in-app student does.

The folder:

    model.onnx          int8 weights, inputs as the tokenizer names them (input_ids, attention_mask, …), output logits
    config.json         the student's config (id2label / label2id), as in the plain export
    tokenizer files     tokenizer.json, tokenizer_config.json, …
    README.md           a short usage note, with the agreement with the PyTorch student measured at export
    gold_run.json       the plain export's provenance (run, round, settings, metrics)

An export is written to a temporary folder beside its target and renamed into place (or zipped), like the
plain export: a failure never leaves half a folder.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Iterator, Sequence

import numpy as np

from gold.export import (
    RUN_JSON, ExportError, ExportResult, _check_target, collect, folder_name, place_output, write_folder,
)
from gold.modelcard import TOKENIZER_FILES, fenced, md
from gold.records import ExportInfo
from gold.store import Store

ONNX_FILE = "model.onnx"
OPSET = 17
NOTE = "README.md"
NOTE_TEMPLATE = Path(__file__).resolve().parent / "templates" / "onnx_readme.md"
CHECK_ROWS = 300  # evaluation rows the export compares the int8 model with the PyTorch student on
# Below this share of same predictions the export is refused: not a rounding difference on near-ties (a weak
# student has many) but a broken conversion.
MIN_AGREEMENT = 0.9
BATCH = 32
# How the feed-forward output projection is named in the exported graph: BERT/RoBERTa/DeBERTa ("…/output/dense/",
# attention's own output excluded by name), DistilBERT ("…/ffn/lin2/"), and MLP-style blocks ("…/fc2/").
FFN_OUTPUT_PATTERNS = ("/output/dense/", "/ffn/lin2/", "/fc2/")
PACKAGES = ("onnxruntime", "onnx")
USAGE = """import numpy as np
import onnxruntime as ort
from transformers import AutoConfig, AutoTokenizer

folder = "{root}"
tokenizer = AutoTokenizer.from_pretrained(folder)
labels = AutoConfig.from_pretrained(folder).id2label
session = ort.InferenceSession(f"{{folder}}/model.onnx", providers=["CPUExecutionProvider"])
names = [i.name for i in session.get_inputs()]

texts = [{example}]
enc = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
logits = session.run(["logits"], {{n: enc[n].astype(np.int64) for n in names}})[0]
probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
print([(labels[int(p.argmax())], float(p.max())) for p in probs])"""


def onnx_problem() -> str | None:
    """Why an ONNX export cannot run here (a package missing), or None."""
    import importlib.util

    missing = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        return (f"The ONNX export needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                "installed: run `make install` (requirements.txt pins them).")
    return None


def onnx_root(run_id: int, round_n: int) -> str:
    """The ONNX export's folder (and zip root) name: ids only, never user text."""
    return f"{folder_name(run_id, round_n)}-onnx"


# -- conversion ---------------------------------------------------------------------------------------------------

@dataclass
class Conversion:
    """What one conversion wrote: the graph's inputs, the sizes before and after quantization, its time."""

    inputs: list[str]
    fp32_bytes: int
    int8_bytes: int
    seconds: float


def convert(src: str | os.PathLike, dst: str | os.PathLike, quantize: bool = True,
            keep_ffn_output: bool = True) -> Conversion:
    """Write `dst/model.onnx` (int8) from a plain Hugging Face classifier folder `src`, with its config and
    tokenizer files beside it. `dst` must not exist; `src` is only read. `quantize=False` keeps the fp32
    graph, `keep_ffn_output=False` quantizes every MatMul (both for bench/onnx_speed.py, which measures what
    each choice costs)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from gold.students.classifier import _quiet_transformers

    src, dst = Path(src), Path(dst)
    t0 = time.perf_counter()
    dst.mkdir(parents=True)
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(src))
        model = AutoModelForSequenceClassification.from_pretrained(str(src), dtype=torch.float32).eval()
    sample = tokenizer(["a short text", "and a somewhat longer second one"], return_tensors="pt", padding=True)
    # The graph's inputs in the order of forward()'s parameters: the TorchScript exporter names them by position.
    names = [n for n in inspect.signature(model.forward).parameters if n in sample]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    fp32 = dst / "model-fp32.onnx"
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shape-dependent Python branches: expected
            torch.onnx.export(model, (), str(fp32), kwargs={n: sample[n] for n in names}, input_names=names,
                              output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        fp32_bytes = fp32.stat().st_size
        if quantize:
            keep = fp32_nodes(fp32) if keep_ffn_output else []
            with _quiet_root_logger():
                quantize_dynamic(str(fp32), str(dst / ONNX_FILE), weight_type=QuantType.QInt8, per_channel=True,
                                 nodes_to_exclude=keep)
        else:
            fp32.rename(dst / ONNX_FILE)
    finally:
        fp32.unlink(missing_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    return Conversion(names, fp32_bytes, (dst / ONNX_FILE).stat().st_size, time.perf_counter() - t0)


def fp32_nodes(model_path: Path) -> list[str]:
    """The MatMul/Gemm nodes left in fp32: each layer's feed-forward output projection. Its input, the GELU
    output, has the widest range in a BERT-style layer (a few outlier dimensions), so one int8 scale for the
    whole batch loses most there; keeping these six MatMuls fp32 took the accuracy lost on SST-2 from 1.0 point
    to 0.3-0.7 (bench/onnx_speed.py)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")
            and any(p in n.name for p in FFN_OUTPUT_PATTERNS) and "attention" not in n.name]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """quantize_dynamic logs a "consider pre-processing" hint on the root logger every call: not for users."""

    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing before quantization" not in record.getMessage()

    f = Drop()
    root = logging.getLogger()
    root.addFilter(f)
    try:
        yield
    finally:
        root.removeFilter(f)


# -- running it ----------------------------------------------------------------------------------------------------

class OnnxClassifier:
    """An exported ONNX folder run with onnxruntime and the folder's own tokenizer (no torch needed)."""

    def __init__(self, folder: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        folder = Path(folder)
        if not (folder / ONNX_FILE).is_file() or not (folder / "config.json").is_file():
            raise ExportError(f"{folder} is not an ONNX export (it needs {ONNX_FILE} and config.json).")
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.labels = [v for _, v in sorted((int(k), v) for k, v in (config.get("id2label") or {}).items())]
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        limit = int(config.get("max_position_embeddings") or 512)
        self.max_length = min(int(getattr(self.tokenizer, "model_max_length", limit) or limit), limit)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def logits(self, texts: Sequence[str], batch_size: int = BATCH) -> np.ndarray:
        """Logits in the caller's order; batches are built from texts of similar length."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        lengths = [len(ids) for ids in self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        for s in range(0, len(texts), max(1, batch_size)):
            idx = order[s : s + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="np")
            out[idx] = self.session.run(["logits"], {n: enc[n].astype(np.int64) for n in self.inputs})[0]
        return out

    def probabilities(self, texts: Sequence[str], batch_size: int = BATCH) -> np.ndarray:
        return softmax(self.logits(texts, batch_size))

    def predict(self, texts: Sequence[str], batch_size: int = BATCH) -> list[dict[str, Any]]:
        """[{"label", "score"}] per text, like `pipeline("text-classification")` returns."""
        return [{"label": self.labels[int(p.argmax())], "score": float(p.max())}
                for p in self.probabilities(texts, batch_size)]


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass
class Agreement:
    """The int8 model against the PyTorch student on the same rows."""

    rows: int
    agreement: float  # share of rows where both predict the same label
    max_prob_diff: float
    mean_prob_diff: float
    torch_accuracy: float | None  # on the rows' gold labels, when they have any
    onnx_accuracy: float | None


def compare(torch_probs: np.ndarray, onnx_probs: np.ndarray, labels: Sequence[str],
            gold: Sequence[str | None] | None = None) -> Agreement:
    a, b = torch_probs.argmax(axis=1), onnx_probs.argmax(axis=1)
    diff = np.abs(torch_probs - onnx_probs)
    acc_t = acc_o = None
    if gold is not None and any(g is not None for g in gold):
        pairs = [(i, labels.index(g)) for i, g in enumerate(gold) if g in labels]
        if pairs:
            idx, want = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
            acc_t, acc_o = float((a[idx] == want).mean()), float((b[idx] == want).mean())
    return Agreement(len(a), float((a == b).mean()) if len(a) else 1.0, float(diff.max()) if len(a) else 0.0,
                     float(diff.mean()) if len(a) else 0.0, acc_t, acc_o)


# -- the export of a run's round -----------------------------------------------------------------------------------

def export_onnx(store: Store, run_id: int, out: str | os.PathLike, round_n: int | None = None,
                overwrite: bool = False, as_zip: bool = False) -> ExportResult:
    """Write the round's classifier student as an int8 ONNX folder at `out` (or a zip with `as_zip`).

    Refused with a clear ExportError for a seq2seq student, a missing package, or an int8 model that agrees
    with the PyTorch student on fewer than MIN_AGREEMENT of the task's evaluation rows."""
    problem = onnx_problem()
    if problem:
        raise ExportError(problem)
    out = Path(out).expanduser().resolve()
    if as_zip and out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    _check_target(out, overwrite)
    info = collect(store, run_id, round_n)
    if info.kind != "classification":
        raise ExportError(f"Run {run_id} is a {info.kind} task: the ONNX export is for classifier students only. "
                          "Export the plain Hugging Face folder instead.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{threading.get_ident()}"
    stage = out.with_name(f".{out.stem}.onnx-stage-{tag}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        write_folder(store, info, stage / "hf", include_data=False)
        onnx_dir = stage / "onnx"
        conversion = convert(stage / "hf", onnx_dir)
        shutil.copyfile(stage / "hf" / RUN_JSON, onnx_dir / RUN_JSON)
        check = check_against_torch(stage / "hf", onnx_dir, info)
        if check.rows and check.agreement < MIN_AGREEMENT:
            raise ExportError(f"The int8 ONNX model agrees with the PyTorch student on only {check.agreement:.1%} of "
                              f"{check.rows} evaluation rows (at least {MIN_AGREEMENT:.0%} is required), so it is not "
                              "exported. Use the plain Hugging Face folder.")
        (onnx_dir / NOTE).write_text(render_note(info, conversion, check), encoding="utf-8")
        files = sorted(str(p.relative_to(onnx_dir)) for p in onnx_dir.rglob("*") if p.is_file())
        size = place_output(onnx_dir, out, onnx_root(run_id, info.round.n), as_zip, tag)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return ExportResult(out, run_id, info.round.n, files, size, info.warnings)


def check_rows(info: ExportInfo) -> tuple[list[str], list[str | None]]:
    """Texts and gold labels the export is checked on: the task's evaluation rows, else its seeds."""
    rows = (info.task.eval_set or info.task.seeds)[:CHECK_ROWS]
    return [info.task.format_input(r.inputs) for r in rows], [r.output for r in rows]


def check_against_torch(hf_folder: Path, onnx_folder: Path, info: ExportInfo) -> Agreement:
    """Run both on the check rows, with the same tokenizer and the same length-sorted batches."""
    from gold.students.classifier import ClassifierStudent

    texts, gold = check_rows(info)
    student = ClassifierStudent.load(hf_folder, device="cpu")
    torch_probs = student.score(texts).probs
    onnx_model = OnnxClassifier(onnx_folder)
    return compare(torch_probs, onnx_model.probabilities(texts), onnx_model.labels, gold)


def render_note(info: ExportInfo, conversion: Conversion, check: Agreement) -> str:
    """The ONNX folder's README.md: what it is, how close it is to the PyTorch student, how to run it."""
    root = onnx_root(info.run.id, info.round.n)
    example = check_rows(info)[0][:1] or ["your text here"]
    if check.torch_accuracy is not None:
        accuracy = (f" Accuracy on those rows: {check.onnx_accuracy:.4f} (int8 ONNX) vs {check.torch_accuracy:.4f} "
                    "(PyTorch).")
    else:
        accuracy = ""
    where = "evaluation rows" if info.task.eval_set else "seed examples (the task has no evaluation set)"
    values = {
        "title": (f"GOLD student for “{md(info.task.name)}” as int8 ONNX (run {info.run.id}, "
                  f"round {info.round.n})"),
        "labels": ", ".join(md(label) for label in info.task.labels),
        "fp32_mb": f"{conversion.fp32_bytes / 1e6:.1f}",
        "int8_mb": f"{conversion.int8_bytes / 1e6:.1f}",
        "opset": str(OPSET),
        "inputs": ", ".join(f"`{n}`" for n in conversion.inputs),
        "check": (f"At export it predicted the same label as the PyTorch student on **{check.agreement:.1%}** of "
                  f"{check.rows} {where} (largest probability difference {check.max_prob_diff:.3f}, mean "
                  f"{check.mean_prob_diff:.4f}).{accuracy}") if check.rows else "",
        "usage": fenced(USAGE.format(root=root, example=repr(example[0])), "python"),
    }
    return Template(NOTE_TEMPLATE.read_text(encoding="utf-8")).substitute(values)


__all__ = ["ONNX_FILE", "OnnxClassifier", "Agreement", "Conversion", "compare", "convert", "export_onnx",
           "onnx_problem", "onnx_root", "softmax"]

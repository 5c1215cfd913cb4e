"""The int8 ONNX export of a classifier student: it loads with plain onnxruntime (in a process that cannot import
gold), predicts like the PyTorch student on the task's evaluation rows, and refuses what it cannot export with a
clear message. Real models: the session's `finished_run` student (read only)."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from support import PYTHON, ROOT, tiny_task

from gold import export, onnx_export
from gold.export import ExportError
from gold.layout import checkpoint_dir
from gold.specs import GoldSettings
from gold.store import Store

ONNX_FILES = {"model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md", "gold_run.json"}


def gold_cli(*args: str, home, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "gold", "--home", str(home), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def onnx_export_of_run(finished_run, tmp_path_factory):
    home, gold_id, _ = finished_run
    store = Store(home)
    out = tmp_path_factory.mktemp("onnx") / "student-onnx"
    result = onnx_export.export_onnx(store, gold_id, out)
    yield store, gold_id, result
    store.close()


@pytest.mark.slow
def test_onnx_predicts_like_the_pytorch_student(onnx_export_of_run, tmp_path):
    from gold.students.classifier import ClassifierStudent

    store, gold_id, result = onnx_export_of_run
    assert set(result.files) == ONNX_FILES
    rnd = export.pick_round(store, gold_id)
    task = store.get_task(store.get_run(gold_id).task_id).spec
    texts = [task.format_input(ex.inputs) for ex in task.eval_set]
    torch_probs = ClassifierStudent.load(rnd.checkpoint, device="cpu").score(texts).probs

    # As a user runs it: onnxruntime and a tokenizer, no torch model, GOLD not importable, the note's own code.
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    code = f"""
import json, sys
sys.modules["gold"] = None  # not importable, even where `pip install -e .` put it
try:
    import gold
    print("GOLD IMPORTABLE"); sys.exit(1)
except ImportError:
    pass
import numpy as np
import onnxruntime as ort
from transformers import AutoConfig, AutoTokenizer
folder = {str(result.path)!r}
tokenizer = AutoTokenizer.from_pretrained(folder)
labels = AutoConfig.from_pretrained(folder).id2label
session = ort.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
names = [i.name for i in session.get_inputs()]
probs = []
for text in json.load(open("texts.json")):
    enc = tokenizer([text], truncation=True, return_tensors="np")
    logits = session.run(["logits"], {{n: enc[n].astype(np.int64) for n in names}})[0]
    probs.append((np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))[0].tolist())
assert sys.modules["gold"] is None and not [m for m in sys.modules if m.startswith("gold.")]
print(json.dumps({{"labels": [labels[i] for i in range(len(labels))], "probs": probs}}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GOLD_HOME")}
    r = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    outside = json.loads(r.stdout.strip().splitlines()[-1])
    assert outside["labels"] == task.labels
    onnx_probs = np.array(outside["probs"])
    agreement = float((onnx_probs.argmax(1) == torch_probs.argmax(1)).mean())
    assert agreement >= 0.95, (agreement, onnx_probs, torch_probs)
    assert np.abs(onnx_probs - torch_probs).max() < 0.1
    # The in-app runner (length-sorted batches) agrees too, and predicts in the pipeline's shape.
    batched = onnx_export.OnnxClassifier(result.path).probabilities(texts)
    assert float((batched.argmax(1) == torch_probs.argmax(1)).mean()) >= 0.95
    assert np.abs(batched - torch_probs).max() < 0.1
    preds = onnx_export.OnnxClassifier(result.path).predict(texts[:2])
    assert [set(p) for p in preds] == [{"label", "score"}] * 2 and all(p["label"] in task.labels for p in preds)

    note = (result.path / "README.md").read_text()
    assert "onnxruntime" in note and f"of {len(texts)} evaluation rows" in note
    weights = (Path(rnd.checkpoint) / "model.safetensors").stat().st_size
    assert (result.path / "model.onnx").stat().st_size < 0.5 * weights
    assert json.loads((result.path / "gold_run.json").read_text())["round"] == rnd.n


@pytest.mark.slow
def test_cli_onnx_zip_and_refusals(finished_run, tmp_path):
    home, gold_id, _ = finished_run
    store = Store(home)
    rnd = export.pick_round(store, gold_id)
    r = gold_cli("export", str(gold_id), "--onnx", "--zip", "--out", str(tmp_path / "student"), home=home)
    assert r.returncode == 0, r.stderr
    assert f"round {rnd.n} as int8 ONNX to zip" in r.stdout
    root = onnx_export.onnx_root(gold_id, rnd.n)
    with zipfile.ZipFile(tmp_path / "student.zip") as z:
        assert set(z.namelist()) == {f"{root}/{f}" for f in ONNX_FILES}
    r = gold_cli("export", str(gold_id), "--onnx", "--no-data", "--out", str(tmp_path / "x"), home=home)
    assert r.returncode == 2 and "--no-data is for the plain folder" in r.stderr and "Traceback" not in r.stderr
    store.close()


def test_seq2seq_student_is_refused_clearly(store, home, tmp_path):
    task_id = tiny_task(store, "svamp", eval_rows=2)
    run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name="s2s")
    ckpt = checkpoint_dir(store.run_dir(run_id), 1)
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text("{}")
    store.start_round(run_id, 1)
    store.set_round_step(run_id, 1, "train", checkpoint=str(ckpt))
    store.finish_round(run_id, 1, {"metric_name": "exact_match", "metric": 0.0})
    store.finish_run(run_id, "done")
    with pytest.raises(ExportError, match="for classifier students only"):
        onnx_export.export_onnx(store, run_id, tmp_path / "out")
    r = gold_cli("export", str(run_id), "--onnx", "--out", str(tmp_path / "out"), home=home, timeout=120)
    assert r.returncode == 2 and "for classifier students only" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_agreement_measure():
    torch_probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    onnx_probs = np.array([[0.85, 0.15], [0.55, 0.45], [0.25, 0.75]])
    a = onnx_export.compare(torch_probs, onnx_probs, ["neg", "pos"], ["neg", "pos", "neg"])
    assert a.rows == 3 and a.agreement == pytest.approx(2 / 3) and a.max_prob_diff == pytest.approx(0.15)
    assert a.torch_accuracy == pytest.approx(2 / 3) and a.onnx_accuracy == pytest.approx(1 / 3)
    assert onnx_export.softmax(np.array([[0.0, 0.0]])).tolist() == [[0.5, 0.5]]

"""The Export page through AppTest: one click gives the zip (built once, then served from the cache), the
dataset buttons give JSONL and CSV, and a run without a finished round gets a clear st.error.

A download button with a callable registers it with the runtime's media file manager and runs it only when
clicked; here the callables are captured at registration and called as a click would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from support import ROOT, tiny_task

from gold import downloads, export
from gold.layout import exports_dir
from gold.specs import GoldSettings
from gold.store import Store

PAGE = str(ROOT / "views" / "export.py")
EVIL = '<script>alert("x")</script> **bold** [link](http://e)'


@pytest.fixture
def clicks(monkeypatch):
    """file_name -> the download button's callable, as registered on the last run."""
    registered: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        registered[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return registered


@pytest.mark.slow
def test_one_click_zip_is_built_once_and_holds_the_export(finished_run, monkeypatch, clicks, tmp_path):
    home, gold_id, _ = finished_run
    monkeypatch.setenv("GOLD_HOME", str(home))
    store = Store(home)
    shutil.rmtree(exports_dir(store.run_dir(gold_id)), ignore_errors=True)  # our cache only, never a checkpoint
    builds = []
    real_export_zip = downloads.export_zip
    monkeypatch.setattr(downloads, "export_zip", lambda *a, **k: builds.append(a) or real_export_zip(*a, **k))

    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    at.selectbox(key="export_run").set_value(gold_id).run()
    assert not at.exception, at.exception
    best = export.pick_round(store, gold_id).n
    assert at.selectbox(key=f"export_round_{gold_id}").value == best
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download the student (.zip)", "Samples as JSONL", "Samples as CSV",
                      "Hugging Face dataset (.zip)"]
    assert not at.error
    [rounds] = [d for d in at.dataframe if "exported" in d.value]
    assert rounds.proto.placeholder == "–"  # a round that never finished shows dashes, not the word None

    name = f"gold-run{gold_id}-round{best}"
    data = clicks[f"{name}.zip"]()
    again = clicks[f"{name}.zip"]()
    assert len(builds) == 1 and data == again  # built on the first click, cached for the next
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert set(z.namelist()) == {f"{name}/{f}" for f in ("config.json", "model.safetensors", "tokenizer.json",
                                                            "tokenizer_config.json", "README.md", "gold_run.json",
                                                            "data/train.jsonl")}
        card = z.read(f"{name}/README.md").decode()
    m = store.round(gold_id, best).metrics
    assert f"| {best} | {m.metric:.4f} |" in card

    # What the user does next: unzip, and classify with plain transformers (gold not importable there).
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GOLD_HOME")}
    code = ("import json, sys\nfrom transformers import pipeline\n"
            f"clf = pipeline('text-classification', model={name!r})\n"
            "print(json.dumps(clf(['a gorgeous, witty film', 'dull and lifeless'])))\n"
            "assert 'gold' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert {p["label"] for p in json.loads(r.stdout.strip().splitlines()[-1])} <= {"negative", "positive"}

    at.checkbox(key="export_data").uncheck().run()
    with zipfile.ZipFile(io.BytesIO(clicks[f"{name}.zip"]())) as z:
        assert f"{name}/data/train.jsonl" not in z.namelist()

    jsonl = clicks[f"gold-run{gold_id}-samples.jsonl"]().decode().splitlines()
    assert len(jsonl) == store.sample_counts(gold_id)["generated"]
    assert set(json.loads(jsonl[0])) >= {"input", "label", "round", "role", "energy", "flag", "vetoed", "reject_reason"}
    rows = list(csv.DictReader(io.StringIO(clicks[f"gold-run{gold_id}-samples.csv"]().decode())))
    assert len(rows) == len(jsonl)
    assert any(c.language == "markdown" and c.value.startswith("---\nlibrary_name: transformers") for c in at.code)

    # The Hugging Face dataset: a zip whose folder `datasets` loads, one row per kept sample.
    import datasets

    root = f"gold-run{gold_id}-data"
    zipfile.ZipFile(io.BytesIO(clicks[f"{root}.zip"]())).extractall(tmp_path / "ds")
    ds = datasets.load_from_disk(str(tmp_path / "ds" / root))["train"]
    counts = store.sample_counts(gold_id)
    assert len(ds) == counts["kept"] + counts["probe"] and ds.features["label"].names == ["negative", "positive"]


@pytest.mark.slow
def test_onnx_is_built_on_a_button_then_downloaded(finished_run, monkeypatch, clicks, tmp_path):
    home, gold_id, _ = finished_run
    monkeypatch.setenv("GOLD_HOME", str(home))
    store = Store(home)
    best = export.pick_round(store, gold_id).n
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    at.selectbox(key="export_run").set_value(gold_id).run()
    assert "download_onnx" not in [b.key for b in at.get("download_button")]
    at.button(key="build_onnx").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download the int8 ONNX student (.zip)" in labels
    root = f"gold-run{gold_id}-round{best}-onnx"
    with zipfile.ZipFile(io.BytesIO(clicks[f"{root}.zip"]())) as z:
        assert {f"{root}/model.onnx", f"{root}/config.json", f"{root}/README.md"} <= set(z.namelist())
    at.run()  # a rerun serves the built zip: the button stays, nothing is rebuilt
    assert "Download the int8 ONNX student (.zip)" in [b.proto.label for b in at.get("download_button")]


def test_run_without_a_finished_round_shows_an_error(home, clicks):
    store = Store(home)
    task_id = tiny_task(store, eval_rows=2)
    run_id = store.create_run(task_id, GoldSettings(rounds=2).to_dict(), name=EVIL)
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": EVIL}, "output": "positive"}])
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and f"Run {run_id} has no finished round yet" in at.error[0].value
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Samples as JSONL", "Samples as CSV", "Hugging Face dataset (.zip)"]  # data without a student
    assert json.loads(clicks[f"gold-run{run_id}-samples.jsonl"]())["input"] == EVIL
    assert not any("<script>" in m.value for m in at.markdown)


def test_no_runs_yet(home):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "No run yet" in at.info[0].value


@pytest.mark.slow
def test_the_round_of_a_running_run_is_counted_against_the_rounds_it_will_run(finished_run, home):
    """A 4-round run with round 1 finished and round 2 under way exports round 1 of 4 (not "of 2", the rounds
    started so far). Round 1's student is a copy of the finished run's, so no training happens here."""
    from gold.layout import checkpoint_dir

    source = Store(finished_run[0])
    trained = checkpoint_dir(source.run_dir(finished_run[1]), 1)
    source.close()
    store = Store(home)
    run_id = store.create_run(tiny_task(store), GoldSettings(rounds=4).to_dict(), name="four rounds")
    store.start_round(run_id, 1)
    saved = checkpoint_dir(store.run_dir(run_id), 1)
    shutil.copytree(trained, saved)
    store.set_round_step(run_id, 1, "train", {"train_size": 72}, checkpoint=str(saved))
    store.finish_round(run_id, 1, {"metric_name": "accuracy", "metric": 0.6, "metric_rows": 16, "metric_on": "eval"})
    store.start_round(run_id, 2)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["round"] == "1 of 4"

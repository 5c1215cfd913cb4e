"""Export: the student folder / zip, its model card, the dataset files, and `python -m gold export|predict`.

Real-model tests reuse the session's `finished_run` (a real tiny GOLD run and its baseline); they read it and
undo what they change (the veto test restores its vetoes). The exported folder is checked in a separate
Python process that cannot import `gold` at all, as a user without GOLD Studio would load it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from support import PYTHON, ROOT, tiny_task

from gold import downloads, export
from gold.export import ExportError
from gold.layout import checkpoint_dir, train_ids_path
from gold.modelcard import fenced, md
from gold.specs import GoldSettings
from gold.store import Store

EXPECTED_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
                  "gold_run.json", "data/train.jsonl"}


def gold_cli(*args: str, home, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "gold", "--home", str(home), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


BLOCK_GOLD = 'import sys\nsys.modules["gold"] = None  # not importable, even where `pip install -e .` put it\n'


def plain_python(code: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run code where `gold` is not importable (cwd outside the project, no PYTHONPATH, and blocked in case the
    venv has it installed), as a user without GOLD Studio would."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GOLD_HOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([PYTHON, "-c", BLOCK_GOLD + code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def gold_export(finished_run, tmp_path_factory):
    """One folder export of the GOLD run's default round, shared by the read-only checks below."""
    home, gold_id, _ = finished_run
    store = Store(home)
    rnd = export.pick_round(store, gold_id)
    ckpt_dir = Path(rnd.checkpoint).parent
    before = snapshot(ckpt_dir)
    out = tmp_path_factory.mktemp("export") / "student"
    result = export.export_student(store, gold_id, out)
    assert snapshot(ckpt_dir) == before  # the checkpoint folder is only read
    yield store, gold_id, rnd, result
    store.close()


# -- the folder, loaded without GOLD ------------------------------------------------------------------------------

@pytest.mark.slow
def test_folder_loads_with_plain_pipeline_and_predicts_like_the_student(gold_export, tmp_path):
    from gold.students.classifier import ClassifierStudent

    store, gold_id, rnd, result = gold_export
    task = store.get_task(store.get_run(gold_id).task_id).spec
    texts = [task.format_input(ex.inputs) for ex in task.eval_set]
    assert len(texts) == 16
    in_app = ClassifierStudent.load(rnd.checkpoint).predict(texts)

    (tmp_path / "texts.json").write_text(json.dumps(texts))
    code = f"""
import json, sys
try:
    import gold
    print("GOLD IMPORTABLE"); sys.exit(1)
except ImportError:
    pass
from transformers import pipeline
clf = pipeline("text-classification", model={str(result.path)!r})
texts = json.load(open("texts.json"))
out = clf(texts, truncation=True)
assert sys.modules["gold"] is None and not [m for m in sys.modules if m.startswith("gold.")]
print(json.dumps(out))
"""
    r = plain_python(code, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    outside = json.loads(r.stdout.strip().splitlines()[-1])
    assert [o["label"] for o in outside] == [p.output for p in in_app]
    assert [o["score"] for o in outside] == pytest.approx([p.confidence for p in in_app], abs=1e-4)


@pytest.mark.slow
def test_folder_has_labels_and_provenance(gold_export):
    store, gold_id, rnd, result = gold_export
    folder = result.path
    assert set(result.files) == EXPECTED_FILES
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert "quantization_config" not in config
    tok = json.loads((folder / "tokenizer_config.json").read_text())
    assert tok["model_max_length"] == 128 and "local_files_only" not in tok
    prov = json.loads((folder / "gold_run.json").read_text())
    run = store.get_run(gold_id)
    assert prov["run"]["id"] == gold_id and prov["round"] == rnd.n
    assert prov["settings"] == run.settings
    assert GoldSettings.from_dict(prov["settings"]) == GoldSettings.from_dict(run.settings)
    assert prov["round_metrics"] == store.round(gold_id, rnd.n).metrics.to_dict()
    assert [r["metrics"] for r in prov["rounds"]] == [r.metrics.to_dict() for r in store.rounds(gold_id)]
    assert prov["data"]["generated"] == store.sample_counts(gold_id)["generated"]
    assert prov["teacher"].startswith("SmolLM2-135M-Instruct")  # who wrote the examples, and who read them back
    assert prov["labeler"] == {"name": "the teacher (generating and reading labels back)", "choice": None}
    assert "| Labeler (read the soft labels) | the teacher" in (folder / "README.md").read_text()
    assert prov["files"]["model.safetensors"]["bytes"] == (folder / "model.safetensors").stat().st_size
    # data/train.jsonl is exactly the round's training set: its seeds, then the sample ids it saw.
    ids = json.loads(train_ids_path(store.run_dir(gold_id), rnd.n).read_text())
    rows = [json.loads(line) for line in (folder / "data/train.jsonl").read_text().splitlines()]
    assert len(rows) == ids["seeds"] + len(ids["sample_ids"]) == rnd.metrics.train_size
    assert [r["sample_id"] for r in rows if r["source"] == "generated"] == ids["sample_ids"]
    samples = {s.id: s for s in store.samples(gold_id)}
    assert all(r["label"] == samples[r["sample_id"]].output for r in rows if r["sample_id"])


@pytest.mark.slow
def test_model_card_metrics_equal_the_store(gold_export, finished_run):
    store, gold_id, rnd, result = gold_export
    _, _, base_id = finished_run
    card = (result.path / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-classification\n")
    lines = card.splitlines()
    start = lines.index("| round | accuracy | baseline accuracy | train size | kept | noise | feedback | energy mean "
                        "| energy std |  |")
    table = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[int(cells[0])] = (cells[1], cells[2], int(cells[3]))
    gold_rounds = store.rounds(gold_id)
    base_rounds = {r.n: r.metrics for r in store.rounds(base_id)}
    assert sorted(table) == [r.n for r in gold_rounds]
    for r in gold_rounds:
        metric, baseline, train_size = table[r.n]
        assert metric == f"{r.metrics.metric:.4f}"
        assert baseline == f"{base_rounds[r.n].metric:.4f}"
        assert train_size == r.metrics.train_size
    counts = store.sample_counts(gold_id)
    keys = ("generated", "kept", "rejected", "noise", "vetoed", "probe", "feedback")
    assert "| " + " | ".join(str(counts[k]) for k in keys) + " |" in card
    assert f"run {gold_id}, round {rnd.n}" in card
    assert 'pipeline("text-classification", model="' in card
    for heading in ("## How to use", "## Task", "## Evaluation", "## Training data", "## GOLD settings",
                    "## Intended use and limits"):
        assert heading in card
    assert "No sample was vetoed by hand." in card


def card_metadata(card: str) -> dict:
    import yaml

    assert card.startswith("---\n")
    return yaml.safe_load(card.split("\n---\n", 1)[0][4:])


@pytest.mark.slow
def test_model_card_metadata_is_what_the_hub_reads(gold_export):
    """The front matter parses as YAML, and its fields are the store's: pipeline, base model, the example's
    dataset, licence, and the exported round's score on the evaluation rows as model-index."""
    from huggingface_hub import ModelCard

    store, gold_id, rnd, result = gold_export
    card = (result.path / "README.md").read_text()
    meta = card_metadata(card)
    m = store.round(gold_id, rnd.n).metrics
    assert m.metric_on == "eval"
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["stanfordnlp/sst2"] and meta["language"] == ["en"]  # the SST-2 example task
    assert meta["license"] == "apache-2.0" and "gold-studio" in meta["tags"]
    [entry] = meta["model-index"]
    assert entry["name"] == f"gold-run{gold_id}-round{rnd.n}"
    [res] = entry["results"]
    assert res["task"]["type"] == "text-classification"
    assert res["dataset"] == {"name": f"Movie review sentiment (SST-2): {m.metric_rows} evaluation rows",
                              "type": "stanfordnlp/sst2"}
    assert res["metrics"] == [{"type": "accuracy", "value": m.metric, "name": "Accuracy", "verified": False}]
    [parsed] = ModelCard(card).data.eval_results  # the Hub's own parser reads the same result
    assert parsed.metric_type == "accuracy" and parsed.metric_value == m.metric
    assert parsed.dataset_type == "stanfordnlp/sst2" and parsed.task_type == "text-classification"
    assert "Stanford Sentiment Treebank" in card and "licence as stated by the source: MIT" in card


def test_model_card_metadata_of_a_users_own_task(store, tmp_path):
    """A task of the user's own: no datasets, model-index dataset 'custom'; seed-measured rounds get no
    model-index (the seeds are training data); a task name with YAML/Markdown specials stays a plain string."""
    from gold.export import ExportInfo
    from gold.modelcard import front_matter
    from gold.specs import Example, TaskSpec

    name = "reviews: 'quoted' # not a comment --- [x]"
    spec = TaskSpec(name=name, kind="classification", instruction="Classify.", labels=["good", "bad"],
                    seeds=[Example({"text": "fine"}, "good"), Example({"text": "awful"}, "bad")],
                    eval_set=[Example({"text": "great"}, "good")])
    task_id = store.create_task(spec)
    run_id = store.create_run(task_id, GoldSettings(rounds=2).to_dict(), name="own")
    for n, on in ((1, "eval"), (2, "seeds")):
        store.start_round(run_id, n)
        store.finish_round(run_id, n, {"metric_name": "accuracy", "metric": 0.75, "metric_on": on, "metric_rows": 1})
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")

    def meta_of(round_n: int) -> dict:
        info = ExportInfo(run=store.get_run(run_id), task=store.get_task(task_id).spec, settings=GoldSettings(),
                          round=store.round(run_id, round_n), rounds=store.rounds(run_id), checkpoint=ckpt, notes={},
                          counts=store.sample_counts(run_id), reject_reasons={}, train_ids=None, vetoed=[])
        return card_metadata("---\n" + front_matter(info, "accuracy") + "\n---\n")

    meta = meta_of(1)
    assert "datasets" not in meta and meta["license"] == "apache-2.0"
    dataset = meta["model-index"][0]["results"][0]["dataset"]
    assert dataset == {"name": "reviews: 'quoted' not a comment --- x: 1 evaluation rows", "type": "custom"}
    assert "model-index" not in meta_of(2)


@pytest.mark.slow
def test_zip_holds_exactly_the_listed_files(finished_run, tmp_path):
    home, gold_id, _ = finished_run
    store = Store(home)
    rnd = export.pick_round(store, gold_id)
    root = f"gold-run{gold_id}-round{rnd.n}"
    result = export.export_zip(store, gold_id, tmp_path / "student.zip")
    with zipfile.ZipFile(result.path) as z:
        assert set(z.namelist()) == {f"{root}/{f}" for f in EXPECTED_FILES}
        assert z.testzip() is None
    lean = export.export_zip(store, gold_id, tmp_path / "lean.zip", round_n=1, include_data=False)
    with zipfile.ZipFile(lean.path) as z:
        assert set(z.namelist()) == {f"gold-run{gold_id}-round1/{f}" for f in EXPECTED_FILES - {"data/train.jsonl"}}
    with pytest.raises(ExportError, match="already exists"):
        export.export_zip(store, gold_id, tmp_path / "lean.zip")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


@pytest.mark.slow
def test_vetoes_are_listed_and_the_zip_cache_follows_them(finished_run, tmp_path):
    home, gold_id, _ = finished_run
    store = Store(home)
    rnd = export.pick_round(store, gold_id)
    trained = set(json.loads(train_ids_path(store.run_dir(gold_id), rnd.n).read_text())["sample_ids"])
    kept = store.samples(gold_id, kept_only=True)
    pick = [next(s for s in kept if s.id in trained), next(s for s in kept if s.id not in trained)]
    first = downloads.cached_zip(home, gold_id)
    built = first.stat().st_mtime_ns
    assert downloads.cached_zip(home, gold_id) == first and first.stat().st_mtime_ns == built  # served, not rebuilt
    store.set_vetoed([s.id for s in pick], True)
    try:
        result = export.export_student(store, gold_id, tmp_path / "vetoed")
        card = (result.path / "README.md").read_text()
        assert "**2 samples vetoed by hand**" in card
        for s, in_train in zip(pick, ("yes", "no")):
            assert re.search(rf"^\| {s.id} \| {s.round} \| [^|]+ \| {in_train} \|", card, re.M), card
        prov = json.loads((result.path / "gold_run.json").read_text())
        assert [v["id"] for v in prov["vetoed"]] == [s.id for s in pick]
        assert prov["data"]["vetoed"] == 2
        rows = {r["id"]: r for r in export.dataset_rows(store, gold_id)}
        assert all(rows[s.id]["vetoed"] is True for s in pick)
        second = downloads.cached_zip(home, gold_id)  # the card changed: a fresh zip, the stale one removed
        assert second != first and second.is_file() and not first.exists()
        with zipfile.ZipFile(second) as z:
            assert "2 samples vetoed by hand" in z.read(f"{export.folder_name(gold_id, rnd.n)}/README.md").decode()
    finally:
        store.set_vetoed([s.id for s in pick], False)
    assert not [s for s in store.samples(gold_id) if s.vetoed]


# -- the CLI ----------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_export_latest_zip_then_predict(finished_run, tmp_path):
    home, gold_id, base_id = finished_run
    store = Store(home)
    task_name = store.get_run(gold_id).task_name
    r = gold_cli("export", "latest", "--task", task_name, "--out", str(tmp_path / "latest"), "--zip", home=home)
    assert r.returncode == 0, r.stderr
    newest = max(gold_id, base_id)
    assert f"Exported run {newest}, round" in r.stdout and (tmp_path / "latest.zip").is_file()
    r = gold_cli("export", str(gold_id), "--round", "1", "--out", str(tmp_path / "r1"), home=home)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r1" / "gold_run.json").read_text())["round"] == 1
    r = gold_cli("predict", str(tmp_path / "r1"), "a gorgeous, witty, seductive movie.", "the worst film of the year",
                 home=home)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, ("a gorgeous, witty, seductive movie.", "the worst film of the year")):
        label, score, echoed = line.split("\t")
        assert label in ("negative", "positive") and 0.5 <= float(score) <= 1 and echoed == text
    assert "Loading weights" not in r.stderr and "Traceback" not in r.stderr
    # Refusals: an existing target, a round that does not exist, a run that does not exist.
    for args, message in (
        (["export", str(gold_id), "--out", str(tmp_path / "r1")], "already exists"),
        (["export", str(gold_id), "--round", "9", "--out", str(tmp_path / "r9")], "Round 9 of run"),
        (["export", "999", "--out", str(tmp_path / "x")], "no run 999"),
        (["export", "newest", "--out", str(tmp_path / "x")], "is not a run"),
        (["predict", str(tmp_path / "nowhere"), "text"], "not a model folder"),
    ):
        r = gold_cli(*args, home=home)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_run_without_a_finished_round_is_a_clear_error(store, home, tmp_path):
    task_id = tiny_task(store, eval_rows=2)
    run_id = store.create_run(task_id, GoldSettings(rounds=2).to_dict(), name="waiting")
    outdir = tmp_path / "exports"
    outdir.mkdir()
    with pytest.raises(ExportError, match="no finished round yet \\(it is still queued\\)"):
        export.export_student(store, run_id, outdir / "out")
    r = gold_cli("export", str(run_id), "--out", str(outdir / "out"), home=home, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: Run {run_id} has no finished round yet") and "Traceback" not in r.stderr
    r = gold_cli("export", "latest", "--out", str(outdir / "out"), "--zip", home=home, timeout=120)
    assert r.returncode == 2 and "no finished run" in r.stderr
    assert list(outdir.iterdir()) == []  # nothing written, not even a temp folder


# -- the dataset -------------------------------------------------------------------------------------------------------

def test_dataset_export_jsonl_and_csv(store, tmp_path):
    task_id = tiny_task(store, eval_rows=2)
    run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name="data")
    ids = store.add_samples(run_id, 1, "train", [
        {"inputs": {"text": "=HYPERLINK(\"http://x\")"}, "output": "positive"},
        {"inputs": {"text": "plain, \"quoted\"\nand multi-line"}, "output": "negative"},
        {"inputs": {}, "output": None, "reject_reason": "unparseable", "raw": "???"},
    ])
    store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "a probe"}, "output": "negative"}])
    store.set_scores([{"id": ids[0], "energy": -0.5, "prediction": "positive", "confidence": 0.9}])
    store.set_flags(run_id, {ids[0]: "noise"})
    store.set_vetoed([ids[1]])
    rows = [json.loads(line) for line in export.dataset_jsonl(store, run_id).decode().splitlines()]
    assert [r["id"] for r in rows] == [*ids, ids[-1] + 1]
    assert rows[0] == {"id": ids[0], "round": 1, "role": "train", "input": "=HYPERLINK(\"http://x\")",
                       "label": "positive", "energy": -0.5, "prediction": "positive", "confidence": 0.9,
                       "flag": "noise", "vetoed": False, "reject_reason": None}
    assert rows[1]["vetoed"] is True and rows[2]["reject_reason"] == "unparseable" and rows[2]["flag"] is None
    assert rows[3]["role"] == "probe"
    table = list(csv.DictReader(io.StringIO(export.dataset_csv(store, run_id).decode())))
    assert list(table[0]) == ["id", "round", "role", "input", "label", "energy", "prediction", "confidence", "flag",
                              "vetoed", "reject_reason"]
    assert table[0]["input"] == "'=HYPERLINK(\"http://x\")"  # not run as a formula by a spreadsheet
    assert table[1]["input"] == "plain, \"quoted\"\nand multi-line" and table[1]["vetoed"] == "true"
    assert table[2]["reject_reason"] == "unparseable" and table[0]["energy"] == "-0.5"
    assert downloads.dataset_file(store.home, run_id, "csv") == export.dataset_csv(store, run_id)


# -- small parts --------------------------------------------------------------------------------------------------------

def test_round_choice():
    from gold.checkpoints import best_round
    from gold.records import Round, RoundMetrics

    def r(n, metric):
        return Round(id=n, run_id=1, n=n, status="done", step="done", metrics=RoundMetrics(metric=metric))

    assert export.best_round is best_round  # the round Export picks by default is the one pruning keeps
    assert best_round([r(1, 0.6), r(2, 0.7), r(3, 0.65)]).n == 2
    assert best_round([r(1, 0.7), r(2, 0.7)]).n == 2  # a tie: the later round (more data)
    assert best_round([r(1, None), r(2, None)]).n == 2  # no score: the last
    assert best_round([r(1, 0.5), r(2, float("nan"))]).n == 1


def test_resolve_run_latest_is_the_newest_finished(store, tmp_path):
    task_id = tiny_task(store, eval_rows=2)
    done = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name="a")
    store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name="b")  # queued, newer
    ckpt = checkpoint_dir(store.run_dir(done), 1)
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text("{}")
    store.start_round(done, 1)
    store.set_round_step(done, 1, "train", checkpoint=str(ckpt))
    store.finish_round(done, 1, {"metric": 0.5})
    store.finish_run(done, "done")
    assert export.resolve_run(store, "latest") == done
    assert export.resolve_run(store, "latest", task=str(task_id)) == done
    assert export.resolve_run(store, str(done)) == done
    with pytest.raises(ExportError, match="not a run"):
        export.resolve_run(store, "../etc")


def test_settings_lose_url_credentials_and_user_text_is_escaped():
    s = GoldSettings().to_dict()
    s["teacher"]["base_url"] = "https://user:secret@llm.example.com:8443/v1?api_key=abc"
    red = export.redact_settings(s)
    assert red["teacher"]["base_url"] == "https://llm.example.com:8443/v1"
    assert s["teacher"]["base_url"].startswith("https://user:secret")  # the caller's dict is left alone
    assert md("<script>alert(1)</script> | *x*\n[link](http://e)") == \
        "\\<script\\>alert(1)\\</script\\> \\| \\*x\\* \\[link\\](http://e)"
    block = fenced("a ``` b")
    assert block.startswith("````text\n") and block.endswith("\n````")


def test_evil_names_stay_text_in_the_card(store, tmp_path):
    """Markdown/HTML in user text does not become markup in README.md (pure rendering, no model)."""
    from gold.export import ExportInfo
    from gold.modelcard import render_card

    evil = "<img src=x onerror=alert(1)> **bold** | [x](javascript:alert(1))"
    task_id = tiny_task(store, eval_rows=1)
    task = store.get_task(task_id).spec
    task.name, task.instruction = evil, "Classify.\n```\n# not a heading"
    run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name=evil)
    ckpt = tmp_path / "ckpt"  # the card needs no weights: a bare checkpoint folder will do
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "gold_student.json").write_text(json.dumps({"kind": "classification", "max_length": 128}))
    store.start_round(run_id, 1)
    store.finish_round(run_id, 1, {"metric_name": "accuracy", "metric": 0.5, "metric_on": "eval", "metric_rows": 1})
    info = ExportInfo(run=store.get_run(run_id), task=task, settings=GoldSettings(rounds=1),
                      round=store.round(run_id, 1), rounds=store.rounds(run_id), checkpoint=ckpt,
                      notes=json.loads((ckpt / "gold_student.json").read_text()), counts=store.sample_counts(run_id),
                      reject_reasons={}, train_ids=None, vetoed=[])
    card = render_card(info, export.run_json(info))
    unescaped = re.compile(r"(?<!\\)(<img|\*\*bold|\]\(javascript|\| \[x)")
    assert "\\<img src=x onerror=alert(1)\\>" in card and not unescaped.search(card)
    assert "\n# not a heading" in card and "````text\nClassify." in card  # inside a longer fence


# -- a seq2seq student whose weights came from GGUF ------------------------------------------------------------------

@pytest.mark.slow
def test_seq2seq_student_from_gguf_exports_a_plain_folder(store, tmp_path):
    """The embedded SmolLM2 GGUF, dequantized into a seq2seq student, exports as an ordinary HF folder: no
    quantization_config, no .gguf, loadable by a plain `pipeline("text-generation")` with `gguf` unavailable,
    answering as the in-app student does."""
    from gold.students.seq2seq import Seq2SeqStudent

    task_id = tiny_task(store, "svamp", eval_rows=2)
    task = store.get_task(task_id).spec
    settings = GoldSettings(rounds=1)
    settings.student.model = "embedded:smollm2-135m-instruct"
    run_id = store.create_run(task_id, settings.to_dict(), name="s2s")
    student = Seq2SeqStudent()  # loaded from the GGUF file
    ckpt = checkpoint_dir(store.run_dir(run_id), 1)
    student.save(ckpt)
    train_ids_path(store.run_dir(run_id), 1).write_text(json.dumps({"seeds": len(task.seeds), "sample_ids": []}))
    store.start_round(run_id, 1)
    store.set_round_step(run_id, 1, "train", checkpoint=str(ckpt))
    store.finish_round(run_id, 1, {"metric_name": "exact_match", "metric": 0.0, "metric_on": "eval", "metric_rows": 2})
    store.finish_run(run_id, "done")

    result = export.export_student(store, run_id, tmp_path / "s2s")
    folder = result.path
    assert set(result.files) == {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                                 "tokenizer_config.json", "README.md", "gold_run.json", "data/train.jsonl"} | (
        {"chat_template.jinja"} if (ckpt / "chat_template.jinja").is_file() else set())
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and "gguf" not in json.dumps(config).lower()
    assert not list(folder.rglob("*.gguf"))
    prov = json.loads((folder / "gold_run.json").read_text())
    assert prov["task"]["kind"] == "seq2seq" and prov["student"]["format"]["prompt"] == "Input: {text}\nOutput:"
    card = (folder / "README.md").read_text()
    assert 'pipeline("text-generation", model="' in card and "pipeline_tag: text-generation" in card

    question = task.format_input(task.eval_set[0].inputs)
    expected = student.predict([question])[0].output
    (tmp_path / "q.json").write_text(json.dumps(question))
    code = f"""
import json, sys
sys.modules["gguf"] = None  # GGUF support unavailable: the folder must not need it
from transformers import pipeline
gen = pipeline("text-generation", model={str(folder)!r})
q = json.load(open("q.json"))
out = gen("Input: " + q + "\\nOutput:", do_sample=False, return_full_text=False)[0]["generated_text"]
assert sys.modules["gold"] is None and not [m for m in sys.modules if m.startswith("gold.")]
print(json.dumps(out.split("\\n")[0].strip()))
"""
    r = plain_python(code, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == expected
    assert export.predict_folder(folder, [question]) == [{"text": question, "output": expected}]

"""The run's data as a Hugging Face dataset folder: it loads with the real `datasets` library three ways
(load_dataset on the folder, load_dataset("parquet"), load_from_disk), its card's YAML parses and says what the
store says, and bad requests are clear errors. Real store, real `datasets`; the finished-run checks reuse the
session's `finished_run` (read only)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from support import PYTHON, ROOT, tiny_task

from gold import datasets_export, downloads
from gold.export import ExportError
from gold.specs import GoldSettings
from gold.store import Store


def gold_cli(*args: str, home, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "gold", "--home", str(home), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("\n---\n", 1)[0][4:])


def load_all_ways(folder: Path, cache: Path):
    """The folder through each loader a user would try; all must give the same rows."""
    import datasets

    by_folder = datasets.load_dataset(str(folder), split="train", cache_dir=str(cache / "a"))
    by_parquet = datasets.load_dataset("parquet", data_files=str(folder / "data" / "train-*.parquet"), split="train",
                                       cache_dir=str(cache / "b"))
    from_disk = datasets.load_from_disk(str(folder))["train"]
    assert by_folder.to_list() == by_parquet.to_list() == from_disk.to_list()
    assert by_folder.features == by_parquet.features == from_disk.features
    return by_folder


@pytest.fixture
def small_run(store):
    """A run with kept, rejected, probe, noise, feedback and vetoed samples, soft labels on two of them."""
    task_id = tiny_task(store, eval_rows=2)
    run_id = store.create_run(task_id, GoldSettings(rounds=2).to_dict(), name="data")
    ids = store.add_samples(run_id, 1, "train", [
        {"inputs": {"text": "a warm, funny film"}, "output": "positive"},
        {"inputs": {"text": "dull, \"quoted\"\nand multi-line"}, "output": "negative"},
        {"inputs": {"text": "=1+1 looks like a formula"}, "output": "negative"},
        {"inputs": {}, "output": None, "reject_reason": "unparseable", "raw": "???"},
    ])
    probe = store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "a probe"}, "output": "positive"}])
    store.set_teacher_probs({ids[0]: [0.1, 0.9], ids[1]: [0.7, 0.3]})
    store.set_scores([{"id": ids[0], "energy": -2.5, "prediction": "positive", "confidence": 0.9}])
    store.set_flags(run_id, {ids[1]: "noise", ids[2]: "feedback"})
    store.set_vetoed([ids[2]])
    return run_id, ids, probe[0]


def test_dataset_folder_loads_with_datasets_and_its_card_says_what_the_store_says(store, small_run, tmp_path):
    import datasets

    run_id, ids, probe_id = small_run
    result = datasets_export.export_dataset(store, run_id, tmp_path / "data")
    folder = result.path
    assert {"README.md", "data/train-00000-of-00001.parquet", "dataset_dict.json"} <= set(result.files)
    ds = load_all_ways(folder, tmp_path / "cache")

    counts = store.sample_counts(run_id)
    assert len(ds) == counts["kept"] + counts["probe"] == 4  # the rejected reply is counted, not a row
    assert ds.features["label"] == datasets.ClassLabel(names=["negative", "positive"])
    assert ds.features["soft_label"] == datasets.List(datasets.Value("float32"), length=2)
    rows = {r["sample_id"]: r for r in ds.to_list()}
    assert sorted(rows) == [*ids[:3], probe_id]
    first = rows[ids[0]]
    assert first["text"] == "a warm, funny film" and ds.features["label"].int2str(first["label"]) == "positive"
    assert first["soft_label"] == pytest.approx([0.1, 0.9]) and first["energy"] == pytest.approx(-2.5)
    assert first["round"] == 1 and first["role"] == "train" and first["flag"] == "ok" and first["vetoed"] is False
    assert rows[ids[1]]["text"] == "dull, \"quoted\"\nand multi-line" and rows[ids[1]]["flag"] == "noise"
    assert rows[ids[2]]["text"] == "=1+1 looks like a formula"  # text as written: no spreadsheet escaping here
    assert rows[ids[2]]["vetoed"] is True and rows[ids[2]]["soft_label"] is None and rows[ids[2]]["energy"] is None
    assert rows[probe_id]["role"] == "probe"
    assert sum(r["vetoed"] for r in rows.values()) == counts["vetoed"]
    assert sum(r["flag"] == "noise" for r in rows.values()) == counts["noise"]

    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    assert meta["task_categories"] == ["text-classification"] and meta["size_categories"] == ["n<1K"]
    assert meta["license"] == "mit" and meta["source_datasets"] == ["stanfordnlp/sst2"]  # the SST-2 example's
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert meta["dataset_info"]["splits"] == [{"name": "train", "num_examples": 4}]
    label_feature = next(f for f in meta["dataset_info"]["features"] if f["name"] == "label")
    assert label_feature["dtype"]["class_label"]["names"] == {"0": "negative", "1": "positive"}
    from huggingface_hub import DatasetCard

    assert DatasetCard(card).data.task_categories == ["text-classification"]  # the Hub's own parser reads it

    keys = ("generated", "kept", "probe", "rejected", "noise", "feedback", "vetoed")
    assert "| " + " | ".join(str(counts[k]) for k in keys) + " |" in card
    assert "| negative | 2 | 2 | 0 | 1 | 1 |" in card and "| positive | 2 | 1 | 1 | 0 | 0 |" in card
    assert "**1 row vetoed by hand**" in card and "unparseable 1" in card
    assert "Teacher (wrote the texts):** SmolLM2-135M-Instruct" in card
    assert "Stanford Sentiment Treebank" in card and "MIT" in card
    assert "`soft_label`" in card


def test_zip_and_cli_and_refusals(store, home, small_run, tmp_path):
    run_id, _, _ = small_run
    data = downloads.dataset_zip_bytes(home, run_id)
    root = datasets_export.dataset_root(run_id)
    (tmp_path / "z.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "z.zip") as z:
        names = z.namelist()
        z.extractall(tmp_path / "unzipped")
    assert f"{root}/README.md" in names and f"{root}/data/train-00000-of-00001.parquet" in names
    assert len(load_all_ways(tmp_path / "unzipped" / root, tmp_path / "cache")) == 4

    r = gold_cli("export", str(run_id), "--data", "--out", str(tmp_path / "cli"), home=home)
    assert r.returncode == 0, r.stderr
    assert "as a Hugging Face dataset to folder" in r.stdout and (tmp_path / "cli" / "README.md").is_file()
    empty = store.create_run(store.get_run(run_id).task_id, GoldSettings(rounds=1).to_dict(), name="empty")
    outdir = tmp_path / "refused"
    outdir.mkdir()
    for args, message in (
        (["export", str(run_id), "--data", "--out", str(tmp_path / "cli")], "already exists"),
        (["export", str(empty), "--data", "--out", str(outdir / "x")], f"Run {empty} has no kept samples yet"),
        (["export", str(run_id), "--data", "--round", "1", "--out", str(outdir / "y")], "--round and --no-data"),
        (["export", str(run_id), "--data", "--onnx", "--out", str(outdir / "z")], "not allowed with argument"),
    ):
        r = gold_cli(*args, home=home)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert list(outdir.iterdir()) == []  # nothing written, not even a temp folder
    with pytest.raises(ExportError, match="no kept samples"):
        datasets_export.export_dataset(store, empty, outdir / "x")


def test_seq2seq_and_several_input_fields(store, tmp_path):
    from gold.specs import Example, TaskSpec

    task_id = tiny_task(store, "svamp", eval_rows=2)
    run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name="s2s")
    store.add_samples(run_id, 1, "train", [{"inputs": {"question": "2 + 3 apples?"}, "output": "5"}])
    folder = datasets_export.export_dataset(store, run_id, tmp_path / "s2s").path
    ds = load_all_ways(folder, tmp_path / "c1")
    assert ds.to_list()[0]["question"] == "2 + 3 apples?" and ds.to_list()[0]["output"] == "5"
    assert "label" not in ds.features and "soft_label" not in ds.features
    meta = front_matter((folder / "README.md").read_text())
    assert meta["task_categories"] == ["text-generation"] and meta["license"] == "mit"

    spec = TaskSpec(name="pairs", kind="classification", instruction="Entailment?", labels=["yes", "no"],
                    input_fields=["premise", "hypothesis"],
                    seeds=[Example({"premise": "p1", "hypothesis": "h1"}, "yes"),
                           Example({"premise": "p2", "hypothesis": "h2"}, "no")])
    pairs = store.create_run(store.create_task(spec), GoldSettings(rounds=1).to_dict(), name="pairs")
    store.add_samples(pairs, 1, "train", [{"inputs": {"premise": "a cat", "hypothesis": "an animal"}, "output": "yes"}])
    folder = datasets_export.export_dataset(store, pairs, tmp_path / "pairs").path
    row = load_all_ways(folder, tmp_path / "c2").to_list()[0]
    assert row["premise"] == "a cat" and row["hypothesis"] == "an animal" and row["label"] == 0
    meta = front_matter((folder / "README.md").read_text())
    assert meta["license"] == "unknown" and "source_datasets" not in meta  # the user's own data


@pytest.mark.slow
def test_finished_run_dataset_counts_equal_the_store(finished_run, tmp_path):
    home, gold_id, _ = finished_run
    store = Store(home)
    try:
        folder = datasets_export.export_dataset(store, gold_id, tmp_path / "data").path
        ds = load_all_ways(folder, tmp_path / "cache")
        counts = store.sample_counts(gold_id)
        kept = store.samples(gold_id, kept_only=True)
        assert len(ds) == len(kept) == counts["kept"] + counts["probe"]
        names = ds.features["label"].names
        assert names == ["negative", "positive"]
        card = (folder / "README.md").read_text()
        meta = front_matter(card)
        assert meta["dataset_info"]["splits"][0]["num_examples"] == len(ds)
        for label in names:
            mine = [s for s in kept if s.output == label]
            n_train = sum(s.role == "train" for s in mine)
            assert f"| {label} | {len(mine)} | {n_train} | {len(mine) - n_train} |" in card
        with_probs = [s for s in kept if s.teacher_probs]
        assert with_probs  # the tiny run reads soft labels back (the default)
        rows = {r["sample_id"]: r for r in ds.to_list()}
        for s in with_probs:
            assert rows[s.id]["soft_label"] == pytest.approx(s.teacher_probs, abs=1e-6)
        assert [r["energy"] for r in ds.to_list()] == pytest.approx([s.energy for s in kept], abs=1e-5)
        rounds = [r for r in store.rounds(gold_id) if r.status == "done"]
        assert f"**Rounds:** {len(rounds)} finished of 2 planned" in card
        assert json.loads((folder / "dataset_dict.json").read_text())["splits"] == ["train"]
    finally:
        store.close()

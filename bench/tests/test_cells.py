"""bench/quality.py caches each finished cell under a key that hashes everything its result depends on. Adding a
setting must not silently throw away hours of measured cells: a new setting at the value that does what the engine
did before it existed is a `before=` of its field (gold.settings.BEFORE_THEY_EXISTED), and a setting that replaces
others is written back in their shape by `quality.as_cached`. A gold-mode key names its feedback strategy unless
that is energy_band, so the gold-mode keys here are those of cells with today's default, coverage; the baseline and
seeds-only keys are those of the cells behind the tables of docs/benchmarks.md."""

from __future__ import annotations

import pytest

quality = pytest.importorskip("quality")

HARD = (("student.soft_label_weight", 0.0),)
MEASURED = {  # (task, method, mode, overrides, seed, budget, engine) -> the key its cached cell has
    ("sst2", "gold", "gold", (), 0, 256, "transformers"): "sst2-gold-s0-b256-78cdd9975552",
    ("trec", "baseline", "baseline", (), 0, 256, "transformers"): "trec-baseline-s0-b256-6cc6edde3ea5",
    ("sst2", "gold_hard", "gold", HARD, 0, 256, "transformers"): "sst2-gold_hard-s0-b256-1c023dcae938",
    ("trec", "steer", "gold", (("steer_labels", True), *HARD), 0, 256, "transformers"):
        "trec-steer-s0-b256-effa667f1687",
    ("sst2", "gold_hard", "gold", HARD, 0, 2048, "llama.cpp"): "sst2-gold_hard-s0-b2048-26cf5b3fd1aa",
    ("trec", "baseline_hard", "baseline", HARD, 1, 2048, "llama.cpp"): "trec-baseline_hard-s1-b2048-2afefc5d63d0",
}


@pytest.mark.parametrize("cell", list(MEASURED), ids=lambda c: f"{c[0]}-{c[1]}-s{c[4]}-b{c[5]}")
def test_measured_cells_keep_their_keys(cell, monkeypatch):
    """The llama.cpp cells were measured with the teacher on the file's Q4_1 weights one reply at a time: run with
    `--gguf-weights file --parallel-sequences 1` they keep their keys (with the defaults they are new cells). The
    2,048-sample cells saved their last round's own student: run with `--average-rounds off` they keep theirs."""
    task_key, name, mode, overrides, seed, budget, engine = cell
    method = quality.Method(name, "run", mode, overrides=dict(overrides))
    if engine != "transformers":
        method.overrides["teacher.engine"] = engine
        monkeypatch.setattr(quality, "LLAMACPP_TEACHER", {"gguf_weights": "file", "parallel_sequences": 1})
    if budget >= 2048:
        monkeypatch.setattr(quality, "STUDENT_EVERY_RUN", {"average_rounds": "off"})
    task = quality.example_task(task_key, 200)
    assert quality.cell_key(task, method, seed, budget, 4, 0.2) == MEASURED[cell], (
        "a cached cell's identity changed: if a new setting's default does what the engine did before, give its field "
        "that value as before=; if the defaults really changed, the cells must be measured again (update this table)")


def test_the_llama_cpp_teachers_weights_and_sequences_key_llama_cpp_cells_only(monkeypatch):
    task = quality.example_task("sst2", 200)
    keys = {}
    for engine in ("transformers", "llama.cpp"):
        method = quality.Method("gold", "run", "gold", overrides={"teacher.engine": engine})
        for weights in ("file", "f16"):
            monkeypatch.setattr(quality, "LLAMACPP_TEACHER", {"gguf_weights": weights, "parallel_sequences": 1})
            keys[engine, weights] = quality.cell_key(task, method, 0, 256, 4, 0.2)
    assert keys["transformers", "file"] == keys["transformers", "f16"]
    assert keys["llama.cpp", "file"] != keys["llama.cpp", "f16"]


def test_averaging_the_rounds_keys_a_cell_by_what_the_run_does(monkeypatch):
    """auto averages from 400 samples a round: a 256-sample cell (51 a round) keeps the identity it had when
    averaging was off, a 2,048-sample cell (410 a round) gets a new one, unless `--average-rounds off` keeps the
    old."""
    task = quality.example_task("sst2", 200)

    def identity(budget, **student):
        method = quality.Method("gold", "run", "gold", overrides={f"student.{k}": v for k, v in student.items()})
        return quality.settings_identity(quality.run_settings(method, 0, budget, 4, 0.2))

    assert identity(256) == identity(256, average_rounds="off") != identity(256, average_rounds="on")
    assert identity(2048) == identity(2048, average_rounds="on") != identity(2048, average_rounds="off")
    assert "average_rounds" not in identity(2048, average_rounds="off").get("student", {})  # as before auto
    gold = quality.Method("gold", "run", "gold")
    averaged, small = quality.cell_key(task, gold, 0, 2048, 4, 0.2), quality.cell_key(task, gold, 0, 256, 4, 0.2)
    monkeypatch.setattr(quality, "STUDENT_EVERY_RUN", {"average_rounds": "off"})  # --average-rounds off
    assert identity(2048) == identity(2048, average_rounds="off")
    assert quality.cell_key(task, gold, 0, 2048, 4, 0.2) != averaged
    assert quality.cell_key(task, gold, 0, 256, 4, 0.2) == small


def test_a_setting_away_from_its_neutral_value_is_part_of_the_key():
    task = quality.example_task("sst2", 200)
    plain = quality.Method("gold", "run", "gold")
    batch = quality.Method("gold", "run", "gold", overrides={"student.soft_label_weight": 1.0,
                                                             "student.soft_label_calibration": "batch"})
    assert quality.cell_key(task, plain, 0, 256, 4, 0.2) != quality.cell_key(task, batch, 0, 256, 4, 0.2)


def test_a_gold_only_setting_leaves_baseline_cells_alone_and_changes_gold_cells():
    from dataclasses import replace

    for mode in ("baseline", "gold"):
        s = quality.run_settings(quality.Method(mode, "run", mode), 0, 256, 4, 0.2)
        flipped = replace(s, train_on_probes=not s.train_on_probes)
        same = quality.settings_identity(s) == quality.settings_identity(flipped)
        assert same is (mode == "baseline"), mode


def test_label_choice_reads_the_soft_and_hard_cells_of_a_seed_and_keeps_soft_on_a_tie(tmp_path):
    label_choice = pytest.importorskip("label_choice")
    cache = quality.Cache(tmp_path)
    task = quality.example_task("sst2", 200)
    soft = {"test": 0.62, "val_curve": [0.54, 0.56, 0.58, 0.57]}
    hard = {"test": 0.60, "val_curve": [0.61, 0.60, 0.63, 0.55]}
    cache.put(MEASURED[("sst2", "gold", "gold", (), 0, 256, "transformers")], soft)
    cache.put(MEASURED[("sst2", "gold_hard", "gold", HARD, 0, 256, "transformers")], hard)
    found = label_choice.pair(cache, task, "gold", 0, 256, "transformers")
    assert found == (soft, hard)
    assert label_choice.pair(cache, task, "gold", 1, 256, "transformers") is None  # seed 1 not measured
    assert label_choice.choose(soft["val_curve"], hard["val_curve"], "round1") == "hard"
    assert label_choice.choose(soft["val_curve"], hard["val_curve"], "end") == "soft"
    assert label_choice.choose([0.5], [0.5], "round1") == "soft"


def test_rows_borrowed_from_another_budget_are_not_listed_as_not_measured():
    entry = {"seeds": [0, 1], "spread": {}, "per_seed": {"gold": [67.0]},
             "missing_seeds": {"teacher": [0, 1], "seeds_only": [0, 1], "gold": [1]}}
    other = {"seeds": [0, 1, 2], "per_seed": {"teacher_raw": [60.0, 50.0, 40.0], "seeds_only": [61.0, 62.0, 63.0]}}
    quality.borrow_budget_free_rows(entry, {"256": {"sst2": other}}, "sst2", 2048)
    assert entry["per_seed"]["teacher_raw"] == [60.0, 50.0] and entry["teacher_raw"] == 55.0
    assert entry["missing_seeds"] == {"gold": [1]}
    assert entry["borrowed"]["seeds_only"] == "measured with budget 256"


# Variants written with the booleans the `noise` setting replaced (the Makefile's ablations): the same keys as when
# they were settings, and the same settings as the strategy named directly.
OLD_NAMES = {
    "gold_ce_keep=gold:student.loss=ce,noise_filter=false,student.soft_label_weight=0.0":
        ("sst2-gold_ce_keep-s0-b256-5f81599cdc59", "keep"),
    "kd_keep=gold:student.soft_label_weight=1.0,student.soft_label_calibration=batch,noise_filter=false":
        ("sst2-kd_keep-s0-b256-828bf144ed58", "keep"),
    "relabel=gold:relabel_noise=true": ("sst2-relabel-s0-b256-65271a221d79", "relabel"),
}


@pytest.mark.parametrize("variant", list(OLD_NAMES))
def test_variants_named_by_the_replaced_booleans_keep_their_keys(variant):
    task = quality.example_task("sst2", 200)
    method = quality.parse_variant(variant)
    key, noise = OLD_NAMES[variant]
    assert quality.cell_key(task, method, 0, 256, 4, 0.2) == key
    settings = quality.run_settings(method, 0, 256, 4, 0.2)
    assert settings.noise == noise
    direct = quality.Method(method.name, "run", method.mode, overrides={
        **{k: v for k, v in method.overrides.items() if k not in ("noise_filter", "relabel_noise")}, "noise": noise})
    assert quality.run_settings(direct, 0, 256, 4, 0.2) == settings


def test_the_seeds_only_cell_keeps_its_key():
    task = quality.example_task("sst2", 200)
    method = quality.Method("seeds_only", "seeds_only")
    assert quality.cell_key(task, method, 0, 256, 4, 0.2) == "sst2-seeds_only-s0-b256-9a88a98f0a48"


def test_the_cache_shape_writes_each_noise_strategy_as_the_booleans_it_replaced():
    s = quality.GoldSettings()
    for noise, flags in (("drop", (True, None)), ("keep", (False, None)), ("relabel", (True, True))):
        d = quality.as_cached(quality.GoldSettings(noise=noise).to_dict())
        assert (d["noise_filter"], d.get("relabel_noise")) == flags and "noise" not in d
        assert d["feedback"] == "coverage" and d["map_after_round"] is False
    assert "feedback" not in quality.as_cached(quality.GoldSettings(feedback="energy_band").to_dict())
    assert quality.as_cached(s.to_dict())["seed"] == s.seed


@pytest.mark.slow
def test_a_run_cell_goes_through_the_engine_with_the_benchs_own_hooks(tmp_path):
    """A cell is a real run (`execute_run`) with the bench's Reviewer as its hooks, then every round's student
    read on the test rows: the smallest run end to end, so a change to the loop's hooks cannot break every cell."""
    task = quality.example_task("sst2", 16)
    task.spec.eval_set = task.spec.eval_set[:12]
    method = quality.Method("gold", "run", "gold")
    settings = quality.run_settings(method, 0, 12, 2, 0.25)
    settings.student.min_steps, settings.student.epochs, settings.teacher.max_new_tokens = 4, 1, 16
    result = quality.measure_run(task, method, settings, tmp_path / "home", "sst2-tiny", None)
    assert len(result["curve"]) == 2 and all(0 <= x <= 1 for x in result["curve"])
    assert result["teacher_samples"] == 12

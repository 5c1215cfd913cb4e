"""bench/report.py prints the README's tables from the results files; the paired column says which differences
from plain generation are inside the noise of a few seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

report = pytest.importorskip("report")


def entry() -> dict:
    return {
        "seeds": [0, 1, 2],
        "missing_seeds": {"gold_tp": [1]},
        "per_seed": {"baseline": [60.0, 62.0, 58.0], "gold": [63.0, 65.0, 61.0], "gold_tp": [50.0, 70.0],
                     "baseline_hard": [30.0, 30.0, 30.0], "gold_hard": [31.0, 29.0, 33.0]},
        "details": {"baseline": {}, "gold": {}, "gold_tp": {"overrides": {"train_on_probes": True}},
                    "baseline_hard": {"overrides": {"student.soft_label_weight": 0.0}},
                    "gold_hard": {"overrides": {"student.soft_label_weight": 0.0}}},
    }


def test_a_constant_lead_on_every_seed_has_a_zero_width_interval():
    assert report.paired(entry(), "gold") == "+3.0 [+3.0, +3.0] (3–0)"


def test_pairs_by_seed_when_a_seed_is_missing_and_hard_labels_meet_the_hard_label_baseline():
    # gold_tp has seeds 0 and 2: 50 − 60 and 70 − 58
    assert report.paired(entry(), "gold_tp").startswith("+1.0 [")
    assert report.paired(entry(), "gold_tp").endswith("(1–1)")
    assert report.paired(entry(), "gold_hard").startswith("+1.0 [-4.0, +6.0] (2–1, vs hard-label baseline)")
    assert report.paired(entry(), "baseline") == ""


def with_exported(e: dict) -> dict:
    e["details"]["baseline"].update(exported=61.0, exported_per_seed=[61.0, 63.0, 59.0], exported_rounds=[2, 4, 4])
    e["details"]["gold"].update(exported=66.0, exported_per_seed=[66.0, 62.0, 70.0], exported_rounds=[3, 4, 2])
    return e


def test_the_exported_students_are_paired_with_plain_generations_exported_students():
    e = with_exported(entry())
    # 66 − 61, 62 − 63, 70 − 59
    assert report.paired(e, "gold", exported=True).startswith("+5.0 [") and report.paired(e, "gold", exported=True).endswith("(2–1)")
    assert report.exported_cell(e, "gold").startswith("66.0 (rounds 3, 4, 2); +5.0 [")
    assert report.exported_cell(e, "baseline") == "61.0 (rounds 2, 4, 4)"
    # a row without exported figures (older results files, teacher rows) leaves the cell empty
    assert report.exported_cell(e, "gold_tp") == "" and report.paired(e, "gold_tp", exported=True) == ""


def test_the_exported_round_is_the_products_pick_on_the_evaluation_rows():
    quality = pytest.importorskip("quality")
    cell = {"val_curve": [0.5, 0.7, 0.6, 0.7], "curve": [0.4, 0.5, 0.6, 0.55]}
    assert quality.exported_round(cell) == 4  # a tie goes to the later round, as gold.export.best_round does
    assert quality.exported_round({"val_curve": [0.5, None, 0.8, 0.6], "curve": [0.1, 0.2, 0.3, 0.4]}) == 3
    assert quality.exported_round({"val_curve": [None, None], "curve": [0.1, 0.2]}) == 2  # no score: the last
    assert quality.exported_round({"val_curve": [], "curve": []}) is None


def test_a_table_entry_carries_the_exported_students_next_to_the_last_rounds():
    from types import SimpleNamespace

    quality = pytest.importorskip("quality")
    task = SimpleNamespace(key="sst2", spec=SimpleNamespace(kind="classification"), test=[None] * 200, val=[None] * 100)
    cell = {"curve": [0.60, 0.70, 0.65], "val_curve": [0.5, 0.8, 0.6], "generate_s": 1.0, "train_s": 1.0,
            "kept": 10, "rejected": 0, "noise": 0, "train_size": 10, "teacher_samples": 12}
    results = {("sst2", "gold", 0): {**cell, "test": 0.65},
               ("sst2", "gold", 1): {**cell, "test": 0.65, "val_curve": [0.5, 0.6, 0.6]}}
    a = SimpleNamespace(budget=256, rounds=3, engine="transformers", probe_share=0.2)
    e = quality.table_entry(task, [quality.Method("gold", "run")], [0, 1], results, a, {})
    assert e["gold"] == 65.0  # the headline stays the last round's student
    d = e["details"]["gold"]
    assert d["exported_rounds"] == [2, 3] and d["exported_per_seed"] == [70.0, 65.0] and d["exported"] == 67.5


def quality_entry(seeds: list[int], per_seed: dict[str, list[float]], **extra) -> dict:
    """A results-file entry as bench/quality.py writes one (the fields combine_entries reads)."""
    means = {k: round(sum(v) / len(v), 1) for k, v in per_seed.items()}
    return {"budget": 256, "rounds": 4, "probe_share": 0.2, "test_rows": 200, "teacher_engine": "llama.cpp",
            "metric": "accuracy", "val_rows": 100, "seeds": seeds, "per_seed": per_seed, **means,
            "spread": {k: [min(v), max(v)] for k, v in per_seed.items()},
            "details": {k: {"exported_per_seed": v} for k, v in per_seed.items() if not k.startswith("teacher")},
            "command": f"bench/quality.py --seeds {','.join(map(str, seeds))}", **extra}


def test_separate_invocations_combine_into_one_table_where_their_shared_cells_agree():
    defaults = quality_entry([0, 1, 2], {"teacher_raw": [50.0, 51.0, 52.0], "gold": [63.0, 65.0, 61.0],
                                         "baseline": [60.0, 62.0, 58.0]})
    variant = quality_entry([0, 1, 2], {"teacher_raw": [50.0, 51.0, 52.0], "gold": [63.0],
                                        "gold_err": [66.0, 66.0, 64.0]}, missing_seeds={"gold": [1, 2]})
    combined, problems = report.combine_entries([defaults, variant])
    assert problems == []
    assert combined["per_seed"] == {"teacher_raw": [50.0, 51.0, 52.0], "gold": [63.0, 65.0, 61.0],
                                    "baseline": [60.0, 62.0, 58.0], "gold_err": [66.0, 66.0, 64.0]}
    assert combined["gold"] == 63.0 and "missing_seeds" not in combined  # gold whole, from the 3-seed entry
    assert report.paired(combined, "gold_err") == "+5.3 [+2.5, +8.2] (3–0)"  # 66−60, 66−62, 64−58
    assert "--seeds 0,1,2 + " not in combined["command"]  # the same command is named once


def test_a_row_measured_on_other_seeds_by_other_invocations_is_joined_seed_by_seed():
    """Seeds run in separate lanes: seed 0 in one file, seeds 1 and 2 in one file each. The row is joined seed by
    seed, its mean and spread over the three, the exported students listed per seed, the other details weighted
    by how many seeds each file gave."""
    s0 = quality_entry([0], {"gold": [72.0], "baseline": [77.5]})
    s12 = quality_entry([1, 2], {"gold": [76.0, 76.5]})
    s12["details"]["gold"].update(exported_rounds=[2, 3], train_s=100.0, curve=[70.0, 80.0])
    s0["details"]["gold"].update(exported_rounds=[4], train_s=130.0, curve=[76.0, 74.0])
    combined, problems = report.combine_entries([s0, s12])
    assert problems == [] and combined["seeds"] == [0, 1, 2]
    assert combined["per_seed"]["gold"] == [72.0, 76.0, 76.5] and combined["gold"] == 74.8
    assert combined["spread"]["gold"] == [72.0, 76.5]
    d = combined["details"]["gold"]
    assert d["exported_per_seed"] == [72.0, 76.0, 76.5] and d["exported_rounds"] == [4, 2, 3]
    assert d["train_s"] == 110.0 and d["curve"] == [72.0, 78.0]  # (130 + 2·100) / 3; (76 + 2·70) / 3, …
    assert combined["missing_seeds"] == {"baseline": [1, 2]}  # seed 0 only: left as measured


def test_cells_that_disagree_or_tables_at_other_budgets_are_not_combined():
    a = quality_entry([0], {"gold": [63.0]})
    _, problems = report.combine_entries([a, quality_entry([0, 1], {"gold": [62.5, 60.0]})])
    assert problems == ["gold seed 0: 63.0 and 62.5"]
    with pytest.raises(ValueError, match="budget"):
        report.combine_entries([a, {**quality_entry([0], {"gold": [63.0]}), "budget": 2048}])
    only_some, _ = report.combine_entries([a, quality_entry([0, 2], {"baseline": [60.0, 61.0]})])
    assert only_some["missing_seeds"] == {"gold": [2]} and only_some["seeds"] == [0, 2]

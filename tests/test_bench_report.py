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

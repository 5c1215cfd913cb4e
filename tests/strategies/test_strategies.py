"""Feedback and noise strategies: every registered name loads, is picked by its setting, and does what it says."""

from __future__ import annotations

import pytest

from gold import strategies
from gold.records import Sample
from gold.specs import GoldSettings, TaskSpec

TASK = TaskSpec(name="t", kind="classification", instruction="x", labels=["a", "b"])


def sample(i: int, output: str, energy: float, prediction: str | None = None, vetoed: bool = False) -> Sample:
    return Sample(id=i, run_id=1, round=1, role="train", inputs={"text": f"s{i}"}, output=output, created_at=0.0,
                  energy=energy, prediction=prediction or output, vetoed=vetoed)


@pytest.mark.parametrize("name", list(strategies.FEEDBACK))
def test_every_feedback_strategy_loads_under_its_name_and_is_a_valid_setting(name):
    assert strategies.feedback_strategy(name).name == name
    assert not GoldSettings(feedback=name).problems()


@pytest.mark.parametrize("name", list(strategies.NOISE))
def test_every_noise_strategy_loads_under_its_name_and_is_a_valid_setting(name):
    assert strategies.noise_strategy(name).name == name
    assert not GoldSettings(noise=name).problems()


def test_an_unknown_strategy_is_a_clear_problem_not_a_traceback():
    assert any("feedback" in p.lower() for p in GoldSettings(feedback="nope").problems())
    assert any("noise" in p.lower() for p in GoldSettings(noise="nope").problems())


def test_the_energy_band_works_per_label_and_needs_the_students_agreement():
    pool = [sample(i, "a", float(i)) for i in range(10)] + [sample(10 + i, "b", 100.0 + i) for i in range(10)]
    pool[6].prediction = "b"  # inside a's band, but the student does not believe its label
    band = strategies.feedback_strategy("energy_band")
    picked = set(band.pick(pool, TASK, GoldSettings(band_lo=50, band_hi=80)).ids)
    assert {s.output for s in pool if s.id in picked} == {"a", "b"}  # each label has its own band
    assert 6 not in picked and picked & {5, 7}
    trusting = set(band.pick(pool, TASK, GoldSettings(band_lo=50, band_hi=80, feedback_needs_agreement=False)).ids)
    assert 6 in trusting


def test_drop_and_relabel_flag_the_top_of_each_label_keep_flags_nothing():
    train = [sample(i, "a", float(i), prediction="b") for i in range(10)]
    settings = GoldSettings(band_lo=50, band_hi=80)
    drop, relabel, keep = (strategies.noise_strategy(n) for n in ("drop", "relabel", "keep"))
    flagged = drop.flag(train, TASK, settings)
    assert flagged and set(flagged) == set(relabel.flag(train, TASK, settings)) and max(flagged) == 9
    assert keep.flag(train, TASK, settings) == []
    noisy = [s for s in train if s.id in flagged] + [sample(99, "a", 50.0, prediction="b", vetoed=True)]
    assert drop.relabeled(noisy, TASK) == [] and keep.relabeled(noisy, TASK) == []
    assert [(s.id, label) for s, label in relabel.relabeled(noisy, TASK)] == [(i, "b") for i in flagged]  # no veto

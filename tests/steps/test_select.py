"""The select step: noise among the run's training samples, feedback among the round's, by the named strategies."""

from __future__ import annotations

from support import tiny_settings, tiny_task

from gold.context import RunContext
from gold.records import RoundMetrics
from gold.specs import GoldSettings
from gold.steps import RoundState
from gold.steps import select as select_step


def run_select(store, run_id, task, settings, n=1):
    state = RoundState(task=task, settings=settings, n=n, run_dir=store.run_dir(run_id), metrics=RoundMetrics(),
                       load_teacher=lambda: None)
    return select_step.run(RunContext(store, run_id, "test"), state)


def scored_run(store, probe=True):
    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    run_id = store.create_run(task_id, tiny_settings().to_dict())
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": f"t{i}"}, "output": "positive"} for i in range(9)])
    if probe:
        store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "odd"}, "output": "positive"}])
    rows = store.samples(run_id)
    store.set_scores([{"id": r.id, "energy": -10.0 + i, "prediction": "positive", "confidence": 0.9,
                       "label_prob": 0.9} for i, r in enumerate(rows)])  # the last one has the highest energy
    return task, run_id, rows


def test_probes_that_train_face_the_noise_filter_like_any_training_sample(store, home):
    """With train_on_probes, the highest-energy probe of a label is flagged as noise and left out of training;
    without it, probes never are (they do not train)."""
    task, run_id, rows = scored_run(store)
    probe_id = rows[-1].id
    for on in (False, True):
        run_select(store, run_id, task, GoldSettings(train_on_probes=on))
        flag = {r.id: r.flag for r in store.samples(run_id)}[probe_id]
        assert (flag == "noise") is on
        trained = {r.id for r in store.samples(run_id, trainable_only=True, with_probes=True)}
        assert (probe_id in trained) is (not on)


def test_the_band_feeds_back_the_middle_and_flags_the_top_and_baseline_flags_nothing(store, home):
    task, run_id, rows = scored_run(store, probe=False)
    result = run_select(store, run_id, task, GoldSettings(band_lo=50, band_hi=80, feedback="energy_band"))
    flags = [r.flag for r in store.samples(run_id)]  # energies rise with the row
    assert flags[-1] == "noise" and "feedback" in flags[3:8] and "feedback" not in flags[:3]
    assert result.noise == flags.count("noise") and result.feedback == flags.count("feedback")
    assert result.band_lo_energy < result.band_hi_energy
    assert run_select(store, run_id, task, GoldSettings(mode="baseline")).metrics() == {"feedback": 0, "noise": 0}
    run_select(store, run_id, task, GoldSettings(noise="keep"))
    assert "noise" not in [r.flag for r in store.samples(run_id)]


def test_the_disagreement_noise_strategy_reads_the_rounds_student(store, home):
    """The select step hands the noise strategy the round's student: `disagreement` flags the sample the student
    refuses, not the highest-energy one."""
    import numpy as np
    from types import SimpleNamespace

    task, run_id, rows = scored_run(store, probe=False)
    refused = rows[2].id

    believed = np.eye(2)[task.labels.index("positive")] * 0.2 + 0.4  # every sample was asked to be "positive"

    class Student:
        def score(self, texts, temperature=1.0):  # t2 is read as the other label
            return SimpleNamespace(probs=np.array([1.0 - believed if t == "t2" else believed for t in texts]))

    state = RoundState(task=task, settings=GoldSettings(noise="disagreement"), n=1, run_dir=store.run_dir(run_id),
                       metrics=RoundMetrics(), load_teacher=lambda: None, student=Student())
    select_step.run(RunContext(store, run_id, "test"), state)
    noise = {r.id for r in store.samples(run_id) if r.flag == "noise"}
    assert refused in noise and rows[-1].id not in noise  # the highest energy is not what this strategy flags

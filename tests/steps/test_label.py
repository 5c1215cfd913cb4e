"""The label step on its own: who reads the labels back, and when nothing is read."""

from __future__ import annotations

from support import tiny_settings, tiny_task

from gold.context import RunContext
from gold.records import RoundMetrics
from gold.specs import LabelerSpec
from gold.steps import RoundState
from gold.steps import label as label_step


def state_of(store, task_id, settings, n=1):
    task = store.get_task(task_id).spec
    return RoundState(task=task, settings=settings, n=n, run_dir=store.run_dir(0), metrics=RoundMetrics(),
                      load_teacher=lambda: None)


def test_a_run_whose_labeler_is_none_trains_on_the_given_labels(store, home):
    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.labeler = LabelerSpec(models=["none"])
    run_id = store.create_run(task_id, settings.to_dict())
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": "fine"}, "output": "positive"}])
    state = state_of(store, task_id, settings)
    assert not label_step.wants_soft_labels(state.task, settings)
    assert label_step.run(RunContext(store, run_id, "test"), state).metrics() == {}
    assert store.samples(run_id)[0].teacher_probs is None


def test_hard_labels_and_seq2seq_read_nothing(store, home):
    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.student.soft_label_weight = 0.0
    task = store.get_task(task_id).spec
    assert not label_step.wants_soft_labels(task, settings)
    settings.student.soft_label_weight = 1.0
    assert label_step.wants_soft_labels(task, settings)
    task.kind = "seq2seq"
    assert not label_step.wants_soft_labels(task, settings)

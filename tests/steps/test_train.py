"""The train step's training set: what trains, under which label, and what an export ships of it."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from support import tiny_settings, tiny_task

from gold.steps.train import training_set


def flagged_run(store):
    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    run_id = store.create_run(task_id, tiny_settings().to_dict())
    texts = ["clean", "flagged", "flagged and vetoed", "flagged, never scored"]
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": t}, "output": "positive"} for t in texts])
    ids = {r.inputs["text"]: r.id for r in store.samples(run_id)}
    store.set_scores([{"id": ids[t], "energy": 1.0, "prediction": "negative", "confidence": 0.9} for t in texts[:3]])
    store.set_flags(run_id, {ids[t]: "noise" for t in texts[1:]})
    store.set_vetoed([ids["flagged and vetoed"]])
    return task, run_id, ids


def test_relabeled_noise_trains_under_the_students_label_and_exports_as_it_trained(store, home):
    from gold.export import training_rows

    task, run_id, ids = flagged_run(store)
    settings = tiny_settings()
    plain = training_set(store, run_id, task, settings)  # noise "drop", the default
    assert [ex.target for ex in plain.rows[len(task.seeds):]] == ["positive"]  # noise stays out
    assert plain.sample_ids == [ids["clean"]] and plain.relabeled == {}
    kept = training_set(store, run_id, task, replace(settings, noise="keep"))  # keep flags nothing; old flags stay
    assert kept.sample_ids == [ids["clean"]]

    data = training_set(store, run_id, task, replace(settings, noise="relabel"))
    assert data.sample_ids == [ids["clean"], ids["flagged"]] and data.relabeled == {ids["flagged"]: "negative"}
    assert [ex.target for ex in data.rows[len(task.seeds):]] == ["positive", "negative"]

    info = SimpleNamespace(task=task, run=SimpleNamespace(id=run_id), warnings=[],
                           train_ids={"seeds": len(task.seeds), "sample_ids": data.sample_ids,
                                      "relabeled": {str(k): v for k, v in data.relabeled.items()}})
    exported = training_rows(store, info)[len(task.seeds):]
    assert [(r["label"], r.get("relabeled_from")) for r in exported] == [("positive", None), ("negative", "positive")]


def test_noise_flagged_probes_that_train_are_relabeled_like_training_samples(store, home):
    """Relabel with train_on_probes: a probe the noise strategy flagged comes back under the student's label, as a
    flagged training sample does; without train_on_probes probes never train, relabeled or not."""
    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    run_id = store.create_run(task_id, tiny_settings().to_dict())
    store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "odd"}, "output": "positive"}])
    [probe] = store.samples(run_id)
    store.set_scores([{"id": probe.id, "energy": 1.0, "prediction": "negative", "confidence": 0.9, "label_prob": 0.1}])
    store.set_flags(run_id, {probe.id: "noise"})
    relabel = tiny_settings(noise="relabel")
    data = training_set(store, run_id, task, replace(relabel, train_on_probes=True))
    assert data.sample_ids[-1:] == [probe.id] and data.relabeled == {probe.id: "negative"}
    data = training_set(store, run_id, task, relabel)
    assert probe.id not in data.sample_ids and data.relabeled == {}

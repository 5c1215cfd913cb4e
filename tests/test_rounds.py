"""The round loop in-process (the worker's path without the process): the reviewer hook, the final-student recipe,
soft labels and energy steering between rounds."""

from __future__ import annotations

import json

import pytest

from support import tiny_settings, tiny_task


def test_vetoes_made_between_rounds_leave_the_next_training_set(store, home):
    """`execute_run(after_round=...)` is where a reviewer (the simulated one of bench/quality.py) vetoes samples;
    the next round must train without them, and the final data keeps them marked, not deleted."""
    from gold.rounds import TRAIN_IDS, execute_run
    from gold.worker import RunContext

    task_id = tiny_task(store)
    run_id = store.create_run(task_id, tiny_settings(map_after_round=False, noise_filter=False).to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    vetoed: list[int] = []

    def reviewer(n: int) -> None:
        if n == 1:
            ids = [r["id"] for r in store.samples(run_id, round_n=1, role="train", kept_only=True)][:2]
            store.set_vetoed(ids)
            vetoed.extend(ids)

    assert execute_run(RunContext(store, run_id, "test"), after_round=reviewer) == "done"
    assert vetoed, "round 1 kept no sample to veto"
    round1 = json.loads((store.run_dir(run_id) / "round-1" / TRAIN_IDS).read_text())["sample_ids"]
    round2 = json.loads((store.run_dir(run_id) / "round-2" / TRAIN_IDS).read_text())["sample_ids"]
    assert set(vetoed) <= set(round1)  # trained on before the veto…
    assert not set(vetoed) & set(round2)  # …and not after it
    assert {r["id"] for r in store.samples(run_id) if r["vetoed"]} == set(vetoed)


def test_the_last_round_trains_a_fresh_student_chosen_on_the_evaluation_rows(store, home):
    """final_fresh + early_stopping: mid-loop rounds warm-start and converge as before; the last round starts
    from the pretrained encoder and keeps its best epoch on the task's evaluation rows (and says so)."""
    from gold.rounds import execute_run
    from gold.worker import RunContext

    task_id = tiny_task(store)
    settings = tiny_settings(map_after_round=False)
    settings.student.final_fresh = True
    settings.student.early_stopping = True
    settings.student.final_epochs = 3
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test")) == "done"
    first, last = (r["metrics"] for r in store.rounds(run_id))
    assert "best_step" not in first and not first.get("selected_on_eval")
    assert last["selected_on_eval"] is True and 1 <= last["best_step"] <= last["train_steps"]


def test_soft_labels_store_what_the_teacher_believes_for_every_training_sample(store, home):
    from gold.rounds import execute_run
    from gold.worker import RunContext

    task_id = tiny_task(store)
    settings = tiny_settings(map_after_round=False)
    settings.student.soft_label_weight = 0.5
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test")) == "done"
    train = store.samples(run_id, role="train", kept_only=True)
    assert train and all(len(r["teacher_probs"]) == 2 and abs(sum(r["teacher_probs"]) - 1) < 1e-3 for r in train)
    assert all(r["teacher_probs"] is None for r in store.samples(run_id, role="probe"))  # never trained on
    rounds = [r["metrics"] for r in store.rounds(run_id)]
    assert sum(m["soft_labeled"] for m in rounds) == len(train)  # each sample read back once, not every round
    assert all(0 <= m["teacher_agrees"] <= 1 for m in rounds if m["soft_labeled"])


def test_batch_calibrated_soft_labels_carry_each_rounds_asked_label_mix(store, home):
    """soft_label_calibration=batch: per round, the teacher's read-back is rescaled so the round's samples
    together carry the labels the teacher was asked to write (add-one smoothed), whatever its own bias."""
    import numpy as np

    from gold.rounds import execute_run
    from gold.teachers import fewshot
    from gold.worker import RunContext

    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    settings = tiny_settings(map_after_round=False)
    settings.student.soft_label_weight = 1.0
    settings.student.soft_label_calibration = "batch"
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test")) == "done"
    for n in (1, 2):
        rows = store.samples(run_id, round_n=n, role="train", kept_only=True)
        assert rows and all(abs(sum(r["teacher_probs"]) - 1) < 1e-6 for r in rows)
        mean = np.mean([r["teacher_probs"] for r in rows], axis=0)
        assert np.allclose(mean, fewshot.label_mix(task, [r["output"] for r in rows]), atol=1e-4)
    assert all(m["soft_labeled"] for m in (r["metrics"] for r in store.rounds(run_id)))


def test_a_run_whose_labeler_is_none_trains_on_the_given_labels(store, home):
    from gold.rounds import label_step, wants_soft_labels
    from gold.specs import LabelerSpec
    from gold.worker import RunContext

    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.labeler = LabelerSpec(models=["none"])
    run_id = store.create_run(task_id, settings.to_dict())
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": "fine"}, "output": "positive"}])
    task = store.get_task(task_id).spec
    assert not wants_soft_labels(task, settings)
    assert label_step(RunContext(store, run_id, "test"), task, settings, 1) == {"labeler": "none", "soft_labeled": 0}
    assert store.samples(run_id)[0]["teacher_probs"] is None


def test_steered_rounds_split_their_samples_by_the_previous_students_energy_per_label(store, home):
    from gold.rounds import execute_run
    from gold.worker import RunContext

    task_id = tiny_task(store)
    settings = tiny_settings(map_after_round=False, steer_labels=True, samples_per_round=6)
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test")) == "done"
    first, second = (r["metrics"] for r in store.rounds(run_id))
    assert "label_shares" not in first  # round 1 has no student yet: even split
    shares = first["next_label_shares"]
    assert set(shares) == {"negative", "positive"} and sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert set(first["label_energy"]) == {"negative", "positive"}
    assert second["label_shares"] == shares  # what round 1's student measured steers round 2


def test_a_run_on_the_llama_cpp_engine_generates_with_it_and_scores_soft_labels_with_transformers(store, home):
    pytest.importorskip("llama_cpp", reason="the optional llama.cpp engine is not installed (`make llama`)")
    from gold import rounds
    from gold.rounds import execute_run
    from gold.teachers.llamacpp import LlamaCppTeacher
    from gold.teachers.local import LocalTeacher
    from gold.worker import RunContext

    task_id = tiny_task(store)
    settings = tiny_settings(map_after_round=False)
    settings.teacher.engine = "llama.cpp"
    settings.student.soft_label_weight = 0.5
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test")) == "done"
    assert isinstance(rounds.get_teacher(settings), LlamaCppTeacher)
    assert isinstance(rounds.scoring_teacher(settings), LocalTeacher)
    train = store.samples(run_id, role="train", kept_only=True)
    assert len(store.samples(run_id)) == 2 * (4 + 2)  # every request answered by the llama.cpp engine
    assert train and all(r["teacher_probs"] is not None for r in train)
    assert not [e for e in store.events(run_id) if e["level"] == "warning" and "soft labels" in e["message"]]


def test_relabeled_noise_trains_under_the_students_label_and_exports_as_it_trained(store, home):
    from types import SimpleNamespace

    from gold.export import training_rows
    from gold.rounds import training_set
    from gold.specs import GoldSettings

    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    run_id = store.create_run(task_id, tiny_settings().to_dict())
    texts = ["clean", "flagged", "flagged and vetoed", "flagged, never scored"]
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": t}, "output": "positive"} for t in texts])
    ids = {r["inputs"]["text"]: r["id"] for r in store.samples(run_id)}
    store.set_scores([{"id": ids[t], "energy": 1.0, "prediction": "negative", "confidence": 0.9}
                      for t in texts[:3]])
    store.set_flags(run_id, {ids[t]: "noise" for t in texts[1:]})
    store.set_vetoed([ids["flagged and vetoed"]])

    plain = training_set(store, run_id, task)
    assert [ex.target for ex in plain[len(task.seeds):]] == ["positive"]  # noise stays out by default
    rows, used, relabeled = training_set(store, run_id, task, with_ids=True, relabel_noise=True)
    assert used == [ids["clean"], ids["flagged"]] and relabeled == {ids["flagged"]: "negative"}
    assert [ex.target for ex in rows[len(task.seeds):]] == ["positive", "negative"]

    info = SimpleNamespace(task=task, run={"id": run_id}, warnings=[],
                           train_ids={"seeds": len(task.seeds), "sample_ids": used,
                                      "relabeled": {str(k): v for k, v in relabeled.items()}})
    exported = training_rows(store, info)[len(task.seeds):]
    assert [(r["label"], r.get("relabeled_from")) for r in exported] == [("positive", None), ("negative", "positive")]
    assert "noise filter on" in " ".join(GoldSettings(noise_filter=False, relabel_noise=True).problems())


def test_probes_train_from_the_next_round_and_the_last_round_spends_their_budget_on_samples(store, home):
    """train_on_probes: round 1's probes are read back by the teacher in round 2's label step and trained on
    there; round 2, the last, writes no probes and asks for samples + probe_size samples instead, so the run
    spends the same teacher budget as without the setting."""
    from gold.rounds import TRAIN_IDS, execute_run
    from gold.worker import RunContext

    task_id = tiny_task(store)
    settings = tiny_settings(map_after_round=False, noise_filter=False, train_on_probes=True)
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test")) == "done"
    probes = store.samples(run_id, role="probe", kept_only=True)
    assert probes and {r["round"] for r in probes} == {1}  # the last round writes none
    first, second = (r["metrics"] for r in store.rounds(run_id))
    assert first["gen_prompts"] + first["probe_prompts"] == second["gen_prompts"] == 4 + 2
    assert "probe_prompts" not in second
    ids = lambda n: set(json.loads((store.run_dir(run_id) / f"round-{n}" / TRAIN_IDS).read_text())["sample_ids"])  # noqa: E731
    probe_ids = {r["id"] for r in probes}
    assert not probe_ids & ids(1)  # not in the round that wrote them…
    assert probe_ids <= ids(2)  # …but from the next one on
    assert all(r["teacher_probs"] is not None for r in probes)  # read back with round 2's samples
    assert second["soft_labeled"] == len(store.samples(run_id, round_n=2, role="train", kept_only=True)) + len(probes)
    trainable = store.samples(run_id, trainable_only=True, with_probes=True)
    assert probe_ids <= {r["id"] for r in trainable}
    assert not probe_ids & {r["id"] for r in store.samples(run_id, trainable_only=True)}


def test_without_train_on_probes_every_round_probes_and_probes_never_train(store, home):
    from gold.rounds import TRAIN_IDS, execute_run
    from gold.worker import RunContext

    task_id = tiny_task(store)
    settings = tiny_settings(map_after_round=False, noise_filter=False)
    settings.student.soft_label_weight = 0.0
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test")) == "done"
    probes = store.samples(run_id, role="probe", kept_only=True)
    assert {r["round"] for r in probes} == {1, 2}
    trained = set(json.loads((store.run_dir(run_id) / "round-2" / TRAIN_IDS).read_text())["sample_ids"])
    assert not {r["id"] for r in probes} & trained


def test_probes_that_train_face_the_noise_filter_like_any_training_sample(store, home):
    """With train_on_probes, the highest-energy probe of a label is flagged as noise and left out of training;
    without it, probes never are (they do not train)."""
    from gold.rounds import select
    from gold.specs import GoldSettings

    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    run_id = store.create_run(task_id, tiny_settings().to_dict())
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": f"t{i}"}, "output": "positive"} for i in range(9)])
    store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "odd"}, "output": "positive"}])
    rows = store.samples(run_id)
    store.set_scores([{"id": r["id"], "energy": -10.0 + i, "prediction": "positive", "confidence": 0.9,
                       "label_prob": 0.9} for i, r in enumerate(rows)])  # the probe has the highest energy
    probe_id = rows[-1]["id"]
    for on in (False, True):
        select(store, run_id, 1, task, GoldSettings(train_on_probes=on))
        flag = {r["id"]: r["flag"] for r in store.samples(run_id)}[probe_id]
        assert (flag == "noise") is on
        trained = {r["id"] for r in store.samples(run_id, trainable_only=True, with_probes=True)}
        assert (probe_id in trained) is (not on)


def test_noise_flagged_probes_that_train_are_relabeled_like_training_samples(store, home):
    """relabel_noise with train_on_probes: a probe the noise filter flagged comes back under the student's label,
    as a flagged training sample does; without train_on_probes probes never train, relabeled or not."""
    from gold.rounds import training_set

    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    run_id = store.create_run(task_id, tiny_settings().to_dict())
    store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "odd"}, "output": "positive"}])
    [probe] = store.samples(run_id)
    store.set_scores([{"id": probe["id"], "energy": 1.0, "prediction": "negative", "confidence": 0.9,
                       "label_prob": 0.1}])
    store.set_flags(run_id, {probe["id"]: "noise"})
    _, ids, relabeled = training_set(store, run_id, task, with_ids=True, relabel_noise=True, with_probes=True)
    assert ids == [probe["id"]] and relabeled == {probe["id"]: "negative"}
    _, ids, relabeled = training_set(store, run_id, task, with_ids=True, relabel_noise=True)
    assert ids == [] and relabeled == {}

"""The round loop in-process (the worker's path without the process): the hook between rounds, the final-student
recipe, soft labels, energy steering and probes. The steps' and strategies' own tests are under tests/steps and
tests/strategies."""

from __future__ import annotations

import json
import re

import pytest

from support import tiny_settings, tiny_task, without_maps

from gold import layout
from gold.context import RunContext
from gold.loop import RunHooks, execute_run


def run_inline(store, run_id: int) -> str:
    assert store.claim_run("test", only=[run_id]) == run_id
    return execute_run(RunContext(store, run_id, "test"), hooks=without_maps())  # these tests read no map


def test_vetoes_made_between_rounds_leave_the_next_training_set(store, home):
    """`RunHooks.after_round` is where a reviewer (the simulated one of bench/quality.py) vetoes samples; the next
    round must train without them, and the final data keeps them marked, not deleted."""

    task_id = tiny_task(store)
    run_id = store.create_run(task_id, tiny_settings(noise="keep").to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    vetoed: list[int] = []

    class Reviewer(RunHooks):  # instead of the product's hook: no map
        def after_round(self, ctx, n, settings) -> None:
            if n == 1:
                ids = [r.id for r in store.samples(run_id, round_n=1, role="train", kept_only=True)][:2]
                store.set_vetoed(ids)
                vetoed.extend(ids)

    assert execute_run(RunContext(store, run_id, "test"), hooks=Reviewer()) == "done"
    assert vetoed, "round 1 kept no sample to veto"
    round1 = json.loads(layout.train_ids_path(store.run_dir(run_id), 1).read_text())["sample_ids"]
    round2 = json.loads(layout.train_ids_path(store.run_dir(run_id), 2).read_text())["sample_ids"]
    assert set(vetoed) <= set(round1)  # trained on before the veto…
    assert not set(vetoed) & set(round2)  # …and not after it
    assert {r.id for r in store.samples(run_id) if r.vetoed} == set(vetoed)


def test_the_last_round_trains_a_fresh_student_chosen_on_the_evaluation_rows(store, home):
    """final_fresh + early_stopping: mid-loop rounds warm-start and converge as before; the last round starts
    from the pretrained encoder and keeps its best epoch on the task's evaluation rows (and says so)."""

    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.student.final_fresh = True
    settings.student.early_stopping = True
    settings.student.final_epochs = 3
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    first, last = (r.metrics for r in store.rounds(run_id))
    assert first.train_precision == last.train_precision == "fp32"  # what tiny_settings pins, as the round ran
    assert first.best_step is None and not first.selected_on_eval
    assert last.selected_on_eval is True and 1 <= last.best_step <= last.train_steps
    assert first.train_eval_seconds == 0.0 < last.train_eval_seconds <= last.train_fit_seconds <= last.train_seconds


def test_the_last_round_saves_the_weight_average_of_every_rounds_student(store, home, monkeypatch):
    """average_rounds: the loop's last round saves the mean of round 1's saved student and the student it trained
    itself (caught on its way into the average), says which rounds it averaged, and measures that student."""
    import torch

    from gold.checkpoints import load_checkpoint
    from gold.steps import train

    caught = []
    real = train.average_students

    def catching(students):
        caught.extend({k: v.detach().clone() for k, v in s.model.state_dict().items()} for s in students)
        return real(students)

    monkeypatch.setattr(train, "average_students", catching)
    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.student.average_rounds = "on"
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    first, last = (r.metrics for r in store.rounds(run_id))
    assert first.averaged_rounds is None and last.averaged_rounds == [1, 2]
    assert last.metric is not None
    saved1 = load_checkpoint(store, run_id, 1).model.state_dict()
    saved2 = load_checkpoint(store, run_id, 2).model.state_dict()
    assert len(caught) == 2
    key = next(k for k, v in saved2.items() if v.is_floating_point() and v.dim() == 2)
    assert torch.allclose(caught[0][key], saved1[key])  # round 1's student, as it was saved
    assert not torch.allclose(caught[1][key], saved1[key])  # round 2 trained on
    assert torch.allclose(saved2[key], (caught[0][key] + caught[1][key]) / 2, atol=1e-6)
    from gold.export import export_student
    from gold.runs import run_overview

    assert run_overview(store, run_id).averaged == {2: [1, 2]}  # the Runs page says so
    card = (export_student(store, run_id, home / "out", round_n=2).path / "README.md").read_text()
    assert "the weight average of the students of rounds 1, 2" in card


def test_soft_labels_store_what_the_teacher_believes_for_every_training_sample(store, home):

    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.student.soft_label_weight = 0.5
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    train = store.samples(run_id, role="train", kept_only=True)
    assert train and all(len(r.teacher_probs) == 2 and abs(sum(r.teacher_probs) - 1) < 1e-3 for r in train)
    assert all(r.teacher_probs is None for r in store.samples(run_id, role="probe"))  # never trained on
    rounds = [r.metrics for r in store.rounds(run_id)]
    assert sum(m.soft_labeled for m in rounds) == len(train)  # each sample read back once, not every round
    assert all(0 <= m.teacher_agrees <= 1 for m in rounds if m.soft_labeled)


def test_batch_calibrated_soft_labels_carry_each_rounds_asked_label_mix(store, home):
    """soft_label_calibration=batch: per round, the teacher's read-back is rescaled so the round's samples
    together carry the labels the teacher was asked to write (add-one smoothed), whatever its own bias."""
    import numpy as np

    from gold.teachers import fewshot

    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    settings = tiny_settings()
    settings.student.soft_label_weight = 1.0
    settings.student.soft_label_calibration = "batch"
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    for n in (1, 2):
        rows = store.samples(run_id, round_n=n, role="train", kept_only=True)
        assert rows and all(abs(sum(r.teacher_probs) - 1) < 1e-6 for r in rows)
        mean = np.mean([r.teacher_probs for r in rows], axis=0)
        assert np.allclose(mean, fewshot.label_mix(task, [r.output for r in rows]), atol=1e-4)
    assert all(m.soft_labeled for m in (r.metrics for r in store.rounds(run_id)))


def test_steered_rounds_split_their_samples_by_the_previous_students_energy_per_label(store, home):

    task_id = tiny_task(store)
    settings = tiny_settings(steer_labels=True, samples_per_round=6)
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    first, second = (r.metrics for r in store.rounds(run_id))
    assert first.label_shares is None  # round 1 has no student yet: even split
    shares = first.next_label_shares
    assert set(shares) == {"negative", "positive"} and sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert set(first.label_energy) == {"negative", "positive"}
    assert second.label_shares == shares  # what round 1's student measured steers round 2


def test_rounds_steered_by_errors_split_their_samples_by_the_students_errors_on_the_steering_rows(store, home):
    from gold.steering import steering_split

    task_id = tiny_task(store)
    settings = tiny_settings(steer_labels=True, steer_labels_by="errors", samples_per_round=6)
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    first, second = (r.metrics for r in store.rounds(run_id))
    steer, score = steering_split(store.get_task(task_id).spec.eval_set)
    assert first.metric_rows == len(score) and second.metric_rows == len(score)  # the other half measures
    assert set(first.label_error) == {"negative", "positive"} and first.label_energy is None
    assert all(0.0 <= v <= 1.0 for v in first.label_error.values())
    shares = first.next_label_shares
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    worse = max(first.label_error, key=first.label_error.get)
    assert first.label_error["negative"] == first.label_error["positive"] or shares[worse] > 0.5
    assert second.label_shares == shares


def test_coverage_feedback_picks_from_the_map_encoders_cached_embeddings(store, home):
    """A tiny run with feedback coverage, no map drawn: the last round flags feedback the student agrees with,
    and the select step leaves its embeddings in the store's cache for the map to reuse."""
    from gold.maps import ENCODER_KEY, text_hash

    task_id = tiny_task(store)
    settings = tiny_settings(feedback="coverage", band_lo=0, band_hi=100)
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    last = store.rounds(run_id)[-1].metrics  # flags are the last select step's
    fed = [s for s in store.samples(run_id, round_n=2) if s.flag == "feedback"]
    assert fed and last.feedback == len(fed)
    assert all(s.prediction == s.output for s in fed)  # agreement holds, as for the energy band
    task = store.get_task(task_id).spec
    texts = [task.format_input(s.inputs) for s in store.samples(run_id)]
    texts += [task.format_input(ex.inputs) for ex in task.seeds]
    assert len(store.get_embeddings(ENCODER_KEY, [text_hash(t) for t in set(texts)])) == len(set(texts))


def test_a_run_on_the_llama_cpp_engine_generates_and_reads_soft_labels_with_it(store, home):
    pytest.importorskip("llama_cpp", reason="the optional llama.cpp engine is not installed (`make llama`)")
    from gold.teachers.cache import get_teacher, scoring_teacher
    from gold.teachers.llamacpp import LlamaCppTeacher

    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.teacher.engine = "llama.cpp"
    settings.student.soft_label_weight = 0.5
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    assert isinstance(get_teacher(settings), LlamaCppTeacher)
    assert scoring_teacher(settings) is get_teacher(settings)  # one model loaded, not the GGUF twice
    train = store.samples(run_id, role="train", kept_only=True)
    assert len(store.samples(run_id)) == 2 * (4 + 2)  # every request answered by the llama.cpp engine
    assert train and all(r.teacher_probs is not None for r in train)
    assert not [e for e in store.events(run_id) if e["level"] == "warning" and "soft labels" in e["message"]]


def test_probes_train_from_the_next_round_and_the_last_round_spends_their_budget_on_samples(store, home):
    """train_on_probes: round 1's probes are read back by the teacher in round 2's label step and trained on
    there; round 2, the last, writes no probes and asks for samples + probe_size samples instead, so the run
    spends the same teacher budget as without the setting."""

    task_id = tiny_task(store)
    settings = tiny_settings(noise="keep", train_on_probes=True)
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    probes = store.samples(run_id, role="probe", kept_only=True)
    assert probes and {r.round for r in probes} == {1}  # the last round writes none
    first, second = (r.metrics for r in store.rounds(run_id))
    assert first.gen_prompts + first.probe_prompts == second.gen_prompts == 4 + 2
    assert second.probe_prompts is None
    ids = lambda n: set(json.loads(layout.train_ids_path(store.run_dir(run_id), n).read_text())["sample_ids"])  # noqa: E731
    probe_ids = {r.id for r in probes}
    assert not probe_ids & ids(1)  # not in the round that wrote them…
    assert probe_ids <= ids(2)  # …but from the next one on
    assert all(r.teacher_probs is not None for r in probes)  # read back with round 2's samples
    assert second.soft_labeled == len(store.samples(run_id, round_n=2, role="train", kept_only=True)) + len(probes)
    trainable = store.samples(run_id, trainable_only=True, with_probes=True)
    assert probe_ids <= {r.id for r in trainable}
    assert not probe_ids & {r.id for r in store.samples(run_id, trainable_only=True)}


def test_without_train_on_probes_every_round_probes_and_probes_never_train(store, home):

    task_id = tiny_task(store)
    settings = tiny_settings(noise="keep")
    settings.student.soft_label_weight = 0.0
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    probes = store.samples(run_id, role="probe", kept_only=True)
    assert {r.round for r in probes} == {1, 2}
    trained = set(json.loads(layout.train_ids_path(store.run_dir(run_id), 2).read_text())["sample_ids"])
    assert not {r.id for r in probes} & trained


def test_a_step_reports_how_far_it_is_while_it_works(store, home, monkeypatch):
    """One batch of prompts and one training pass: the Runs page's bar still moves inside them, from the
    llama.cpp teacher's prompt-by-prompt progress (the default engine; transformers runs a batch as one) and the
    student's steps (here reported at every chance). While the samples cannot be counted yet the text says why,
    and the label step says it has started, so the page never shows the generate step's last words meanwhile."""
    pytest.importorskip("llama_cpp", reason="the optional llama.cpp engine is not installed (`make llama`)")
    from gold import context

    monkeypatch.setattr(context, "PROGRESS_EVERY_S", 0.0)
    task_id = tiny_task(store)
    settings = tiny_settings(rounds=1, samples_per_round=6)  # 6 prompts: one teacher batch
    settings.teacher.engine = "llama.cpp"
    run_id = store.create_run(task_id, settings.to_dict())
    assert run_inline(store, run_id) == "done"
    events = store.events(run_id, limit=500)
    generating = [e["progress"] for e in events if "generating" in e["message"]]
    training = [e["progress"] for e in events if "training the student" in e["message"] and "step" in e["message"]]
    assert any(0 < p < 1 for p in generating), generating  # inside the one batch
    assert any(0 < p < 1 for p in training), training
    inside = [e["message"] for e in events if "generating" in e["message"] and 0 < e["progress"] < 1]
    assert all(m.endswith("(stored when the teacher's call ends)") for m in inside), inside  # why counters wait
    reading = [e for e in reversed(events) if "reads back" in e["message"]]  # oldest first
    assert reading[0]["progress"] == 0.0 and re.search(r"reads back \d+ samples…$", reading[0]["message"])  # its start
    assert reading[-1]["progress"] == 1.0


def test_noise_flagged_by_disagreement_stays_out_of_the_next_rounds_training(store, home):
    """The `disagreement` noise strategy on the real student: round 1's select step scores the training samples
    once more and flags the ones it refuses; round 2 trains without them."""

    task_id = tiny_task(store)
    settings = tiny_settings(noise="disagreement", band_lo=0.0, band_hi=50.0)  # a label's 2 samples: 1 is noise
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    noise: set[int] = set()

    class AfterRound1(RunHooks):  # the flags round 2 trains under
        def after_round(self, ctx, n, settings) -> None:
            if n == 1:
                noise.update(r.id for r in store.samples(run_id) if r.flag == "noise")

    assert execute_run(RunContext(store, run_id, "test"), hooks=AfterRound1()) == "done"
    assert noise and all(r.teacher_probs for r in store.samples(run_id) if r.id in noise)  # soft labels: KL
    trained = set(json.loads(layout.train_ids_path(store.run_dir(run_id), 2).read_text())["sample_ids"])
    round1 = {r.id for r in store.samples(run_id, round_n=1, role="train", kept_only=True)}
    assert round1 - noise <= trained and not noise & trained

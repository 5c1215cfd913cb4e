"""Labelers: who reads generated texts back for soft labels, and "choose on my rows", on the real embedded
models and the real store."""

from __future__ import annotations

import numpy as np
import pytest

from support import tiny_settings, tiny_task, without_maps


def test_references_parse_and_print_back():
    from gold.labelers import LabelerRef

    for text in ("teacher", "none", "seeds", "embedded:smollm2-135m-instruct", "openai:gpt-4o-mini",
                 "openai:embedded:smollm2-135m-instruct@http://127.0.0.1:8000/v1"):
        assert str(LabelerRef.parse(text)) == text
    assert LabelerRef.parse("") == LabelerRef("teacher")
    ref = LabelerRef.parse("openai:qwen@https://host:8000/v1")
    assert (ref.kind, ref.model, ref.base_url) == ("openai", "qwen", "https://host:8000/v1")


def test_bad_labelers_are_refused_with_sentences():
    from gold.specs import GoldSettings, LabelerSpec

    s = GoldSettings(labeler=LabelerSpec(models=["/no/such/model", "openai:@http://x/v1"], pick="choose", votes=50))
    text = " ".join(s.problems())
    assert "/no/such/model" in text and "names no model" in text and "Label votes" in text
    one = GoldSettings(labeler=LabelerSpec(models=["teacher"], pick="ensemble"))
    assert any("at least two candidate labelers" in p for p in one.problems())


def test_runs_stored_before_labelers_existed_keep_their_labels():
    """A remote teacher never read labels back before labelers existed: resuming such a run must not start to."""
    from gold.labelers import planned_name
    from gold.specs import GoldSettings

    old = GoldSettings().to_dict()
    old.pop("labeler")
    assert planned_name(GoldSettings.from_dict(old)) == "teacher"
    old["teacher"]["backend"] = "openai"
    assert planned_name(GoldSettings.from_dict(old)) == "none"


def test_the_ensemble_is_batch_calibrated_member_by_member_and_on_the_mean():
    from gold.labelers import Labeler
    from gold.teachers.fewshot import match_prior

    rng = np.random.default_rng(0)
    a, b = rng.dirichlet([1, 1, 1], size=40), rng.dirichlet([1, 1, 1], size=40)
    target = np.array([0.5, 0.3, 0.2])
    one = Labeler.combine([a], target)
    assert np.allclose(one, match_prior(a, target))  # a single labeler: exactly the round's batch calibration
    both = Labeler.combine([a, b], target)
    assert np.allclose(both.mean(axis=0), target, atol=1e-5) and np.allclose(both.sum(axis=1), 1)
    assert np.allclose(Labeler.combine([a, b], None), (a + b) / 2)


@pytest.mark.slow
def test_choose_scores_every_candidate_and_the_ensemble_on_the_evaluation_rows():
    """Two candidates that are the same model score the same; the tie keeps the first, and their ensemble,
    no better, is not chosen."""
    from gold import labelers
    from gold.examples import example_spec
    from gold.teachers.cache import scoring_teacher
    from gold.specs import GoldSettings, LabelerSpec

    task = example_spec("sst2")
    settings = GoldSettings(labeler=LabelerSpec(models=["teacher", "embedded:smollm2-135m-instruct"], pick="choose"))
    choice = labelers.choose(task, task.eval_set[:24], settings, lambda: scoring_teacher(settings))
    names = [s.labeler for s in choice.table]
    assert names == ["teacher", "embedded:smollm2-135m-instruct", "ensemble"]
    metrics = [s.metric for s in choice.table]
    assert metrics[0] == metrics[1] == metrics[2] and 0 <= metrics[0] <= 1
    assert choice.chosen == "teacher" and [s.chosen for s in choice.table] == [True, False, False]
    assert choice.rows == 24


@pytest.mark.slow
def test_the_seeds_labeler_is_a_student_of_the_seeds_and_competes_with_the_teacher_on_the_evaluation_rows():
    """"seeds" reads with the run's student model fine-tuned on the seeds alone: it knows its own seeds, reads
    held-out rows as a classifier (probabilities in the task's label order), and "choose" scores it, the teacher and
    their ensemble on the same rows and keeps the most accurate."""
    from gold import labelers
    from gold.evaluation import task_metric
    from gold.examples import example_spec
    from gold.specs import GoldSettings, LabelerSpec
    from gold.teachers.cache import scoring_teacher

    task = example_spec("sst2")
    settings = GoldSettings(labeler=LabelerSpec(models=["teacher", "seeds"], pick="choose"), seed=3)
    settings.teacher.engine = "transformers"
    settings.student.min_steps, settings.student.epochs = 40, 1
    reader = labelers.build("seeds", settings, lambda: scoring_teacher(settings))
    assert reader.name == "seeds"
    on_seeds = reader.read(task, [ex.inputs for ex in task.seeds], settings.seed)[0]
    assert on_seeds.shape == (len(task.seeds), len(task.labels)) and np.allclose(on_seeds.sum(axis=1), 1)
    said = [task.labels[i] for i in on_seeds.argmax(axis=1)]
    assert task_metric(task, said, task.seeds) >= 0.8  # the rows it was trained on
    rows = task.eval_set[:40]
    choice = labelers.choose(task, rows, settings, lambda: scoring_teacher(settings))
    table = {s.labeler: s.metric for s in choice.table}
    assert list(table) == ["teacher", "seeds", "ensemble"] and all(0 <= m <= 1 for m in table.values())
    assert table["seeds"] > 0.5  # above chance on rows it never saw
    best = max(table.values())
    assert table[choice.chosen] == best
    assert choice.chosen == next(name for name, m in table.items() if m == best)  # ties keep the earlier


@pytest.mark.slow
def test_a_run_that_chooses_its_labeler_records_the_choice_once_and_reads_every_round_with_it(store, home):
    from gold.context import RunContext
    from gold.export import collect, labeler_record
    from gold.loop import execute_run
    from gold.specs import LabelerSpec

    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.labeler = LabelerSpec(models=["embedded:smollm2-135m-instruct", "teacher"], pick="choose")
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test"), hooks=without_maps()) == "done"
    first, second = (r.metrics for r in store.rounds(run_id))
    choice = first.labeler_choice
    assert choice["chosen"] == "embedded:smollm2-135m-instruct" and choice["rows"] == 16
    assert len(choice["table"]) == 3 and second.labeler_choice is None
    assert first.labeler == second.labeler == "embedded:smollm2-135m-instruct"
    train = store.samples(run_id, role="train", kept_only=True)
    assert train and all(r.teacher_probs is not None for r in train)
    record = labeler_record(collect(store, run_id))
    assert record["name"] == "embedded:smollm2-135m-instruct" and record["choice"]["chosen"] == choice["chosen"]


# -- a server as the labeler ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    """`gold serve` in this process, sharing the loaded embedded teacher with the runs (one model in memory)."""
    import threading

    from gold.serve import ServeConfig, TeacherServer
    from gold.teachers.local import LocalTeacher

    srv = TeacherServer(ServeConfig(port=0), teacher=LocalTeacher.cached())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def served_run(store, url: str, **labeler):
    from gold.context import RunContext
    from gold.loop import execute_run
    from gold.specs import LabelerSpec

    task_id = tiny_task(store)
    settings = tiny_settings(rounds=1)
    settings.labeler = LabelerSpec(models=[f"openai:embedded:smollm2-135m-instruct@{url}"], **labeler)
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test"), hooks=without_maps()) == "done"
    return task_id, run_id, settings


@pytest.mark.slow
def test_a_server_that_returns_logprobs_reads_the_soft_labels_and_says_so_before_the_run(store, home, server):
    from gold.runs import soft_label_check

    task_id, run_id, settings = served_run(store, server.base_url)
    [sentence] = soft_label_check(store, task_id, settings)
    assert "log-probabilities" in sentence and "no log-probabilities" not in sentence
    [metrics] = [r.metrics for r in store.rounds(run_id)]
    assert metrics.labeler.startswith("openai:embedded:smollm2-135m-instruct@http://")
    assert metrics.soft_labeled > 0 and metrics.label_failed == 0 and metrics.label_floored is not None
    train = store.samples(run_id, role="train", kept_only=True)
    assert train and all(abs(sum(r.teacher_probs) - 1) < 1e-6 for r in train)


@pytest.mark.slow
def test_a_server_without_logprobs_is_named_before_the_run_and_the_run_trains_on_the_given_labels(store, home, server):
    from support_proxy import FaultProxy

    from gold.runs import soft_label_check

    proxy = FaultProxy(server.base_url)
    try:
        proxy.set("nologprobs")
        task_id, run_id, settings = served_run(store, proxy.base_url)
        [sentence] = soft_label_check(store, task_id, settings)
        assert "no log-probabilities" in sentence
        [metrics] = [r.metrics for r in store.rounds(run_id)]
        assert metrics.soft_labeled == 0 and metrics.label_method == "given"
        assert any("log-probabilities" in e["message"] and e["level"] == "warning" for e in store.events(run_id))
        assert all(r.teacher_probs is None for r in store.samples(run_id))
    finally:
        proxy.close()

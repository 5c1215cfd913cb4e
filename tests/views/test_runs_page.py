"""The Runs page through AppTest: queue runs with validated settings, and show a run's progress."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from support import ROOT

from gold.examples import example_spec
from gold.specs import GoldSettings
from gold.store import Store

PAGE = str(ROOT / "views" / "runs.py")


@pytest.fixture
def page(home, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    Store(home).create_task(example_spec("sst2"))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    return at


def submit(at):
    [button] = [b for b in at.button if b.label == "Start run"]
    button.click().run()
    assert not at.exception, at.exception


def test_start_a_gold_run_with_its_baseline(page, home):
    page.checkbox(key="also_baseline").check()
    page.text_input(key="run_name").input("first try")
    submit(page)
    store = Store(home)
    runs = store.list_runs()
    assert sorted((r.mode, r.name) for r in runs) == [("baseline", "first try (baseline)"), ("gold", "first try")]
    settings = GoldSettings.from_dict(store.get_run(runs[-1].id)["settings"])
    assert settings == GoldSettings(mode="gold")  # the paper's defaults, frozen with the run
    assert "Queued run" in page.success[0].value
    assert any("No background worker" in w.value for w in page.warning)


def test_openai_teacher_without_key_is_refused(page, home):
    [backend] = [r for r in page.radio if r.label == "Backend"]
    backend.set_value("openai")
    submit(page)
    assert "needs an API key" in page.error[0].value
    assert Store(home).list_runs() == []


def test_the_llama_cpp_engine_is_frozen_with_the_run_and_refused_for_a_folder_model(page, home):
    pytest.importorskip("llama_cpp", reason="the optional llama.cpp engine is not installed (`make llama`)")
    from gold.models import embedded_encoder

    [engine] = [s for s in page.selectbox if s.label == "Local engine"]
    engine.set_value("llama.cpp")
    [model] = [t for t in page.text_input if t.label == "Model"]
    model.input(str(embedded_encoder().folder))  # a transformers folder: llama.cpp runs GGUF files only
    submit(page)
    assert "runs GGUF files only" in page.error[0].value
    assert Store(home).list_runs() == []
    [model] = [t for t in page.text_input if t.label == "Model"]
    model.input("embedded:smollm2-135m-instruct")
    submit(page)
    assert not page.error, page.error[0].value
    [run] = Store(home).list_runs()
    teacher = GoldSettings.from_dict(Store(home).get_run(run.id)["settings"]).teacher
    assert (teacher.backend, teacher.engine) == ("local", "llama.cpp")


def test_soft_labels_and_their_calibration_are_frozen_with_the_run(page, home):
    [weight] = [n for n in page.number_input if n.label == "Soft-label weight"]
    weight.set_value(0.7)
    [calibration] = [s for s in page.selectbox if s.label == "Soft-label calibration"]
    assert calibration.options == ["contextual", "batch"]
    calibration.set_value("contextual" if calibration.value == "batch" else "batch")
    chosen = calibration.value
    submit(page)
    assert not page.error, page.error[0].value
    [run] = Store(home).list_runs()
    student = GoldSettings.from_dict(Store(home).get_run(run.id)["settings"]).student
    assert (student.soft_label_weight, student.soft_label_calibration) == (0.7, chosen)


def test_training_on_probes_is_frozen_with_the_run(page, home):
    [box] = [c for c in page.checkbox if c.label == "Train on probes too"]
    default = GoldSettings().train_on_probes
    assert box.value == default
    box.set_value(not default)
    submit(page)
    assert not page.error, page.error[0].value
    [run] = Store(home).list_runs()
    assert GoldSettings.from_dict(Store(home).get_run(run.id)["settings"]).train_on_probes is (not default)


def running_run(home, name: str, rounds: int, round_1: dict) -> tuple[Store, int]:
    """A run a worker has claimed, whose round 1 finished with these metrics."""
    store = Store(home)
    [task] = store.list_tasks()
    run_id = store.create_run(task.id, GoldSettings(rounds=rounds).to_dict(), name=name)
    store.claim_run("w")
    store.start_round(run_id, 1)
    store.finish_round(run_id, 1, round_1)
    return store, run_id


def test_progress_of_a_run_is_shown(page, home):
    store, run_id = running_run(home, "shown", 2, {"metric_name": "accuracy", "metric": 0.61, "kept": 60,
                                                   "train_size": 68})
    store.start_round(run_id, 2)
    store.set_round_step(run_id, 2, "train", {"train_size": 120})
    store.add_samples(run_id, 1, "train", [{"inputs": {"text": "<script>alert(1)</script>"}, "output": "positive"},
                                           {"inputs": {}, "output": None, "reject_reason": "unparseable"}])
    page.run()
    assert not page.exception
    assert page.selectbox(key="run_id").value == run_id
    assert "round 2 of 2" in page.get("progress")[0].proto.text
    table = page.dataframe[0].value
    assert list(table["accuracy"])[0] == 0.61 and list(table["train size"]) == [68, 120]
    labels = {m.label: m.value for m in page.metric}
    assert labels["kept"] == "1" and labels["rejected"] == "1"
    [cancel] = [b for b in page.button if b.label == "Cancel run"]
    cancel.click().run()
    assert store.cancel_requested(run_id)


def test_final_student_settings_are_frozen_with_the_run(page, home):
    [early] = [c for c in page.checkbox if c.label == "Early stopping on the evaluation rows"]
    early.set_value(not early.value)
    [epochs] = [n for n in page.number_input if n.label == "Final epochs"]
    epochs.set_value(9)
    [smooth] = [n for n in page.number_input if n.label == "Label smoothing"]
    smooth.set_value(0.2)
    submit(page)
    [run] = Store(home).list_runs()
    student = GoldSettings.from_dict(Store(home).get_run(run.id)["settings"]).student
    default = GoldSettings().student
    assert (student.early_stopping, student.final_epochs, student.label_smoothing) == (
        not default.early_stopping, 9, 0.2)
    assert student.final_fresh == default.final_fresh and student.loss == default.loss


def test_a_student_chosen_on_the_evaluation_rows_is_flagged_as_optimistic(page, home):
    running_run(home, "chosen", 1, {"metric_name": "accuracy", "metric": 0.7, "selected_on_eval": True, "best_step": 40})
    page.run()
    assert not page.exception
    assert any("Round 1: early stopping chose" in c.value and "optimistic" in c.value for c in page.caption)


def test_the_labelers_and_how_one_is_picked_are_frozen_with_the_run(page, home):
    [labelers] = [t for t in page.text_area if t.label == "Labelers, one per line"]
    labelers.input("teacher\nembedded:smollm2-135m-instruct\n")
    [pick] = [s for s in page.selectbox if s.label == "Pick the labeler"]
    assert pick.options == ["first", "ensemble", "choose"]
    pick.set_value("choose")
    submit(page)
    assert not page.error, page.error[0].value
    [run] = Store(home).list_runs()
    labeler = GoldSettings.from_dict(Store(home).get_run(run.id)["settings"]).labeler
    assert (labeler.models, labeler.pick, labeler.votes) == (["teacher", "embedded:smollm2-135m-instruct"], "choose", 0)


def test_a_labeler_that_cannot_be_loaded_is_refused_before_anything_is_queued(page, home):
    [labelers] = [t for t in page.text_area if t.label == "Labelers, one per line"]
    labelers.input("/nowhere/model")
    submit(page)
    assert "/nowhere/model" in page.error[0].value
    assert Store(home).list_runs() == []

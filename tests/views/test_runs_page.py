"""The Runs page through AppTest: queue runs with validated settings, and show a run's progress."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from support import ROOT, as_queued

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
    settings = GoldSettings.from_dict(store.get_run(runs[-1].id).settings)
    assert settings == as_queued(GoldSettings(mode="gold"))  # the paper's defaults, frozen with the run
    assert "Queued run" in page.success[0].value
    assert any("No background worker" in w.value for w in page.warning)


def test_a_queued_run_folds_the_form_away_and_is_the_run_shown(page, home):
    """A newcomer pressed *Start run* and saw the same form again, the new run below the fold."""
    assert page.session_state["new_run_open"] is True  # no run yet: the form is open
    submit(page)
    [run] = Store(home).list_runs()
    assert page.session_state["new_run_open"] is False
    assert "Queued run" in page.success[0].value and "shown below" in page.success[0].value
    assert page.session_state["run_id"] == run.id
    assert any(h.value == f"#{run.id} {run.name}" for h in page.subheader)
    page.run()  # the next rerun says it once, not again
    assert not [s for s in page.success if "Queued run" in s.value]


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
    teacher = GoldSettings.from_dict(Store(home).get_run(run.id).settings).teacher
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
    student = GoldSettings.from_dict(Store(home).get_run(run.id).settings).student
    assert (student.soft_label_weight, student.soft_label_calibration) == (0.7, chosen)


def test_training_on_probes_is_frozen_with_the_run(page, home):
    [box] = [c for c in page.checkbox if c.label == "Train on probes too"]
    default = GoldSettings().train_on_probes
    assert box.value == default
    box.set_value(not default)
    submit(page)
    assert not page.error, page.error[0].value
    [run] = Store(home).list_runs()
    assert GoldSettings.from_dict(Store(home).get_run(run.id).settings).train_on_probes is (not default)


def test_core_settings_are_shown_at_once_and_every_other_setting_under_advanced(page):
    from gold import settings as registry

    [advanced] = [e for e in page.expander if e.label == "Advanced settings"]
    inside = {w.label for kind in ("checkbox", "selectbox", "number_input", "text_input", "text_area", "radio")
              for w in getattr(advanced, kind)}
    everywhere = {w.label for kind in ("checkbox", "selectbox", "number_input", "text_input", "text_area", "radio")
                  for w in getattr(page, kind)}
    for s in registry.settings():
        assert s.label in everywhere, s.path
        assert (s.label in inside) is (s.standing != "core"), s.path
    for page_only in ("Task", "Run name", "API key", "Also queue a baseline"):
        assert page_only in everywhere and page_only not in inside
    experimental = [s.label for s in registry.settings() if s.standing == "experimental"]
    assert "Train on probes too" in experimental and "Steer label shares" in experimental


def test_an_advanced_setting_the_user_changed_is_stored_with_the_run(page, home):
    [rate] = [n for n in page.number_input if n.label == "Learning rate"]
    rate.set_value(1e-4)
    [noise] = [s for s in page.selectbox if s.label == "Noise"]
    assert noise.options == ["drop: out of training", "disagreement (experimental)", "relabel (experimental)",
                             "keep: no noise filter"]
    noise.set_value("keep")
    [warm] = [c for c in page.checkbox if c.label == "Warm-start each round"]
    warm.uncheck()
    submit(page)
    assert not page.error, page.error[0].value
    [run] = Store(home).list_runs()
    stored = GoldSettings.from_dict(Store(home).get_run(run.id).settings)
    expected = GoldSettings(noise="keep")
    expected.student.learning_rate, expected.student.warm_start = 1e-4, False
    assert stored == as_queued(expected)


def per_round_table(at):
    """The per-round table (the runs list is a dataframe too)."""
    return next(d.value for d in at.dataframe if "train size" in d.value)


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
    store.add_samples(run_id, 1, "probe", [{"inputs": {"text": "an unusual take"}, "output": "negative"}])
    page.run()
    assert not page.exception
    assert page.selectbox(key="run_id").value == run_id
    assert "round 2 of 2" in page.get("progress")[0].proto.text
    table = per_round_table(page)
    assert list(table["accuracy"])[0] == 0.61 and list(table["train size"]) == [68, 120]
    labels = {m.label: m.value for m in page.metric}
    # generated = kept + probes + rejected, so a user can see where every reply went
    assert (labels["generated"], labels["kept"], labels["probes"], labels["rejected"]) == ("3", "1", "1", "1")
    assert "not trained on" in next(m.help for m in page.metric if m.label == "probes")
    [cancel] = [b for b in page.button if b.label == "Cancel run"]
    cancel.click().run()
    assert store.cancel_requested(run_id)


def test_the_metric_chart_spans_the_measured_values_not_plotlys_default(page, home):
    """One measured round: plotly alone would draw the axis from -50% to 150% around the point."""
    running_run(home, "one point", 2, {"metric_name": "accuracy", "metric": 0.61})
    page.run()
    assert not page.exception
    [chart] = [c for c in page.get("plotly_chart") if "per round" in c.proto.spec]
    layout = json.loads(chart.proto.spec)["layout"]
    assert layout["yaxis"]["range"] == pytest.approx([0.56, 0.66])
    assert layout["xaxis"]["dtick"] == 1


def test_final_student_settings_are_frozen_with_the_run(page, home):
    [early] = [c for c in page.checkbox if c.label == "Early stopping"]
    early.set_value(not early.value)
    [epochs] = [n for n in page.number_input if n.label == "Final epochs"]
    epochs.set_value(9)
    [smooth] = [n for n in page.number_input if n.label == "Label smoothing"]
    smooth.set_value(0.2)
    submit(page)
    [run] = Store(home).list_runs()
    student = GoldSettings.from_dict(Store(home).get_run(run.id).settings).student
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
    labeler = GoldSettings.from_dict(Store(home).get_run(run.id).settings).labeler
    assert (labeler.models, labeler.pick, labeler.votes) == (["teacher", "embedded:smollm2-135m-instruct"], "choose", 0)


def test_a_labeler_that_cannot_be_loaded_is_refused_before_anything_is_queued(page, home):
    [labelers] = [t for t in page.text_area if t.label == "Labelers, one per line"]
    labelers.input("/nowhere/model")
    submit(page)
    assert "/nowhere/model" in page.error[0].value
    assert Store(home).list_runs() == []


def bar(at) -> int:
    """The progress bar's value, 0–100, as the browser gets it."""
    return at.get("progress")[0].proto.value


def auto_rerun_intervals(monkeypatch) -> list[float]:
    """The refresh timers the page asks the browser for (a fragment's `run_every`), as they are sent."""
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    sent: list[float] = []
    enqueue = ForwardMsgQueue.enqueue

    def spy(self, msg):
        if msg.WhichOneof("type") == "auto_rerun":
            sent.append(msg.auto_rerun.interval)
        return enqueue(self, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", spy)
    return sent


def test_the_page_refreshes_itself_only_while_the_run_can_change(page, home, monkeypatch):
    sent = auto_rerun_intervals(monkeypatch)
    store, run_id = running_run(home, "refreshing", 2, {"metric_name": "accuracy", "metric": 0.61, "kept": 60})
    page.run()
    assert not page.exception and sent == [2.0]  # running: the progress redraws every two seconds
    store.finish_run(run_id, "done")
    sent.clear()
    page.run()
    assert not page.exception and sent == []  # ended: drawn once, no timer
    assert any("done" in c.value for c in page.caption)


def test_the_bar_moves_within_a_round_and_unmeasured_cells_are_blank(page, home):
    store, run_id = running_run(home, "moving", 2, {"metric_name": "accuracy", "metric": 0.61, "kept": 60})
    store.start_round(run_id, 2)
    page.run()
    values = [bar(page)]
    assert values[0] == 50  # round 1 of 2 done; round 2 has not reported anything yet
    for done in (16, 48, 64):  # the generate step reports its own fraction, as the generate step (gold/steps/generate.py) does
        store.add_event(f"Round 2: generating {done}/64 prompts", run_id=run_id, progress=done / 64)
        page.run()
        values.append(bar(page))
    store.set_round_step(run_id, 2, "generate", {"kept": 60})
    store.add_event("Round 2: training the student on 128 examples…", run_id=run_id)
    page.run()
    values.append(bar(page))
    assert not page.exception
    # 16/64 and 48/64 move the bar; 64/64 closes the step and says nothing of the next one until it is recorded.
    assert values[1] > values[0] and values[2] > values[1] and values[3] == values[0] and values[4] > values[2]
    assert "generating 48/64" not in page.get("progress")[0].proto.text  # the text follows the newest event
    # Values not measured yet are missing in the data and drawn as a dash (the grid's default is the word None).
    [proto] = [d.proto for d in page.dataframe if "train size" in d.value]
    table = per_round_table(page)
    running = table[table["round"] == 2].iloc[0]
    assert running["kept"] == 60 and pd.isna(running["accuracy"]) and pd.isna(running["energy mean"])
    assert proto.placeholder == "–"


def test_a_fraction_from_an_earlier_round_does_not_move_the_bar():
    from gold.records import Round, RoundMetrics
    from gold.runs import STEP_WEIGHTS, round_fraction

    def a_round(step):
        return Round(id=1, run_id=1, n=2, status="running", step=step, metrics=RoundMetrics(), started_at=100.0)

    current = a_round(None)
    old = [{"level": "info", "progress": 0.5, "ts": 99.0, "message": "Round 1: probing 1/2 prompts"}]
    assert round_fraction(current, old) == 0.0
    now = [{"level": "info", "progress": 0.5, "ts": 101.0, "message": "Round 2: generating 2/4 prompts"}]
    assert round_fraction(current, now) == STEP_WEIGHTS["generate"] / 2
    assert round_fraction(a_round("measure"), now) == pytest.approx(1.0)
    assert round_fraction(None, now) == 0.0


def ended_run(store, task_id: int, name: str, rounds_done: int, status: str = "done") -> int:
    run_id = store.create_run(task_id, GoldSettings(rounds=max(1, rounds_done)).to_dict(), name=name)
    for n in range(1, rounds_done + 1):
        store.start_round(run_id, n)
        store.finish_round(run_id, n, {"metric_name": "accuracy", "metric": 0.5})
    store.finish_run(run_id, status)
    return run_id


def test_the_run_shown_is_the_newest_with_a_finished_round_or_the_one_the_url_names(home):
    store = Store(home)
    task_id = store.create_task(example_spec("sst2"))
    finished = ended_run(store, task_id, "finished", 2)
    cancelled = ended_run(store, task_id, "cancelled early", 0, status="cancelled")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="run_id").value == finished  # not the newer run, which has nothing to show
    assert at.query_params["run"] == str(finished)  # the address bar names the run shown
    listed = next(d.value for d in at.dataframe if "rounds done" in d.value)
    assert list(zip(listed["id"], listed["status"], listed["rounds done"])) == [
        (cancelled, "cancelled", 0), (finished, "done", 2)]
    at.selectbox(key="run_id").set_value(cancelled).run()
    assert at.query_params["run"] == str(cancelled)  # kept in sync with the user's pick

    linked = AppTest.from_file(PAGE, default_timeout=60)
    linked.query_params["run"] = str(cancelled)
    linked.run()
    assert linked.selectbox(key="run_id").value == cancelled
    assert not any("There is no run" in w.value for w in linked.warning)
    gone = AppTest.from_file(PAGE, default_timeout=60)
    gone.query_params["run"] = "999"
    gone.run()
    assert any("There is no run 999" in w.value for w in gone.warning)
    assert gone.selectbox(key="run_id").value == finished and gone.query_params["run"] == str(finished)


def test_delete_run_asks_first_and_leaves_the_other_runs(home):
    store = Store(home)
    task_id = store.create_task(example_spec("sst2"))
    sibling = ended_run(store, task_id, "sibling", 1)
    doomed = ended_run(store, task_id, "doomed", 1)
    (store.run_dir(doomed) / "round-1" / "student").mkdir(parents=True)
    (store.run_dir(doomed) / "round-1" / "student" / "model.safetensors").write_bytes(b"\0" * 3_000_000)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert at.selectbox(key="run_id").value == doomed
    at.button(key=f"delete_run_{doomed}").click().run()
    assert any("Delete run #" in w.value and "3.0 MB of checkpoints" in w.value for w in at.warning)
    assert store.get_run(doomed)  # asking deletes nothing
    at.button(key=f"confirm_delete_run_no_{doomed}").click().run()
    assert store.get_run(doomed) and not any("Delete run #" in w.value for w in at.warning)

    at.button(key=f"delete_run_{doomed}").click().run()
    at.button(key=f"confirm_delete_run_yes_{doomed}").click().run()
    assert not at.exception, at.exception
    assert [r.id for r in store.list_runs()] == [sibling] and not store.run_dir(doomed).exists()
    assert "Deleted run #" in at.success[0].value
    assert at.selectbox(key="run_id").value == sibling and at.query_params["run"] == str(sibling)


def test_a_run_that_has_not_ended_cannot_be_deleted_from_the_page(page, home):
    store, run_id = running_run(home, "busy", 2, {"metric_name": "accuracy", "metric": 0.5})
    page.run()
    assert page.button(key=f"delete_run_{run_id}").disabled


def test_keeping_only_the_best_and_last_checkpoints_is_frozen_with_the_run(page, home):
    keep = page.selectbox(key="keep_checkpoints")
    assert keep.options == ["every round's", "best and last round's"] and keep.value == "all"
    keep.set_value("best_and_last")
    submit(page)
    [run] = Store(home).list_runs()
    assert GoldSettings.from_dict(Store(home).get_run(run.id).settings).keep_checkpoints == "best_and_last"


def test_the_data_folder_size_is_shown(page, home, monkeypatch):
    monkeypatch.delenv("GOLD_MODEL_COPIES")  # the model copies in the data folder's models/, as by default
    store, run_id = running_run(home, "sized", 1, {"metric": 0.5})
    (store.run_dir(run_id)).mkdir(parents=True)
    (store.run_dir(run_id) / "big.bin").write_bytes(b"\0" * 25_000_000)
    page.run()
    assert any("Data folder" in c.value and " MB on disk" in c.value for c in page.caption)
    assert not any("converted copies" in c.value for c in page.caption)
    (home / "models").mkdir()  # the teacher's converted copies are named apart: deleting runs does not free them
    (home / "models" / "teacher.f16.gguf").write_bytes(b"\0" * 3_000_000)
    page.run()
    assert any("of which 3.0 MB converted copies of the teacher's model" in c.value for c in page.caption)


def test_estimate_says_what_the_run_asks_for_and_starts_nothing(page, home):
    page.number_input(key="rounds").set_value(3)
    [button] = [b for b in page.button if b.label == "Estimate"]
    button.click().run()
    assert not page.exception, page.exception
    assert Store(home).list_runs() == []  # nothing queued
    [info] = [i.value for i in page.info if "teacher calls" in i.value]
    assert "240 teacher calls for 240 samples" in info and "once the first round has finished" in info
    submit(page)  # starting it shows the same line under the queued message
    assert len(Store(home).list_runs()) == 1
    assert any("240 teacher calls" in c.value for c in page.caption)

"""The Explore page through AppTest, on a real store with a real map (embedded encoder + UMAP)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from support import ROOT, tiny_task

from gold.maps import compute_map
from gold.specs import GoldSettings
from gold.steps.generate import feedback_examples
from gold.steps.train import training_set
from gold.store import Store
from views._common import review_queue, selection_ids

PAGE = str(ROOT / "views" / "explore.py")
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)> **bold**'


def make_scored_run(home, **settings):
    """A run whose round 1 has scored samples (energies as a student would leave them) and a map."""
    store = Store(home)
    task_id = tiny_task(store, eval_rows=6)
    run_id = store.create_run(task_id, GoldSettings(rounds=2, **settings).to_dict(), name="explored")
    texts = [f"sample review number {i} about a film with {'great' if i % 2 else 'awful'} acting" for i in range(18)]
    texts.append(EVIL)
    ids = store.add_samples(run_id, 1, "train", [{"inputs": {"text": t}, "output": "positive" if i % 2 else "negative"}
                                                 for i, t in enumerate(texts)])
    store.set_scores([{"id": i, "energy": -1.0 + 0.05 * k, "prediction": "positive", "confidence": 0.7}
                      for k, i in enumerate(ids)])
    store.set_flags(run_id, {ids[10]: "feedback", ids[11]: "feedback", ids[-1]: "noise"})
    store.start_round(run_id, 1)
    store.finish_round(run_id, 1, {"metric_name": "accuracy", "metric": 0.5})
    compute_map(store, run_id, 1)
    return store, run_id, ids


@pytest.fixture
def scored_run(home):
    return make_scored_run(home)


def test_map_is_cached_not_recomputed(scored_run):
    store, run_id, _ = scored_run
    before = store.map_points(run_id, 1)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert store.map_points(run_id, 1) == before  # opening the page reads the stored layout
    assert len(before) == 19 + 8 + 6  # samples + seeds + eval rows


def test_veto_above_threshold_leaves_training_and_feedback(scored_run):
    store, run_id, ids = scored_run
    run = store.get_run(run_id)
    task, settings = store.get_task(run.task_id).spec, GoldSettings.from_dict(run.settings)

    def trained() -> list:
        return training_set(store, run_id, task, settings).rows

    assert len(trained()) == 8 + 18  # seeds + samples, the noise one excluded
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.number_input(key=f"veto_threshold_{run_id}_1").set_value(-0.52).run()
    at.button(key="veto_above").click().run()
    assert not at.exception, at.exception
    vetoed = [s.id for s in store.samples(run_id) if s.vetoed]
    assert vetoed == ids[10:]  # energies above -0.52: the 9 highest
    train_texts = {ex.text for ex in trained()}
    assert not any(store.samples(run_id)[k].inputs["text"] in train_texts for k in range(10, 19))
    assert feedback_examples(store, run_id, 2, task) == {}  # the feedback samples were vetoed too
    store.set_vetoed(vetoed, False)  # restore brings them back
    assert len(trained()) == 8 + 18
    assert sum(len(v) for v in feedback_examples(store, run_id, 2, task).values()) == 2


def test_user_text_is_escaped_in_hovers(scored_run):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    hovers = [h for trace in spec["data"] for h in (trace.get("hovertext") or [])]
    evil = [h for h in hovers if "alert" in h]
    assert evil and all("<script>" not in h and "<img" not in h for h in evil)
    assert "&lt;script&gt;" in evil[0]


def histogram_notes(at) -> list[str]:
    """The annotations on the page's energy histogram (the last chart)."""
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    return [a.get("text") for a in spec["layout"].get("annotations", [])]


@pytest.mark.parametrize("feedback, marked", [("coverage", False), ("energy_band", True)])
def test_the_feedback_band_is_marked_only_where_the_feedback_is_drawn_from_it(home, feedback, marked):
    make_scored_run(home, feedback=feedback)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    notes = histogram_notes(at)
    assert "noise →" in notes
    assert ("feedback band" in notes) is marked


def test_filters_update_counts(scored_run):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert at.metric[0].value == "19"
    at.sidebar.multiselect(key="f_labels_explore").set_value(["positive"]).run()
    assert at.metric[0].value == "9"
    at.sidebar.text_input(key="f_search").input("number 3 ").run()
    assert at.metric[0].value == "1"


def test_selection_event_maps_to_sample_ids():
    trace = [11, 12, 13, 14]
    points = [{"curve_number": 0, "point_index": 2, "x": 0.1, "y": 0.2},
              {"curve_number": 0, "point_number": 0},
              {"curve_number": 1, "point_index": 1},  # a seed: not a sample
              {"curve_number": 0, "point_index": 9}]  # stale index after a filter change: ignored
    assert selection_ids(points, trace) == [11, 13]
    assert selection_ids([], trace) == []


def test_review_queue_shows_samples_still_in_training_least_believed_label_first(scored_run):
    store, run_id, ids = scored_run
    store.set_vetoed([ids[17]])
    rows = {s.id: s for s in store.samples(run_id)}
    # The student believes the labels of samples 3 and 5 least (in that order); the rest have no belief yet.
    store.set_scores([{"id": i, "energy": rows[i].energy, "prediction": rows[i].prediction,
                       "confidence": rows[i].confidence, "label_prob": p} for i, p in ((ids[3], 0.05), (ids[5], 0.2))])
    at = AppTest.from_file(PAGE, default_timeout=120).run()

    def table_ids():  # the details picker lists the table's rows in its order
        return [int(o[1:]) for o in at.selectbox(key="detail_id").options[1:]]

    assert table_ids() == ids[::-1]  # everything the filters show, highest energy first
    at.toggle(key="review_queue").set_value(True).run()
    assert not at.exception, at.exception
    # Out of training already: the noise-flagged sample (the highest energy) and the vetoed one.
    rest = [i for i in ids[16::-1] if i not in (ids[3], ids[5])]
    assert table_ids() == [ids[3], ids[5]] + rest
    store.set_vetoed([ids[17]], False)


@pytest.mark.slow  # a real worker process runs three rounds
def test_a_run_keeping_best_and_last_checkpoints_prunes_the_others_and_explore_says_so(home):
    """A real tiny 3-round run (worker process, embedded models): after it, only the best round's and the last
    round's students are on disk; every round keeps its metrics and train_ids.json; Export offers the kept ones
    and Explore says a pruned round's student is gone instead of failing on it."""
    from support import start_worker, tiny_settings

    from gold import export
    from gold.checkpoints import best_round
    from gold.context import RunError
    from gold.layout import TRAIN_IDS, checkpoint_dir, round_dir
    from gold.runs import start_run

    store = Store(home)
    [run_id] = start_run(store, tiny_task(store, eval_rows=8),
                         tiny_settings(rounds=3, keep_checkpoints="best_and_last"), name="pruned")
    out, _ = start_worker(home, "--once").communicate(timeout=1500)
    assert store.get_run(run_id).status == "done", out[-3000:]
    rounds = store.rounds(run_id)
    assert [r.n for r in rounds if r.status == "done"] == [1, 2, 3]
    keep = {3, best_round(rounds).n}
    run_dir = store.run_dir(run_id)
    folders = {r.n: round_dir(run_dir, r.n) for r in rounds}
    assert {n for n in folders if (checkpoint_dir(run_dir, n) / "config.json").is_file()} == keep
    assert all((f / TRAIN_IDS).is_file() for f in folders.values())  # the training sets stay
    pruned = sorted(set(folders) - keep)
    assert pruned  # three rounds, at most two kept
    for r in rounds:
        assert r.metrics.metric is not None
        assert bool(r.metrics.checkpoint_deleted) == (r.n in pruned)
    assert [r.n for r in export.finished_rounds(store, run_id)] == sorted(keep)
    assert export.pick_round(store, run_id).n == best_round(rounds).n
    with pytest.raises(RunError, match="deleted to save space"):
        compute_map(store, run_id, pruned[0], space="student")

    # A student-space map drawn before its round was pruned stays viewable (its layout lives in the store).
    store.set_map_points(run_id, pruned[0], [(p["source"], p["ref_id"], p["x"], p["y"])
                                             for p in store.map_points(run_id, pruned[0])], space="student")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.radio(key="explore_space").set_value("student").run()
    at.selectbox(key="explore_round").set_value(pruned[0]).run()
    assert not at.exception, at.exception
    assert any("student was deleted to save space" in c.value for c in at.caption)
    assert at.button(key="recompute_map").disabled


def test_the_url_names_the_run_explored(scored_run):
    store, run_id, _ = scored_run
    newer = store.create_run(store.get_run(run_id).task_id, GoldSettings().to_dict(), name="no map yet")
    store.start_round(newer, 1)
    store.finish_round(newer, 1, {"metric": 0.4})
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert at.selectbox(key="explore_run").value == newer and at.query_params["run"] == str(newer)
    linked = AppTest.from_file(PAGE, default_timeout=120)
    linked.query_params["run"] = str(run_id)
    linked.run()
    assert not linked.exception, linked.exception
    assert linked.selectbox(key="explore_run").value == run_id and linked.metric[0].value == "19"


# -- the review queue (views/_common.py), on a hand-made map frame ------------------------------------------------

def review_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4, 5],
        "source": ["train", "probe", "train", "train", "seed"],
        "flag": ["ok", "ok", "noise", "ok", "ok"],
        "vetoed": [False, False, False, True, False],
        "belief": [0.9, 0.1, 0.2, 0.3, None],
        "energy": [-3.0, -1.0, -0.5, -2.0, None],
    })


def test_review_queue_holds_training_samples_not_noise_not_vetoed():
    assert review_queue(review_frame())["id"].tolist() == [1]


def test_review_queue_holds_probes_when_the_run_trains_on_them_least_believed_first():
    assert review_queue(review_frame(), with_probes=True)["id"].tolist() == [2, 1]

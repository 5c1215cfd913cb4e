"""Feedback and noise strategies: every registered name loads, is picked by its setting, and does what it says."""

from __future__ import annotations

import numpy as np
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


def test_student_loss_ranks_by_the_loss_on_the_soft_label_else_on_the_given_label():
    import numpy as np

    from gold.strategies.feedback.student_loss import target_losses

    pool = [sample(0, "a", 0.0), sample(1, "a", 0.0), sample(2, "b", 0.0)]
    pool[1].teacher_probs = [0.2, 0.8]  # the teacher reads b where a was asked for
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.5, 0.5]])
    loss = target_losses(pool, ["a", "b"], probs)
    assert loss[0] < loss[2] < loss[1]  # agreeing, unsure, disagreeing
    assert np.isclose(loss[0], -np.log(0.9), atol=1e-6)


def test_real_errors_feeds_back_the_students_wrong_steering_rows_and_writes_no_probes(store, home):
    """A tiny run with feedback real_errors on the real models: no probe is written (the probe budget buys
    samples), round 1 records which steering rows it fed back and how the student did on them, round 2's prompts
    get those rows under their true labels, and every round measures on the scoring half only."""
    from support import tiny_settings, tiny_task, without_maps

    from gold.context import RunContext
    from gold.loop import execute_run
    from gold.steering import steering_split
    from gold.steps.generate import feedback_examples

    task_id = tiny_task(store, eval_rows=16)
    task = store.get_task(task_id).spec
    settings = tiny_settings(feedback="real_errors", feedback_count=2)
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    assert execute_run(RunContext(store, run_id, "test"), hooks=without_maps()) == "done"
    rounds = store.rounds(run_id)
    assert not store.samples(run_id, role="probe")
    assert len(store.samples(run_id, round_n=1, role="train")) >= settings.samples_per_round + settings.probe_size
    steer, score = steering_split(task.eval_set)
    first = rounds[0].metrics
    assert first.feedback_rows and set(first.feedback_rows) <= set(steer)
    assert 0.0 <= first.steering_accuracy <= 1.0 and first.feedback == len(first.feedback_rows)
    labels = {task.eval_set[i].output for i in first.feedback_rows}
    assert labels == set(task.labels)  # every label sends rows: its errors, else its highest-energy ones
    fed = feedback_examples(store, run_id, 2, task)
    assert sorted(ex.inputs["text"] for rows in fed.values() for ex in rows) == \
        sorted(task.eval_set[i].inputs["text"] for i in first.feedback_rows)
    assert all(ex.output == label for label, rows in fed.items() for ex in rows)
    assert all(r.metrics.metric_rows == len(score) for r in rounds)


def test_farthest_first_spreads_its_picks_and_skips_what_the_centres_cover():
    import numpy as np

    from gold.strategies.feedback.coverage import farthest_first

    def unit(*rows):
        v = np.asarray(rows, dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    # two tight clusters of candidates plus one copy of the centre; the centre covers the x axis
    candidates = unit([1, 0, 0], [0, 1, 0], [0, 0.99, 0.1], [0, 0, 1], [0.1, 0, 0.99])
    centres = unit([1, 0, 0])
    first_two = farthest_first(candidates, centres, 2)
    assert 0 not in first_two  # the copy of a centre is covered already
    assert set(first_two) & {1, 2} and set(first_two) & {3, 4}  # one from each cluster, not two neighbours
    assert farthest_first(candidates, centres, 5)[-1] == 0  # picked last, when nothing else is left
    assert farthest_first(candidates, centres, 0) == [] and len(farthest_first(candidates, centres, 99)) == 5


def test_coverage_sends_as_many_as_the_energy_band_and_prefers_what_the_seeds_do_not_cover():
    """The real map encoder: per label, coverage feeds back as many samples as the energy band (agreement
    included), and among a label's samples it passes over a near-copy of a seed for text unlike the seeds."""
    from gold.specs import Example

    task = TaskSpec(name="t", kind="classification", instruction="Sentiment of a movie review.",
                    labels=["a", "b"], seeds=[Example({"text": "A wonderful, moving film."}, "a"),
                                              Example({"text": "A dull and boring film."}, "b")])
    texts_a = ["A wonderful and moving film.", "The soundtrack alone is worth the ticket price.",
               "My grandmother laughed through the whole thing.", "A wonderful, moving film!",
               "Cinematography that makes the desert look like another planet.", "A wonderful film, moving."]
    texts_b = ["A dull, boring film.", "The sequel nobody asked for, and it shows.",
               "I checked my watch four times in the first hour.", "A boring and dull film."]
    pool = [sample(i, "a", float(i)) for i in range(len(texts_a))]
    pool += [sample(10 + i, "b", float(i)) for i in range(len(texts_b))]
    for s, text in zip(pool, texts_a + texts_b):
        s.inputs = {"text": text}
    pool[4].prediction = "b"  # the student does not believe this one's label: never fed back
    settings = GoldSettings(band_lo=0, band_hi=100)
    band = set(strategies.feedback_strategy("energy_band").pick(pool, task, settings).ids)
    picked = strategies.feedback_strategy("coverage").pick(pool, task, settings)
    chosen = set(picked.ids)
    by_label = lambda ids: sorted(s.output for s in pool if s.id in ids)  # noqa: E731
    assert by_label(chosen) == by_label(band) and 4 not in chosen
    narrow = GoldSettings(band_lo=50, band_hi=80)
    few = set(strategies.feedback_strategy("coverage").pick(pool, task, narrow).ids)
    assert by_label(few) == by_label(set(strategies.feedback_strategy("energy_band").pick(pool, task, narrow).ids))
    copies = {0, 3, 5, 10, 13}  # near-copies of a seed
    assert not few & copies and few  # the picks are the texts unlike the seeds


class ScriptedStudent:
    """A student whose probabilities are given per text: enough for a strategy that reads the student."""

    def __init__(self, probs: dict[str, list[float]]):
        self.probs = probs

    def score(self, texts, temperature: float = 1.0):
        import numpy as np
        from types import SimpleNamespace

        return SimpleNamespace(probs=np.array([self.probs[t] for t in texts]))


def test_disagreement_flags_what_the_student_refuses_not_what_the_teacher_is_unsure_of():
    from gold.strategies.noise.disagreement import disagreements

    train = [sample(i, "a", energy=float(i)) for i in range(10)]  # energy alone would flag 8 and 9
    for s in train:
        s.teacher_probs = [0.9, 0.1]
    train[3].teacher_probs = [0.5, 0.5]  # an unsure soft label the student matches: no disagreement
    # the student drifts from the teacher a little more the lower a sample's energy, and refuses sample 5
    beliefs = {f"s{i}": [0.8 + 0.01 * i, 0.2 - 0.01 * i] for i in range(10)}
    student = ScriptedStudent(beliefs | {"s3": [0.5, 0.5], "s5": [0.05, 0.95]})
    settings = GoldSettings(band_lo=50, band_hi=80)
    noise = strategies.noise_strategy("disagreement")
    flagged = noise.flag(train, TASK, settings, student=lambda: student)
    assert set(flagged) == {5, 0}  # energy would flag 8 and 9
    assert len(flagged) == len(strategies.noise_strategy("drop").flag(train, TASK, settings))  # the same volume
    d = disagreements(train, ["a", "b"], np.array([student.probs[f"s{i}"] for i in range(10)]))
    assert np.isclose(d[3], 0.0, atol=1e-6) and d[5] > 1.0
    hard = [sample(20, "a", 0.0), sample(21, "b", 0.0)]  # no soft label: the loss on the given label
    assert np.allclose(disagreements(hard, ["a", "b"], np.array([[0.8, 0.2], [0.8, 0.2]])), [-np.log(0.8), -np.log(0.2)],
                       atol=1e-6)
    # without a student to read (or for seq2seq) it is the energy rule
    assert set(noise.flag(train, TASK, settings)) == set(strategies.noise_strategy("drop").flag(train, TASK, settings))
    assert noise.relabeled([train[5]], TASK) == []

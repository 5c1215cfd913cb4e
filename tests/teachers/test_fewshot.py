"""The teacher used directly as the task's model (few-shot), the figure the student is compared with."""

from __future__ import annotations

import numpy as np
import pytest

from gold.examples import example_spec
from gold.teachers import fewshot


def test_prompt_holds_every_seed_once_and_ends_at_the_label_line():
    task = example_spec("sst2")
    prefix = fewshot.fewshot_prefix(task, seed=3)
    assert prefix.startswith(task.instruction)
    for ex in task.seeds:
        assert prefix.count(f"Text: {' '.join(ex.inputs['text'].split())}\nLabel: {ex.output}\n") == 1
    assert fewshot.row_prompt(task, {"text": "a  fine\nfilm"}) == "Text: a fine film\nLabel:"
    assert fewshot.fewshot_prefix(task, seed=3) == prefix  # seeded order: the same prompt every time


def test_classify_real_teacher_beats_chance_on_sst2(local_teacher):
    task = example_spec("sst2")
    rows = task.eval_set[:60]
    r = fewshot.classify(local_teacher, task, rows)
    assert set(r.outputs) == {"raw", "calibrated", "batch_calibrated"}
    assert all(len(v) == len(rows) and set(v) <= set(task.labels) for v in r.outputs.values())
    assert r.metrics["raw"] >= 0.55  # measured 0.72 on these rows; chance is 0.5
    prior = r.extra["content_free_prior"]
    assert set(prior) == set(task.labels) and abs(sum(prior.values()) - 1) < 1e-3
    assert r.examples_per_s > 0


class BiasedScorer:
    """Label log-likelihoods with a strong prior for the first label whatever the text, plus a small signal
    that says which label is right: the case contextual calibration exists for. A `LabelScorer`."""

    name = "biased"

    def __init__(self, truth: dict[str, int]):
        self.truth = truth

    def label_loglik(self, prompts, candidates, prefix="", batch_size=16):
        out = np.zeros((len(prompts), len(candidates)))
        out[:, 0] += 3.0  # the prior
        for i, p in enumerate(prompts):
            k = self.truth.get(p.split("\n")[0].removeprefix("Text: "))
            if k is not None:
                out[i, k] += 1.0  # the evidence, weaker than the prior
        return out


def test_calibration_divides_out_the_content_free_prior():
    task = example_spec("sst2")
    rows = task.eval_set[:20]
    truth = {ex.inputs["text"]: task.labels.index(ex.output) for ex in rows}
    r = fewshot.classify(BiasedScorer(truth), task, rows)
    assert set(r.outputs["raw"]) == {task.labels[0]}  # the prior wins every row raw
    assert r.metrics["calibrated"] == 1.0  # once divided out, the evidence decides
    assert r.extra["content_free_prior"][task.labels[0]] > 0.9


class BiasedOnContent(BiasedScorer):
    """Biased to the first label on real texts only: content-free inputs show no prior to divide out (the
    embedded teacher on TREC's questions), so contextual calibration cannot help and batch calibration must."""

    def label_loglik(self, prompts, candidates, prefix="", batch_size=16):
        out = super().label_loglik(prompts, candidates, prefix, batch_size)
        free = [p.split("\n")[0].removeprefix("Text: ") in fewshot.CONTENT_FREE for p in prompts]
        out[np.array(free, dtype=bool), 0] -= 3.0
        return out


def test_batch_calibration_removes_a_bias_the_content_free_inputs_do_not_show():
    task = example_spec("sst2")
    rows = [ex for ex in task.eval_set if ex.output == task.labels[0]][:10]
    rows += [ex for ex in task.eval_set if ex.output == task.labels[1]][:10]
    truth = {ex.inputs["text"]: task.labels.index(ex.output) for ex in rows}
    r = fewshot.classify(BiasedOnContent(truth), task, rows)
    assert r.metrics["calibrated"] == 0.5  # every row still gets the first label
    assert r.metrics["batch_calibrated"] == 1.0


def test_classify_refuses_seq2seq_and_teachers_that_cannot_score():
    with pytest.raises(ValueError, match="seq2seq"):
        fewshot.classify(object(), example_spec("svamp"), [])
    with pytest.raises(ValueError, match="cannot score"):
        fewshot.classify(object(), example_spec("sst2"), [])


def test_answer_seq2seq_greedy_exact_match(local_teacher):
    task = example_spec("svamp")
    rows = task.eval_set[:3]
    r = fewshot.answer(local_teacher, task, rows, max_new_tokens=8)
    assert len(r.outputs["greedy"]) == 3 and all("\n" not in o for o in r.outputs["greedy"])
    assert 0.0 <= r.metrics["greedy"] <= 1.0


def test_label_probs_are_distributions_whose_calibrated_argmax_is_the_calibrated_label():
    task = example_spec("sst2")
    rows = task.eval_set[:20]
    truth = {ex.inputs["text"]: task.labels.index(ex.output) for ex in rows}
    p = fewshot.label_probs(BiasedScorer(truth), task, [ex.inputs for ex in rows])
    assert p.raw.shape == p.calibrated.shape == (20, len(task.labels))
    assert np.allclose(p.raw.sum(axis=1), 1) and np.allclose(p.calibrated.sum(axis=1), 1)
    assert [task.labels[i] for i in p.calibrated.argmax(axis=1)] == [ex.output for ex in rows]
    assert p.prior.argmax() == 0 and p.prior.sum() == pytest.approx(1)
    assert fewshot.label_probs(BiasedScorer(truth), task, []).calibrated.shape == (0, len(task.labels))


def test_a_given_prior_is_reused_and_gives_the_same_probabilities_in_chunks():
    task = example_spec("sst2")
    rows = task.eval_set[:20]
    truth = {ex.inputs["text"]: task.labels.index(ex.output) for ex in rows}

    class Counting(BiasedScorer):
        calls = 0

        def label_loglik(self, prompts, candidates, prefix="", batch_size=16):
            Counting.calls += 1
            return super().label_loglik(prompts, candidates, prefix, batch_size)

    whole = fewshot.label_probs(BiasedScorer(truth), task, [ex.inputs for ex in rows])
    scorer = Counting(truth)
    first = fewshot.label_probs(scorer, task, [ex.inputs for ex in rows[:8]])
    rest = fewshot.label_probs(scorer, task, [ex.inputs for ex in rows[8:]], prior=first.prior)
    assert Counting.calls == 3  # rows + content-free for the first chunk, rows only for the second
    assert np.allclose(np.vstack([first.calibrated, rest.calibrated]), whole.calibrated)


def test_match_prior_gives_the_batch_the_target_mix_and_recovers_a_shifted_classifier():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 600)
    logits = rng.normal(0, 1, (600, 3))
    logits[np.arange(600), truth] += 1.5  # informative...
    logits[:, 0] += 2.0  # ...but biased to label 0 whatever the input
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    target = np.bincount(truth, minlength=3) / len(truth)
    q = fewshot.match_prior(p, target)
    assert np.allclose(q.sum(1), 1) and np.allclose(q.mean(0), target, atol=1e-5)
    assert (q.argmax(1) == truth).mean() > (p.argmax(1) == truth).mean() + 0.15
    shift = np.log(q[:, 1] / q[:, 0]) - np.log(p[:, 1] / p[:, 0])
    assert np.allclose(shift, shift[0])  # one weight per label: every row's odds move by the same factor
    assert np.allclose(fewshot.match_prior(p * [1, 5, 1] / (p * [1, 5, 1]).sum(1, keepdims=True), target), q,
                       atol=1e-4)  # rescaling a label beforehand changes nothing
    assert fewshot.match_prior(p[:0], target).shape == (0, 3)
    with pytest.raises(ValueError, match="3 non-negative"):
        fewshot.match_prior(p, [1, 1])


def test_label_mix_counts_the_asked_labels_with_smoothing():
    task = example_spec("sst2")
    mix = fewshot.label_mix(task, ["positive", "positive", "positive", None, "unknown"])
    assert np.allclose(mix, [1 / 5, 4 / 5] if task.labels[0] == "negative" else [4 / 5, 1 / 5])
    assert np.allclose(fewshot.label_mix(task, [], smoothing=1.0), [0.5, 0.5])

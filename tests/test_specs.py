"""TaskSpec validation: every problem reported at once, each as a sentence."""

from __future__ import annotations

import pytest

from gold.specs import Example, SpecError, TaskSpec


def ex(text: str, label: str, **more: str) -> Example:
    return Example(inputs={"text": text, **more}, output=label)


def sentiment(**kw) -> TaskSpec:
    base = dict(
        name="sentiment", kind="classification", instruction="Classify the review.", labels=["negative", "positive"],
        seeds=[ex("awful film", "negative"), ex("great film", "positive")],
    )
    base.update(kw)
    return TaskSpec(**base)


def test_valid_spec_has_no_problems():
    assert sentiment().problems() == []
    assert sentiment().validate().name == "sentiment"


def test_every_problem_is_reported_at_once():
    spec = sentiment(
        name="", instruction="  ", labels=["negative", "positive", "neutral"],
        seeds=[ex("awful film", "negative"), ex("Awful   film", "negative"), ex("x" * 10_000, "positive"),
               ex("great", "angry")],
    )
    problems = spec.problems()
    text = "\n".join(problems)
    assert "name is empty" in text
    assert "instruction is empty" in text
    assert "Seed 2 repeats seed 1" in text  # duplicate after case/whitespace folding
    assert "10,000 characters" in text
    assert "'angry', which is not one of the task's labels" in text
    assert "The label 'neutral' has no seed example" in text
    with pytest.raises(SpecError) as err:
        spec.validate()
    assert err.value.problems == problems


def test_classification_needs_two_labels_and_seq2seq_three_seeds():
    assert any("at least 2 labels" in p for p in sentiment(labels=["positive"], seeds=[ex("good", "positive")]).problems())
    s2s = TaskSpec(name="math", kind="seq2seq", instruction="Solve it.", input_fields=["question"],
                   seeds=[Example({"question": "1+1?"}, "2")])
    assert any("at least 3 seed examples" in p for p in s2s.problems())
    s2s.seeds += [Example({"question": "2+2?"}, "4"), Example({"question": "3+3?"}, "6")]
    assert s2s.problems() == []


def test_named_input_fields():
    spec = TaskSpec(
        name="rte", kind="classification", instruction="Does the premise entail the hypothesis?",
        labels=["entailment", "not_entailment"], input_fields=["premise", "hypothesis"],
        seeds=[Example({"premise": "A dog runs.", "hypothesis": "An animal moves."}, "entailment"),
               Example({"premise": "A dog runs.", "hypothesis": ""}, "not_entailment")],
    )
    assert spec.problems() == ["Seed 2 has no text in 'hypothesis'."]
    assert spec.format_input(spec.seeds[0].inputs) == "premise: A dog runs.\nhypothesis: An animal moves."
    bad = TaskSpec(name="x", kind="classification", instruction="i", labels=["a", "b"], input_fields=["ok", "1bad"])
    assert any("'1bad'" in p for p in bad.problems())


def test_kind_and_name_checks():
    assert any("'classification' or 'seq2seq'" in p for p in sentiment(kind="regression").problems())
    assert any("control characters" in p for p in sentiment(name="evil\x00name").problems())
    assert any("limit is 80" in p for p in sentiment(name="n" * 81).problems())


def test_round_trip_through_dict():
    spec = sentiment(eval_set=[ex("fine", "positive")])
    assert TaskSpec.from_dict(spec.to_dict()) == spec


def test_run_settings_validation_reports_every_part():
    from gold.specs import GoldSettings

    assert GoldSettings().problems() == []
    bad = GoldSettings(rounds=0, band_lo=90, band_hi=80)
    bad.teacher.temperature = 3
    bad.student.loss = "mse"
    bad.student.learning_rate = 2
    bad.teacher.engine = "vllm"
    problems = "\n".join(bad.problems())
    for text in ("local teacher's engine must be one of transformers, llama.cpp", "Rounds must be", "0 ≤ lo < hi ≤ 100",
                 "teacher temperature", "Student: The loss must be 'ce' or 'sce'",
                 "Student: The learning rate must be between 0 and 1"):
        assert text in problems, text
    args = GoldSettings().student.training_args(seed=7, warm_start=True)
    assert (args.loss, args.min_steps, args.seed, args.warm_start) == ("sce", 60, 7, True)


def test_final_student_recipe_applies_only_to_the_last_training():
    from gold.specs import StudentSpec

    spec = StudentSpec(final_fresh=True, early_stopping=True, final_epochs=8, epochs=5, label_smoothing=0.1)
    mid = spec.training_args(seed=1, warm_start=True)
    final = spec.training_args(seed=1, warm_start=True, final=True)
    assert (mid.warm_start, mid.early_stopping, mid.epochs, mid.label_smoothing) == (True, False, 5, 0.1)
    assert (final.warm_start, final.early_stopping, final.epochs, final.label_smoothing) == (False, True, 8, 0.1)
    assert StudentSpec(final_epochs=0).training_args(final=True).epochs == 5  # 0 = same as epochs
    assert "Final epochs" in " ".join(StudentSpec(final_epochs=-1).problems())


def test_soft_labels_are_on_by_default_but_a_run_stored_before_them_resumes_as_it_was_queued():
    from gold.specs import GoldSettings, StudentSpec

    s = StudentSpec()
    assert (s.soft_label_weight, s.soft_label_calibration) == (1.0, "batch") and not s.problems()
    assert not StudentSpec(soft_label_calibration="contextual").problems()
    assert "soft-label calibration must be one of contextual, batch" in " ".join(
        StudentSpec(soft_label_calibration="sinkhorn").problems())
    old = GoldSettings().to_dict()
    del old["student"]["soft_label_calibration"], old["student"]["soft_label_weight"]  # stored before they existed
    assert (GoldSettings.from_dict(old).student.soft_label_weight,
            GoldSettings.from_dict(old).student.soft_label_calibration) == (0.0, "contextual")
    mid = GoldSettings().to_dict()
    mid["student"]["soft_label_weight"] = 0.5  # stored when the weight existed but the calibration did not
    del mid["student"]["soft_label_calibration"]
    assert GoldSettings.from_dict(mid).student.soft_label_calibration == "contextual"
    assert GoldSettings.from_dict(GoldSettings().to_dict()) == GoldSettings()

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
    for text in ("Teacher: Local engine must be one of auto, transformers, llama.cpp, not 'vllm'.",
                 "Rounds must be between 1 and 100, not 0.", "0 ≤ lo < hi ≤ 100",
                 "Teacher: Sampling temperature must be between 0 and 2, not 3.",
                 "Student: Loss must be one of sce, ce, not 'mse'.",
                 "Student: Learning rate must be between 1e-07 and 1, not 2."):
        assert text in problems, text
    from gold.settings import range_problems

    assert set(range_problems(bad)) <= set(bad.problems()) and len(range_problems(bad)) == 5
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
    assert "Soft-label calibration must be one of contextual, batch" in " ".join(
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


def test_the_rounds_are_averaged_from_400_samples_a_round_and_a_yes_no_stored_before_auto_still_reads():
    from gold.specs import AVERAGE_ROUNDS_FROM, GoldSettings, StudentSpec

    def averages(choice, per_round):
        return GoldSettings(samples_per_round=per_round, student=StudentSpec(average_rounds=choice)).averages_rounds()

    assert StudentSpec().average_rounds == "auto" and AVERAGE_ROUNDS_FROM == 400
    assert (averages("auto", 64), averages("auto", 399), averages("auto", 400), averages("auto", 410)) == (
        False, False, True, True)
    assert averages("on", 64) and not averages("off", 4096)
    assert "Average the rounds must be one of auto, on, off" in " ".join(StudentSpec(average_rounds="yes").problems())
    for stored, read in ((True, "on"), (False, "off")):  # a run queued when the setting was a yes/no
        old = GoldSettings().to_dict()
        old["student"]["average_rounds"] = stored
        assert GoldSettings.from_dict(old).student.average_rounds == read
    older = GoldSettings().to_dict()
    del older["student"]["average_rounds"]  # queued before the setting existed: its last student was its own
    assert GoldSettings.from_dict(older).student.average_rounds == "off"


# -- the settings registry ---------------------------------------------------------------------------------------

SETTINGS_CLASSES = ("GoldSettings", "TeacherSpec", "StudentSpec", "LabelerSpec")


def test_every_settings_field_is_in_the_registry_with_its_metadata():
    """A new field without `setting(...)` fails here: the form, the CLI and the help would not know it."""
    from dataclasses import fields

    import gold.specs as specs
    from gold import settings as registry

    paths = set()
    for cls_name, section in zip(SETTINGS_CLASSES, (None, "teacher", "student", "labeler")):
        for f in fields(getattr(specs, cls_name)):
            if cls_name == "GoldSettings" and f.name in specs.SECTIONS:
                continue
            assert specs.setting_meta(f) is not None, f"{cls_name}.{f.name} has no setting(...) metadata"
            paths.add(f"{section}.{f.name}" if section else f.name)
    assert {s.path for s in registry.settings()} == paths
    assert registry.get("student.epochs").default == 5 and registry.get("rounds").cli == "--rounds"
    with pytest.raises(KeyError, match="no setting 'student.epoch'"):
        registry.get("student.epoch")


def test_every_default_and_before_value_is_within_its_own_range_and_labels_are_short():
    from gold import settings as registry
    from gold.specs import GROUPS, STANDINGS

    for s in registry.settings():
        for value in (s.default, *(() if s.before is registry.UNSET else (s.before,))):
            if s.choices is not None:
                assert value in s.choices, s.path
            if s.lo is not None:
                assert s.lo <= value <= s.hi, s.path
        assert isinstance(s.default, s.type), s.path
        assert s.group in GROUPS and s.standing in STANDINGS and s.help.strip(), s.path
        assert "DESIGN.md" not in s.help and "session" not in s.help.lower(), s.path
        if s.type is bool:  # a checkbox in a quarter of the form: longer labels are cut on a 1400-px window
            assert len(s.label) <= 21, s.path
        assert s.widget_kind in ("checkbox", "radio", "selectbox", "number", "lines", "text")
    core = {s.path for s in registry.settings() if s.standing == "core"}
    assert core == {"mode", "rounds", "samples_per_round", "teacher.backend", "teacher.model", "teacher.base_url"}
    experimental = {s.path for s in registry.settings() if s.standing == "experimental"}
    assert experimental == {"steer_labels", "steer_labels_by", "train_on_probes", "student.final_fresh", "student.early_stopping",
                            "student.label_smoothing"}
    assert "experimental" in registry.get("noise").choice_label("relabel")


def test_run_help_keeps_the_names_the_pages_use():
    import re
    from pathlib import Path

    from gold.settings import RUN_HELP

    root = Path(__file__).resolve().parents[1]
    used = set()
    for path in [*root.glob("views/*.py"), *root.glob("gold/*.py")]:
        used |= set(re.findall(r'RUN_HELP\["([a-z_.]+)"\]', path.read_text()))
    assert used and used <= set(RUN_HELP), used - set(RUN_HELP)
    assert RUN_HELP["student.epochs"] and RUN_HELP["api_key"] and RUN_HELP["teacher.model"]


def test_one_table_of_values_for_runs_stored_before_a_setting_existed():
    from gold.settings import BEFORE_THEY_EXISTED
    from gold.specs import GoldSettings

    assert BEFORE_THEY_EXISTED["student"]["soft_label_weight"] == 0.0
    assert BEFORE_THEY_EXISTED["feedback"] == "energy_band" and BEFORE_THEY_EXISTED["labeler"]["models"] == []
    stored = GoldSettings().to_dict()
    for key, value in BEFORE_THEY_EXISTED.items():
        if isinstance(value, dict):
            for inner in value:
                del stored[key][inner]
        else:
            del stored[key]
    old = GoldSettings.from_dict(stored)
    for key, value in BEFORE_THEY_EXISTED.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                assert getattr(getattr(old, key), inner) == v, (key, inner)
        else:
            assert getattr(old, key) == value, key


def test_runs_stored_with_the_noise_booleans_read_as_the_noise_strategy():
    from gold.specs import GoldSettings

    def stored(**old):
        d = GoldSettings().to_dict()
        del d["noise"], d["feedback"]
        return GoldSettings.from_dict({**d, "map_after_round": False, **old})

    assert stored(noise_filter=True, relabel_noise=False).noise == "drop"
    assert stored(noise_filter=True, relabel_noise=True).noise == "relabel"
    assert stored(noise_filter=False, relabel_noise=False).noise == "keep"
    assert stored(noise_filter=False).noise == "keep" and stored(relabel_noise=True).noise == "relabel"
    assert stored().noise == "drop" and stored().feedback == "energy_band"
    assert stored(noise_filter=False) == GoldSettings(noise="keep", feedback="energy_band")  # map_after_round is no setting any more
    assert GoldSettings.from_dict({**GoldSettings(noise="relabel").to_dict(), "noise_filter": False}).noise == "relabel"
    assert "Noise must be one of drop, disagreement, relabel, keep" in " ".join(GoldSettings(noise="sometimes").problems())
    assert "Feedback strategy must be one of coverage, energy_band" in " ".join(GoldSettings(feedback="random").problems())


def test_training_and_sampling_defaults_come_from_one_place():
    from dataclasses import fields

    from gold.specs import StudentSpec, TeacherSpec
    from gold.students.base import TrainingArgs
    from gold.teachers.base import GenerationSettings

    train, student = TrainingArgs(), StudentSpec()
    shared = {f.name for f in fields(TrainingArgs)} & {f.name for f in fields(StudentSpec)} - {"warm_start",
                                                                                               "early_stopping"}
    assert {"loss", "soft_label_weight", "epochs", "learning_rate"} <= shared
    for name in shared:
        assert getattr(train, name) == getattr(student, name), name
    assert (train.loss, train.soft_label_weight) == ("sce", 1.0)
    assert student.training_args() == TrainingArgs(early_stopping=False)
    sample, teacher = GenerationSettings(), TeacherSpec()
    for name in ("max_new_tokens", "temperature", "top_p", "repetition_penalty", "batch_size"):
        assert getattr(sample, name) == getattr(teacher, name), name
    assert teacher.generation_settings(seed=5) == GenerationSettings(seed=5)
    assert TeacherSpec(temperature=0.3).generation_settings(seed=1).temperature == 0.3


def test_the_protocols_declare_what_the_engine_calls():
    from gold.students.base import LabelStudent, Student
    from gold.teachers.base import LabelScorer, Teacher

    for name in ("fit", "predict", "energy", "embed", "save", "load"):
        assert hasattr(Student, name), name
    assert hasattr(LabelStudent, "score") and hasattr(LabelStudent, "predictions")
    assert hasattr(Teacher, "generate") and hasattr(LabelScorer, "label_loglik")

    class Reads:
        name = "r"

        def label_loglik(self, prompts, candidates, prefix="", batch_size=16, normalize=False):
            return []

    class Writes:
        name, prompt_style = "w", "completion"
        usage = None

        def generate(self, prompts, settings, progress=None):
            return []

    assert isinstance(Reads(), LabelScorer) and not isinstance(Writes(), LabelScorer)
    assert isinstance(Writes(), Teacher)

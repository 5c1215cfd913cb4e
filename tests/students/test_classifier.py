"""ClassifierStudent with the real embedded MiniLM, tiny settings (one shared trained student, see conftest)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from gold.energy import energy_from_logits
from gold.models import embedded_encoder
from gold.students.base import Student, TrainExample, TrainingArgs
from gold.students.classifier import ClassifierStudent
from gold.students.training import plan_steps


# --- pure parts -------------------------------------------------------------------------------------------
def test_plan_steps():
    assert plan_steps(16, TrainingArgs(epochs=2, batch_size=8, min_steps=0)) == 4
    assert plan_steps(17, TrainingArgs(epochs=2, batch_size=8, min_steps=0)) == 6  # the short last batch counts
    assert plan_steps(16, TrainingArgs(epochs=2, batch_size=8, min_steps=60)) == 60  # small sets still converge
    assert plan_steps(16, TrainingArgs(epochs=2, batch_size=8, min_steps=60, max_steps=10)) == 10
    assert plan_steps(1000, TrainingArgs()) == 5 * 63  # the defaults: 5 epochs of batch 16


def test_bad_labels_are_refused_before_loading():
    with pytest.raises(ValueError):
        ClassifierStudent(["only"])
    with pytest.raises(ValueError):
        ClassifierStudent(["a", "a"])


# --- training -------------------------------------------------------------------------------------------
def test_is_a_student(trained):
    assert isinstance(trained.student, Student) and trained.student.kind == "classification"


def test_training_lowers_loss_and_fits_the_training_labels(trained):
    report, history = trained.report, trained.student.loss_history
    assert report.steps == trained.args.min_steps == len(history) and report.examples == 16
    assert report.examples_per_second > 0 and report.seconds > 0
    assert np.mean(history[-3:]) < 0.5 * np.mean(history[:3])
    assert report.final_loss == pytest.approx(np.mean(history[-2:]))  # about the last epoch (2 batches of 8)
    preds = trained.student.predict(trained.texts)
    assert [p.output for p in preds] == trained.targets
    for p in preds:
        assert set(p.probs) == set(trained.labels) and sum(p.probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.confidence == pytest.approx(max(p.probs.values())) and p.confidence > 0.5


def test_progress_is_reported_every_step(trained):
    fractions = [f for f, _ in trained.progress]
    assert len(fractions) == trained.report.steps
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert trained.progress[-1][1].startswith(f"step {trained.report.steps}/{trained.report.steps}")


def test_fit_refuses_bad_input(trained):
    student, model = trained.student, trained.student.model
    with pytest.raises(ValueError, match="not labels"):
        student.fit([TrainExample("x", "neutral")], trained.args)
    with pytest.raises(ValueError, match="empty"):
        student.fit([], trained.args)
    with pytest.raises(ValueError, match="loss"):
        student.fit(trained.examples, TrainingArgs(loss="focal"))
    assert student.model is model  # refused before touching the weights


# --- scores -----------------------------------------------------------------------------------------------
def test_energy_drops_on_training_text_and_stays_high_on_gibberish(trained):
    student = trained.student
    after = student.energy(trained.texts)
    gibberish = student.energy(trained.gibberish)
    # Untrained, every energy sits near -ln 2 (docs/architecture.md); training makes the student confident
    # in-distribution.
    assert np.mean(after) < np.mean(trained.energy_before) - 0.2
    assert np.mean(after) < np.mean(gibberish) - 0.1
    assert np.all(np.abs(trained.energy_before + math.log(2)) < 0.2)


def test_energy_temperature_and_outputs_argument(trained):
    student = trained.student
    logits = student.logits(trained.texts[:4])
    assert np.allclose(student.energy(trained.texts[:4], temperature=2.0), energy_from_logits(logits, 2.0), atol=1e-5)
    assert np.allclose(student.energy(trained.texts[:4], outputs=["positive"] * 4), energy_from_logits(logits), atol=1e-5)


def test_batched_scores_match_one_at_a_time(trained):
    """Length-sorted, dynamically padded batches must give each text the logits it gets alone."""
    student = trained.student
    texts = trained.texts[:3] + ["a much longer sentence that forces the others in its batch to be padded quite a bit"]
    together = student.logits(texts)
    alone = np.concatenate([student.logits([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_embeddings_are_normalised_mean_pooled_encoder_states(trained):
    from transformers import AutoModel, AutoTokenizer

    texts = trained.texts[:4]
    emb = trained.student.embed(texts)
    assert emb.shape == (4, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # Before training they are exactly the sentence-transformers embeddings of the original MiniLM.
    folder = embedded_encoder().folder
    tok, enc = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = enc(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1).numpy()
    assert np.allclose(trained.embed_before, ref, atol=1e-4)


def test_empty_inputs(trained):
    student = trained.student
    assert student.predict([]) == []
    assert student.energy([]).shape == (0,) and student.logits([]).shape == (0, 2) and student.embed([]).shape == (0, 384)


# --- persistence ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("student") / "round-1"
    trained.student.save(folder)
    return folder


def test_saved_folder_is_plain_hf(saved):
    names = {p.name for p in saved.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((saved / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["label2id"] == {"negative": 0, "positive": 1}
    assert not any(p.name.startswith(".") for p in saved.parent.iterdir())  # no temp folder left behind


def test_saved_student_loads_in_a_plain_transformers_pipeline(trained, saved):
    """A user's own process, with nothing of gold imported, must get the same labels."""
    code = textwrap.dedent(
        """
        import json, sys
        from transformers import pipeline
        clf = pipeline("text-classification", model=sys.argv[1])
        print(json.dumps([r["label"] for r in clf(json.loads(sys.argv[2]))]))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code, str(saved), json.dumps(trained.texts)],
        capture_output=True, text=True, timeout=120, env=env, check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [p.output for p in trained.student.predict(trained.texts)]


def test_load_restores_the_student(trained, saved):
    loaded = ClassifierStudent.load(saved)
    assert loaded.labels == list(trained.labels) and loaded.max_length == trained.args.max_length
    assert loaded.base == embedded_encoder().folder  # a later cold fit restarts from the encoder, not the checkpoint
    assert np.allclose(loaded.logits(trained.texts), trained.student.logits(trained.texts), atol=1e-5)
    trained.student.save(saved)  # saving over an existing checkpoint replaces it
    assert (saved / "model.safetensors").is_file()


def test_a_checkpoint_with_other_labels_gets_a_fresh_head(trained, saved):
    other = ClassifierStudent(["spam", "ham"], base=saved)
    assert other.labels == ["spam", "ham"] and other.model.config.id2label == {0: "spam", 1: "ham"}
    assert not torch.allclose(other.model.classifier.weight.cpu(), trained.student.model.classifier.weight.cpu())
    enc = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(other.model.state_dict()[enc].cpu(), trained.student.model.state_dict()[enc].cpu())  # encoder kept


# --- warm start and seeding -----------------------------------------------------------------------------
def test_warm_start_keeps_weights_and_cold_start_resets_them(trained):
    student = trained.student
    trained_model = student.model
    snapshot = {k: v.detach().clone() for k, v in trained_model.state_dict().items()}
    try:
        args = TrainingArgs(epochs=1, min_steps=2, max_steps=2, batch_size=8, learning_rate=1e-9, max_length=32,
                            loss="ce")
        student.fit(trained.examples, TrainingArgs(**{**args.__dict__, "warm_start": True}))
        assert student.model is trained_model
        assert max(student.loss_history) < 0.4  # it started from the trained weights
        assert torch.allclose(student.model.classifier.weight, snapshot["classifier.weight"], atol=1e-6)

        rng_state = torch.get_rng_state()
        student.fit(trained.examples, args)
        assert torch.equal(torch.get_rng_state(), rng_state)  # seeding inside fit leaves the caller's RNG alone
        first = list(student.loss_history)
        assert student.model is not trained_model and min(first) > 0.5  # fresh head: back near ln 2
        assert not torch.allclose(student.model.classifier.weight, snapshot["classifier.weight"], atol=1e-3)
        student.fit(trained.examples, args)
        assert student.loss_history == pytest.approx(first, abs=1e-6)  # same seed, same run
    finally:
        trained_model.load_state_dict(snapshot)
        student.model = trained_model
        student.max_length = trained.args.max_length


# --- precision --------------------------------------------------------------------------------------------
def test_bf16_mixed_precision_trains_like_fp32_and_keeps_fp32_weights(trained):
    student = trained.student
    trained_model = student.model
    snapshot = {k: v.detach().clone() for k, v in trained_model.state_dict().items()}
    try:
        runs = {}
        for precision in ("fp32", "bf16"):
            args = TrainingArgs(epochs=1, min_steps=6, batch_size=8, learning_rate=1e-4, max_length=32, loss="ce",
                                precision=precision)
            report = student.fit(trained.examples, args)
            assert report.precision == precision
            assert all(p.dtype == torch.float32 for p in student.model.parameters())  # master weights stay fp32
            runs[precision] = (list(student.loss_history), student.model.classifier.weight.detach().clone())
        (loss32, head32), (loss16, head16) = runs["fp32"], runs["bf16"]
        assert loss16 == pytest.approx(loss32, rel=0.05)  # the same fit, at bf16's ~3 significant digits
        assert torch.allclose(head16, head32, atol=1e-3) and not torch.equal(head16, head32)  # bf16 did compute
    finally:
        trained_model.load_state_dict(snapshot)
        student.model = trained_model
        student.max_length = trained.args.max_length


def test_auto_precision_follows_the_processor():
    from gold.students.training import _cpu_has_bf16, compute_precision

    cpu = torch.device("cpu")
    assert compute_precision(cpu, "auto") == ("bf16" if _cpu_has_bf16() else "fp32")
    assert compute_precision(cpu, "fp32") == "fp32" and compute_precision(cpu, "bf16") == "bf16"
    with pytest.raises(ValueError):
        compute_precision(cpu, "fp8")
    assert TrainingArgs(precision="fp16").problems() == ["The training precision must be one of auto, bf16, fp32."]


def test_the_fit_runs_fewer_threads_while_other_work_holds_a_core(trained, monkeypatch):
    """The kernel's counters are scripted (`support.Counters`): while another process keeps one of 2 cores busy the
    steps run on one torch thread, on both again once it is free, and the fit hands torch back its own count."""
    from support import Counters

    from gold import cpu

    counters, clock, governor = Counters(cores=2), [0.0], cpu.ThreadGovernor
    monkeypatch.setattr(cpu, "ThreadGovernor", lambda most: governor(
        most, cpu.FreeCores(cores=2, reader=counters), clock=lambda: clock[0]))
    student = trained.student
    snapshot = {k: v.detach().clone() for k, v in student.model.state_dict().items()}
    during: list[int] = []

    def progress(frac, msg):
        during.append(torch.get_num_threads())
        counters.tick(others=1.0 if len(during) < 3 else 0.0, own=1.0)  # busy over steps 1-2, then free
        clock[0] += 1.0

    torch.set_num_threads(2)
    try:
        args = TrainingArgs(**{**trained.args.__dict__, "min_steps": 6, "max_steps": 6, "warm_start": True})
        student.fit(trained.examples, args, progress=progress)
        assert torch.get_num_threads() == 2  # put back
    finally:
        student.model.load_state_dict(snapshot)  # the autouse fixture puts the test's thread count back
    assert during == [2, 1, 1, 2, 2, 2]  # the first step before any interval is measured, then what was free


# --- early stopping -------------------------------------------------------------------------------------
def test_early_stopping_keeps_the_epoch_that_did_best_on_the_evaluation_rows(trained, monkeypatch):
    """The score after each epoch is scripted (best after the 2nd epoch, a tie later) and the head's weights are
    recorded at each scoring: the fit must hand back exactly the weights of the best, latest-tied epoch."""
    student = trained.student
    trained_model = student.model
    snapshot = {k: v.detach().clone() for k, v in trained_model.state_dict().items()}
    script = iter([0.50, 0.75, 0.60, 0.75, 0.25] + [0.0] * 100)
    heads: list[torch.Tensor] = []

    def scripted_accuracy(examples):
        assert [ex.target for ex in examples] == trained.targets  # scored on the evaluation rows given
        heads.append(student.model.classifier.weight.detach().clone())
        time.sleep(0.05)  # a scoring that takes time: the report must count it as evaluation, not training
        return next(script)

    monkeypatch.setattr(student, "accuracy", scripted_accuracy)
    try:
        args = TrainingArgs(**{**trained.args.__dict__, "early_stopping": True, "min_steps": 10})
        report = student.fit(trained.examples, args, eval_examples=trained.examples)
        assert [s for s, _ in report.eval_history] == [2, 4, 6, 8, 10]  # after every epoch of 2 batches of 8
        assert report.best_step == 8  # 0.75 twice: the later epoch
        assert torch.equal(student.model.classifier.weight, heads[3])  # its weights, not the last epoch's
        assert not torch.equal(heads[3], heads[4])
        assert 5 * 0.05 <= report.eval_seconds < report.seconds

        heads.clear()
        plain = student.fit(trained.examples, args.__class__(**{**args.__dict__, "early_stopping": False}),
                            eval_examples=trained.examples)  # not asked: nothing scored
        assert plain.best_step is None and plain.eval_history == [] and heads == [] and plain.eval_seconds == 0.0
    finally:
        trained_model.load_state_dict(snapshot)
        student.model = trained_model
        student.max_length = trained.args.max_length


def test_early_stopping_scores_accuracy_on_the_evaluation_rows(trained):
    """Unscripted: rows labelled the opposite way are the worst possible evaluation set for a student that fits
    its training labels, and every score is their real accuracy under the weights of that epoch."""
    student = trained.student
    trained_model = student.model
    snapshot = {k: v.detach().clone() for k, v in trained_model.state_dict().items()}
    flipped = [TrainExample(ex.text, "negative" if ex.target == "positive" else "positive") for ex in trained.examples]
    try:
        args = TrainingArgs(**{**trained.args.__dict__, "early_stopping": True})
        report = student.fit(trained.examples, args, eval_examples=flipped)
        best = max(v for _, v in report.eval_history)
        assert student.accuracy(flipped) == pytest.approx(best)
        assert report.eval_history[-1][1] == pytest.approx(0.0)  # by the end it fits the training labels
    finally:
        trained_model.load_state_dict(snapshot)
        student.model = trained_model
        student.max_length = trained.args.max_length


def test_label_smoothing_is_validated():
    assert TrainingArgs(label_smoothing=0.1).problems() == []
    assert "Label smoothing" in " ".join(TrainingArgs(label_smoothing=1.0).problems())


def test_soft_labels_are_mixed_into_the_targets(trained):
    """With weight 1 the teacher's probabilities replace the given labels; with weight 0 they are ignored."""
    student = trained.student
    trained_model = student.model
    snapshot = {k: v.detach().clone() for k, v in trained_model.state_dict().items()}
    # The teacher believes every row has the opposite label of the one it was asked to write.
    opposite = [TrainExample(ex.text, ex.target, soft=[1.0, 0.0] if ex.target == "positive" else [0.0, 1.0])
                for ex in trained.examples]
    try:
        targets = student._targets(opposite, 0.25)
        assert targets.shape == (16, 2) and torch.allclose(targets.sum(dim=1), torch.ones(16))
        assert targets[0].tolist() == pytest.approx([0.25, 0.75])  # positive row: 0.75 given label, 0.25 teacher
        assert student._targets(opposite, 0.0).dtype == torch.long  # weight 0: the given labels as they are

        student.fit(opposite, TrainingArgs(**{**trained.args.__dict__, "soft_label_weight": 1.0}))
        preds = [p.output for p in student.predict(trained.texts)]
        assert preds == ["negative" if t == "positive" else "positive" for t in trained.targets]

        bad = [TrainExample("x", "positive", soft=[0.2, 0.3, 0.5])]
        with pytest.raises(ValueError, match="Soft labels must be 2"):
            student.fit(bad, TrainingArgs(**{**trained.args.__dict__, "soft_label_weight": 0.5}))
    finally:
        trained_model.load_state_dict(snapshot)
        student.model = trained_model
        student.max_length = trained.args.max_length

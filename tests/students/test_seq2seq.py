"""Seq2SeqStudent with the real embedded SmolLM2-135M weights (GGUF, dequantized to fp32), tiny settings.

The model is loaded and trained (6 steps) once for this module: loading costs ~15-25 s on the shared 2-core
machine, a step about a second at batch 4. No T5 exists offline here, so the encoder-decoder branch is not
exercised by these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gold.energy import IGNORE_INDEX, energy_from_logits
from gold.students.base import Student, TrainExample, TrainingArgs, TrainReport
from gold.students.seq2seq import SIDECAR, PromptFormat, Seq2SeqStudent, _truncate, collate_left, collate_train

PAIRS = [
    ("Tom has 3 apples and buys 2 more. How many apples does he have?", "5"),
    ("A box holds 6 pens. How many pens are in 2 boxes?", "12"),
    ("Sara had 10 stickers and gave away 4. How many are left?", "6"),
    ("There are 7 birds and 8 more arrive. How many birds are there?", "15"),
]
ARGS = TrainingArgs(epochs=1, min_steps=6, max_steps=6, batch_size=4, learning_rate=1e-4, max_length=48, seed=0,
                    loss="ce")
THREADS = int(os.environ.get("GOLD_TEST_THREADS", "1"))
MAX_NEW_TOKENS = 12  # not the default, so the save/load test shows the sidecar is read


@dataclass
class Trained:
    student: Seq2SeqStudent
    examples: list[TrainExample]
    report: TrainReport
    progress: list[tuple[float, str]]
    loss_before: np.ndarray
    loss_after: np.ndarray


@pytest.fixture(scope="module")
def trained() -> Trained:
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # see conftest: one thread beats two contended ones on this machine
    try:
        student = Seq2SeqStudent(max_new_tokens=MAX_NEW_TOKENS)
        examples = [TrainExample(t, y) for t, y in PAIRS]
        texts, targets = zip(*PAIRS)
        loss_before = student.loss(texts, targets)
        progress: list[tuple[float, str]] = []
        report = student.fit(examples, ARGS, progress=lambda f, m: progress.append((f, m)))
        loss_after = student.loss(texts, targets)
    finally:
        torch.set_num_threads(before)
    return Trained(student, examples, report, progress, loss_before, loss_after)


# --- pure parts: masking and padding, no model ----------------------------------------------------------
EOS = PAD = 2  # as in SmolLM2: the pad token *is* eos, so only positions can tell padding from a target's end


def test_training_labels_are_ignored_exactly_on_prompt_and_padding():
    pairs = [([10, 11, 12], [20, EOS]), ([13], [21, 22, 23, EOS]), ([14, 15, 16, 17, 18], [EOS])]
    b = collate_train(pairs, PAD)
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape == (3, 6)
    assert b["input_ids"].tolist() == [
        [10, 11, 12, 20, EOS, PAD],
        [13, 21, 22, 23, EOS, PAD],
        [14, 15, 16, 17, 18, EOS],
    ]
    X = IGNORE_INDEX
    assert b["labels"].tolist() == [[X, X, X, 20, EOS, X], [X, 21, 22, 23, EOS, X], [X, X, X, X, X, EOS]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]  # right padding
    # every target token (eos included) is a label, and nothing else is
    for row, (p, t) in enumerate(pairs):
        assert [v for v in b["labels"][row].tolist() if v != X] == t


def test_encoder_decoder_labels_are_the_target_padded_with_ignore():
    b = collate_train([([10, 11, 1], [20, 1]), ([12, 1], [21, 22, 23, 1])], 0, encoder_decoder=True)
    assert b["input_ids"].tolist() == [[10, 11, 1], [12, 1, 0]]
    assert b["labels"].tolist() == [[20, 1, IGNORE_INDEX, IGNORE_INDEX], [21, 22, 23, 1]]


def test_generation_batches_are_left_padded():
    b = collate_left([[5, 6, 7], [8]], PAD)
    assert b["input_ids"].tolist() == [[5, 6, 7], [PAD, PAD, 8]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_truncation_keeps_the_prompt_tail_and_the_target_eos():
    prompt, target = _truncate(list(range(100)), [7, 8, EOS], 10)
    assert target == [7, 8, EOS] and prompt == list(range(93, 100))  # "Output:" is at the end of the prompt
    prompt, target = _truncate([1, 2], list(range(20)) + [EOS], 10)
    assert len(target) == 5 and target[-1] == EOS and prompt == [1, 2]  # a long answer still ends in eos


# --- the real model ---------------------------------------------------------------------------------------
def test_is_a_student(trained):
    assert isinstance(trained.student, Student) and trained.student.kind == "seq2seq"
    model = trained.student.model  # dequantized to a plain fp32 model: no quantizer, no quantization config
    assert getattr(model, "hf_quantizer", None) is None and not hasattr(model.config, "quantization_config")
    assert next(model.parameters()).dtype == torch.float32


def test_a_few_steps_lower_the_loss_on_the_training_pairs(trained):
    report = trained.report
    assert report.steps == 6 == len(trained.student.loss_history) and report.examples == 4
    assert report.seconds > 0 and report.examples_per_second > 0
    assert trained.loss_after.mean() < 0.5 * trained.loss_before.mean(), (trained.loss_before, trained.loss_after)
    fractions = [f for f, _ in trained.progress]
    assert len(fractions) == 6 and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_sce_is_accepted_and_trained_as_ce(trained):
    # settings default to SCE for every task; a generator trains with token CE (see the module docstring)
    student = trained.student
    snapshot = {k: v.detach().clone() for k, v in student.model.state_dict().items()}
    try:
        args = TrainingArgs(epochs=1, min_steps=1, max_steps=1, batch_size=4, learning_rate=1e-12, max_length=48,
                            loss="ce", precision="fp32")  # fp32: the training loss must equal `loss()` exactly
        args.loss, args.warm_start = "sce", True
        student.fit(trained.examples, args)
        assert student.loss_used == "ce"
        assert student.loss_history[0] == pytest.approx(float(trained.loss_after.mean()), rel=1e-3)
    finally:
        student.model.load_state_dict(snapshot)


def test_cold_fit_restarts_from_the_base_and_warm_fit_continues(trained, monkeypatch):
    """The decision only: the reload itself (dequantizing the GGUF again, ~20 s) is stubbed out."""
    student = trained.student
    snapshot = {k: v.detach().clone() for k, v in student.model.state_dict().items()}
    model = student.model
    reloads: list[int] = []
    monkeypatch.setattr(student, "_fresh_model", lambda: reloads.append(1) or model)
    try:
        args = TrainingArgs(epochs=1, min_steps=1, max_steps=1, batch_size=4, learning_rate=1e-12, max_length=48,
                            loss="ce")
        student.fit(trained.examples, TrainingArgs(**{**args.__dict__, "warm_start": True}))
        assert reloads == []
        student.fit(trained.examples, args)  # trained weights + cold start: back to the base
        assert reloads == [1] and student.model is model
    finally:
        student.model = model
        model.load_state_dict(snapshot)


def test_energy_counts_only_target_tokens(trained):
    student = trained.student
    text, output = PAIRS[0][0], "5"
    alone = student.energy([text], [output])[0]
    # the same pair beside a much longer one: more padding, same energy
    beside = student.energy([text, PAIRS[1][0] * 3], [output, "a long answer with many more tokens than five"])[0]
    assert np.isfinite(alone) and beside == pytest.approx(alone, abs=1e-4)

    # by hand: the mean over the target positions (" 5" and eos) of -logsumexp, from an unpadded forward pass
    prompt = student.tokenizer(student.format.render_prompt(text))["input_ids"]
    target = student.tokenizer(student.format.render_target(output), add_special_tokens=False)["input_ids"]
    target = target + [student.tokenizer.eos_token_id]
    with torch.inference_mode():
        logits = student.model(input_ids=torch.tensor([prompt + target])).logits[0]
    predicting_target = logits[len(prompt) - 1 : len(prompt) + len(target) - 1]
    assert alone == pytest.approx(float(energy_from_logits(predicting_target).mean()), abs=1e-4)

    t2 = student.energy([text], [output], temperature=2.0)[0]
    assert np.isfinite(t2) and t2 != pytest.approx(alone)


def test_energy_without_outputs_scores_the_students_own_answers(trained):
    student = trained.student
    texts = [t for t, _ in PAIRS[:2]]
    answers = [p.output for p in student.predict(texts)]
    assert np.allclose(student.energy(texts), student.energy(texts, answers), atol=1e-5)


def test_predict_returns_one_line_answers_with_confidence(trained):
    texts = [t for t, _ in PAIRS] + ["Completely unrelated: name a colour."]
    preds = trained.student.predict(texts)
    assert len(preds) == len(texts)
    for p in preds:
        assert isinstance(p.output, str) and "\n" not in p.output and 0 < p.confidence <= 1
    # batched (left-padded) generation gives what one-by-one generation gives
    assert [p.output for p in preds[:2]] == [trained.student.predict([t])[0].output for t in texts[:2]]


def test_embed_is_normalised_and_independent_of_the_batch(trained):
    texts = [t for t, _ in PAIRS]
    e = trained.student.embed(texts)
    assert e.shape == (4, trained.student.model.config.hidden_size)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert np.allclose(trained.student.embed(texts[2:3])[0], e[2], atol=1e-4)  # padding does not leak in


# --- persistence ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("seq2seq") / "student"
    trained.student.save(folder)
    return folder


def test_saved_folder_is_plain_hf_without_gguf(saved):
    config = json.loads((saved / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"
    assert (saved / "model.safetensors").is_file() and (saved / "tokenizer.json").is_file()
    notes = json.loads((saved / SIDECAR).read_text())
    assert notes["format"]["prompt"] == "Input: {text}\nOutput:" and notes["base"] == "embedded:smollm2-135m-instruct"


def test_saved_student_generates_the_same_in_plain_transformers(trained, saved):
    """A user's own process, no gguf_file, nothing of gold imported: same greedy answer."""
    code = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import torch
        torch.set_num_threads(1)
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
        folder, text = sys.argv[1], sys.argv[2]
        notes = json.loads((Path(folder) / "gold_student.json").read_text())
        prompt = notes["format"]["prompt"].replace("{text}", text)
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder)
        enc = tok(prompt, return_tensors="pt")
        out = model.generate(**enc, do_sample=False, max_new_tokens=notes["max_new_tokens"])
        direct = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).split("\\n")[0].strip()
        gen = pipeline("text-generation", model=folder)
        piped = gen(prompt, do_sample=False, return_full_text=False)[0]["generated_text"].split("\\n")[0].strip()
        quantized = getattr(model, "hf_quantizer", None) is not None
        print(json.dumps({"direct": direct, "pipeline": piped, "quantized": quantized,
                          "gold": any(m == "gold" or m.startswith("gold.") for m in sys.modules)}))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    text = PAIRS[2][0]
    cmd = [sys.executable, "-c", code, str(saved), text]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd="/")
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    expected = trained.student.predict([text])[0].output
    assert got == {"direct": expected, "pipeline": expected, "quantized": False, "gold": False}


def test_load_restores_the_student(trained, saved):
    loaded = Seq2SeqStudent.load(saved)
    assert loaded.format == PromptFormat() and loaded.max_new_tokens == MAX_NEW_TOKENS
    assert loaded.max_length == ARGS.max_length
    assert loaded.base.gguf_file is not None  # a later cold fit restarts from the embedded weights, not the checkpoint
    texts = [t for t, _ in PAIRS[:2]]
    assert [p.output for p in loaded.predict(texts)] == [p.output for p in trained.student.predict(texts)]
    assert np.allclose(loaded.energy(texts, ["5", "12"]), trained.student.energy(texts, ["5", "12"]), atol=1e-4)


def test_early_stopping_scores_every_epoch_by_eval_loss_and_keeps_the_best(trained):
    student = trained.student
    snapshot = {k: v.detach().clone() for k, v in student.model.state_dict().items()}
    # The same questions with wrong answers: fitting the right ones makes these less likely as training goes on.
    wrong = [TrainExample(t, y) for (t, _), (_, y) in zip(PAIRS, PAIRS[1:] + PAIRS[:1])]
    try:
        args = TrainingArgs(epochs=1, min_steps=3, max_steps=3, batch_size=4, learning_rate=3e-4, max_length=48,
                            warm_start=True, early_stopping=True, loss="ce")
        report = student.fit(trained.examples, args, eval_examples=wrong)
        assert [s for s, _ in report.eval_history] == [1, 2, 3]  # one batch per epoch
        best = max(v for _, v in report.eval_history)
        assert report.best_step == max(s for s, v in report.eval_history if v == best)
        kept = -float(np.mean(student.loss([e.text for e in wrong], [e.target for e in wrong])))
        assert kept == pytest.approx(best, abs=1e-4)  # the weights handed back are the best epoch's
        assert 0 < report.eval_seconds < report.seconds  # three scorings, counted apart from the training
    finally:
        student.model.load_state_dict(snapshot)

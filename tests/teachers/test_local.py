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
    # ...and after calibrating with a content-free input (DESIGN.md) each review ranks its label first
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

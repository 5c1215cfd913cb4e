"""LocalTeacher on a model whose layers mix sliding-window and full attention (the Gemma 3 layout).

A tiny Gemma 3 (4 layers, window 8, random weights) is built from a config and saved with the embedded SmolLM2
tokenizer, so the cache layouts of a real hybrid model are exercised in seconds. Every cached read-out (the
few-shot prefix of `label_loglik`, the one-token fast path of `generate`, the chunked `prompt_logprobs`) must
equal the plain reference: one forward pass over the whole text, no cache.
"""

from __future__ import annotations

import pytest
import torch

from gold.teachers import local
from gold.teachers.base import GenerationSettings

WINDOW = 8
PREFIX = ("Classify each question by the kind of answer it asks for.\n\n"
          "Question: Who wrote Hamlet?\nType: human\n\n"
          "Question: Where is the Eiffel Tower?\nType: location\n\n")
PROMPTS = ["Question: When did the war end?\nType:", "Question: What is a sonnet?\nType:",
           "Question: How many legs has a spider?\nType:"]
CANDIDATES = [" human", " location", " numeric value"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from gold.models import resolve

    loc = resolve("embedded:smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(loc.folder, gguf_file=loc.gguf_file)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=WINDOW,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        pad_token_id=tokenizer.pad_token_id or 0, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, initializer_range=0.5,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("tiny_gemma3")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return local.LocalTeacher(str(folder), device="cpu", threads=1)


def _ids(teacher, text: str) -> list[int]:
    return teacher.tokenizer(text, add_special_tokens=False).input_ids


def _reference_logp(teacher, ids: list[int]) -> torch.Tensor:
    """log-softmax of one plain forward pass (no cache): row i predicts token i + 1."""
    with torch.inference_mode():
        logits = teacher.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
    return torch.log_softmax(logits.float(), dim=-1)


def test_the_prefix_is_longer_than_the_window(teacher):
    assert len(_ids(teacher, PREFIX)) > 4 * WINDOW
    assert teacher.model.config.sliding_window == WINDOW


def test_label_loglik_with_a_long_prefix_equals_the_uncached_forward_pass(teacher):
    prompts = PROMPTS + [""]  # an empty prompt: its first candidate token is read off the prefix's last logits
    got = teacher.label_loglik(prompts, CANDIDATES, prefix=PREFIX, batch_size=4)  # batches of mixed lengths
    for i, prompt in enumerate(prompts):
        for k, cand in enumerate(CANDIDATES):  # the prompt is read as the whole text a server would encode
            head, tail = _ids(teacher, PREFIX + prompt), _ids(teacher, cand)
            logp = _reference_logp(teacher, head + tail)
            want = sum(float(logp[len(head) + t - 1, tok]) for t, tok in enumerate(tail))
            assert got[i, k] == pytest.approx(want, abs=1e-4)


def test_one_token_generation_reads_the_prefix_cache_exactly(teacher):
    settings = GenerationSettings(max_new_tokens=1, temperature=0, repetition_penalty=1.0, top_logprobs=5,
                                  batch_size=2, stop=())
    texts = [PREFIX + p for p in PROMPTS]
    first = teacher.generate(texts, settings)
    again = teacher.generate(texts, settings)  # now every row starts from the kept prefix entry
    assert teacher._prefix is not None and len(teacher._prefix.ids) >= len(_ids(teacher, PREFIX))
    for text, a, b in zip(texts, first, again):
        logp = _reference_logp(teacher, _ids(teacher, text))[-1]
        top = torch.topk(logp, 5)
        for c in (a, b):
            assert c.completion_tokens == 1 and len(c.logprobs) == 1
            entry = c.logprobs[0]
            assert entry.token == c.text == teacher.tokenizer.decode([int(top.indices[0])])
            assert entry.logprob == pytest.approx(float(top.values[0]), abs=1e-4)
            assert [t for t, _ in entry.top] == [teacher.tokenizer.decode([int(i)]) for i in top.indices]
            assert [v for _, v in entry.top] == pytest.approx(top.values.tolist(), abs=1e-4)


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_one_token_fast_path_picks_what_generate_picks(teacher, temperature):
    # the fast path must not change which token comes out: same processors (the repetition penalty of 1.2 is
    # on), same per-batch seeding; generate's first token of two is read the general way
    fast = GenerationSettings(max_new_tokens=1, temperature=temperature, top_logprobs=3, batch_size=2, stop=(),
                              seed=7)
    texts = [PREFIX + p for p in PROMPTS]
    one = teacher.generate(texts, fast)
    two = teacher.generate(texts, fast.with_(max_new_tokens=2))
    for a, b in zip(one, two):
        assert a.logprobs[0].token == b.logprobs[0].token
        assert a.logprobs[0].logprob == pytest.approx(b.logprobs[0].logprob, abs=1e-4)
        assert [t for t, _ in a.logprobs[0].top] == [t for t, _ in b.logprobs[0].top]
        assert b.text.startswith(a.text) and len(b.logprobs) == b.completion_tokens == 2


def test_prompt_logprobs_in_chunks_equal_the_uncached_forward_pass(teacher, monkeypatch):
    monkeypatch.setattr(local, "PROMPT_CHUNK_TOKENS", WINDOW + 3)  # several chunks, each past the window
    text = PREFIX + PROMPTS[0]
    entries = teacher.prompt_logprobs(text, top_logprobs=2)
    ids = _ids(teacher, text)
    logp = _reference_logp(teacher, ids)
    assert len(entries) == len(ids) and entries[0].logprob is None
    assert "".join(e.token for e in entries) == text
    assert [e.offset for e in entries] == [len(teacher.tokenizer.decode(ids[:i])) for i in range(len(ids))]
    for i in range(1, len(ids)):
        assert entries[i].logprob == pytest.approx(float(logp[i - 1, ids[i]]), abs=1e-4)
        assert [v for _, v in entries[i].top] == pytest.approx(torch.topk(logp[i - 1], 2).values.tolist(), abs=1e-4)

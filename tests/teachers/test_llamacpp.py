"""LlamaCppTeacher: the embedded GGUF run by llama.cpp, with the transformers teacher's sampling recipe.

The processors are checked against transformers' own logits processors; generation against the transformers
teacher on the same model (greedy), and for the properties a run relies on: stops, token counts, seeds that do
not depend on batch composition, and the key/value prefix cache giving the same replies as a cold start. The
weights it runs (the file's Q4_1 or an F16 copy, `gguf_weights`): the rule that picks them, the copy written once,
and the copy reading the labels the file's own weights read.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from support import gguf_header

from gold.teachers import gguf_weights
from gold.teachers.base import Completion, GenerationSettings, Teacher
from gold.teachers.llamacpp import TOP_K, _log_softmax, process_logits

LIST = "Here are some short words, one per line.\n\nWord: apple\nWord: river\nWord: stone\nWord: cloud\nWord:"
SHORT = "The capital of France is"
LONG = ("Here is a list of the capital cities of European countries. The capital of Germany is Berlin. "
        "The capital of Italy is Rome. The capital of France is")
GREEDY = GenerationSettings(temperature=0, max_new_tokens=6, batch_size=1)


@pytest.mark.parametrize("temperature,top_p,penalty", [(0.9, 0.95, 1.2), (1.0, 1.0, 1.0), (0.5, 0.5, 1.5)])
def test_processors_match_transformers(temperature, top_p, penalty):
    from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                              TopPLogitsWarper)

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=500).astype(np.float32)
    context = rng.integers(0, 500, size=40)
    s = GenerationSettings(temperature=temperature, top_p=top_p, repetition_penalty=penalty)
    ours = process_logits(logits, context, s)

    ids = torch.tensor([context.tolist()])
    scores = torch.tensor(logits, dtype=torch.float32).unsqueeze(0)  # a model's logits, as transformers gets them
    for proc in ([RepetitionPenaltyLogitsProcessor(penalty)] if penalty != 1.0 else []) + [
            TemperatureLogitsWarper(temperature), TopKLogitsWarper(TOP_K)] + (
            [TopPLogitsWarper(top_p)] if top_p < 1.0 else []):
        scores = proc(ids, scores)
    theirs = torch.softmax(scores, dim=-1)[0].numpy()
    assert ours.sum() == pytest.approx(1.0)
    assert np.count_nonzero(ours) == np.count_nonzero(theirs) <= TOP_K
    assert ours == pytest.approx(theirs, abs=1e-6)  # float32 rounding


def test_repetition_penalty_covers_the_prompt():
    logits = np.array([2.0, 2.0, -1.0, -1.0])
    p = process_logits(logits, np.array([0, 2]), GenerationSettings(temperature=1.0, top_p=1.0, repetition_penalty=2.0))
    assert p[0] < p[1] and p[2] < p[3]  # tokens already in the context (prompt included) are less likely
    greedy = process_logits(logits, np.array([0]), GenerationSettings(temperature=0, repetition_penalty=2.0))
    assert greedy.tolist() == [0.0, 1.0, 0.0, 0.0]


slow = pytest.mark.slow  # the tests below load a real model


@slow
def test_is_a_completion_teacher(llamacpp_teacher):
    assert isinstance(llamacpp_teacher, Teacher) and llamacpp_teacher.prompt_style == "completion"
    assert llamacpp_teacher.engine == "llama.cpp" and "SmolLM2" in repr(llamacpp_teacher)


@slow
def test_greedy_replies_match_the_transformers_teacher(llamacpp_teacher, local_teacher):
    ours = [c.text for c in llamacpp_teacher.generate([SHORT, LONG], GREEDY)]
    theirs = [c.text for c in local_teacher.generate([SHORT, LONG], GREEDY)]
    assert "Paris" in ours[0] and "Paris" in ours[1]
    # the quantized kernels round differently from de-quantized fp32, so only the first words are compared
    assert [t.split()[:2] for t in ours] == [t.split()[:2] for t in theirs]
    assert llamacpp_teacher.count_tokens(SHORT) == local_teacher.count_tokens(SHORT)


@slow
def test_stops_at_newline_and_counts_tokens(llamacpp_teacher):
    before = llamacpp_teacher.usage.completion_tokens
    out = llamacpp_teacher.generate([LIST, SHORT], GenerationSettings(temperature=0, max_new_tokens=12))
    assert all(isinstance(c, Completion) for c in out)
    first = out[0]
    assert first.text.strip() and "\n" not in first.text
    assert first.finish_reason == "stop" and 1 <= first.completion_tokens < 12
    assert first.prompt_tokens == llamacpp_teacher.count_tokens(LIST)
    assert llamacpp_teacher.usage.completion_tokens - before == sum(c.completion_tokens for c in out)


@slow
def test_multi_character_stop_strings(llamacpp_teacher):
    free = llamacpp_teacher.generate([LIST], GREEDY.with_(max_new_tokens=10, stop=()))[0]
    assert free.finish_reason == "length" and free.completion_tokens == 10
    assert "\n\n" in free.text
    cut = llamacpp_teacher.generate([LIST], GREEDY.with_(max_new_tokens=10, stop=("\n\n",)))[0]
    assert cut.text == free.text.split("\n\n")[0] and cut.finish_reason == "stop" and cut.completion_tokens < 10


@slow
def test_seeded_sampling_does_not_depend_on_the_other_prompts(llamacpp_teacher):
    s = GenerationSettings(max_new_tokens=8, seed=3)
    a = [c.text for c in llamacpp_teacher.generate([LIST, SHORT, LONG], s)]
    b = [c.text for c in llamacpp_teacher.generate([LIST, SHORT, LONG], s)]
    c = [c.text for c in llamacpp_teacher.generate([LIST, SHORT, LONG], s.with_(seed=4))]
    assert a == b and a != c
    # the prompt at position 0 samples the same reply whatever follows it
    assert llamacpp_teacher.generate([LIST, "Word: tree\nWord:"], s)[0].text == a[0]


@slow
def test_prefix_cache_gives_the_replies_of_a_cold_start(llamacpp_teacher):
    # LONG shares its first tokens with nothing; LONG + more shares all of LONG: the cache must be cut right
    longer = LONG + " Paris. The capital of Spain is"
    warm = [c.text for c in llamacpp_teacher.generate([LONG, longer, LONG], GREEDY)]
    cold = []
    for p in (LONG, longer, LONG):
        llamacpp_teacher.decoder.close()  # an empty cache
        cold.append(llamacpp_teacher.generate([p], GREEDY)[0].text)
    assert warm == cold and "Madrid" in warm[1]


@slow
def test_replies_decoded_together_are_the_replies_decoded_one_at_a_time(llamacpp_teacher, monkeypatch):
    """Eight prompts through four slots: a slot whose reply ended takes the next prompt, every reply comes back
    in its prompt's place, and greedy replies are those of a teacher decoding one at a time (the batched kernels
    round differently, so a near-tie may flip a late token: the first words of each, and most whole replies)."""
    from gold.teachers.llamacpp import LlamaCppTeacher

    prompts = [LIST, SHORT, LONG, "Word: tree\nWord:", "Country: Peru\nCapital:", LONG + " Paris.", SHORT + " Paris",
               "Q: What is two plus two?\nA:"]
    settings = GREEDY.with_(max_new_tokens=12)
    assert llamacpp_teacher.sequences == 4
    steps = llamacpp_teacher.decoder.steps
    together = llamacpp_teacher.generate(prompts, settings)
    steps = llamacpp_teacher.decoder.steps - steps
    monkeypatch.setenv("GOLD_HOME", str(llamacpp_teacher.weights_path.parent.parent))  # the same F16 copy
    single = LlamaCppTeacher(threads=1, adapt=False, sequences=1)
    assert single.weights_path == llamacpp_teacher.weights_path
    alone = single.generate(prompts, settings)
    assert [c.prompt_tokens for c in together] == [llamacpp_teacher.count_tokens(p) for p in prompts]
    assert [c.text.split()[:2] for c in together] == [c.text.split()[:2] for c in alone]
    assert sum(a.text == b.text for a, b in zip(together, alone)) >= len(prompts) - 1
    # decoded together: far fewer steps than tokens (one at a time takes one step per token)
    assert steps < 0.5 * sum(c.completion_tokens + 1 for c in together)
    assert single.decoder.steps >= sum(c.completion_tokens for c in alone)


@slow
def test_a_call_that_failed_midway_leaves_the_decoder_usable(llamacpp_teacher):
    """A progress callback that raises (a worker told to stop, a full disk) ends the call with replies in flight;
    the next call starts from clean slots and gives the replies a fresh teacher gives."""
    prompts = [LIST, SHORT, LONG, "Word: tree\nWord:", "Country: Peru\nCapital:"]

    def stop(frac, _msg):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        llamacpp_teacher.generate(prompts, GREEDY.with_(max_new_tokens=12), progress=stop)
    after = [c.text for c in llamacpp_teacher.generate(prompts, GREEDY)]
    llamacpp_teacher.decoder.close()
    cold = [c.text for c in llamacpp_teacher.generate(prompts, GREEDY)]
    assert after == cold


@slow
def test_several_samples_per_prompt_read_the_prompt_once(llamacpp_teacher):
    """A request for 3 samples as 3 lines: every line after the first continues the same sequence, so the
    prompt of seeds is evaluated once per request, not once per line; every line parses into a sample."""
    import random

    from gold import prompts
    from gold.examples import example_spec

    task = example_spec("sst2")
    reqs = prompts.plan_requests(task, 6, rng=random.Random(0), options=prompts.PromptOptions(per_prompt=3))
    assert [r.n_expected for r in reqs] == [3, 3]
    before = llamacpp_teacher.evaluated_prompt_tokens
    replies = prompts.run_requests(llamacpp_teacher, reqs, GenerationSettings(seed=2, max_new_tokens=24))
    evaluated = llamacpp_teacher.evaluated_prompt_tokens - before
    prompt_tokens = [llamacpp_teacher.count_tokens(r.prompt) for r in reqs]
    assert evaluated < 1.5 * sum(prompt_tokens)  # three lines each would be 3x, plus the lines themselves
    items = [it for r, c in zip(reqs, replies) for it in prompts.parse_request(task, r, c.text)]
    assert len(items) == 6 and sum(it.reject_reason is None for it in items) >= 4
    assert all(c.text.count("\nText:") == 2 for c in replies if c.finish_reason != "error")


@slow
def test_prompts_sharing_a_draw_are_read_once_and_still_sampled_apart(llamacpp_teacher):
    """Four prompts of a label drawn alike run one after the other: the kept key/value cache holds the whole
    prompt, so each group's prompt is evaluated once (about a quarter of the tokens of four separate draws), and
    the four samples are four draws of the sampler, not one sample four times."""
    import random

    from gold import prompts
    from gold.examples import example_spec

    task = example_spec("sst2")
    reqs = prompts.plan_requests(task, 8, rng=random.Random(0), options=prompts.PromptOptions(per_draw=4))
    assert len({r.prompt for r in reqs}) == 2
    before = llamacpp_teacher.evaluated_prompt_tokens
    replies = prompts.run_requests(llamacpp_teacher, reqs, GenerationSettings(seed=5, max_new_tokens=24))
    evaluated = llamacpp_teacher.evaluated_prompt_tokens - before
    prompt_tokens = [llamacpp_teacher.count_tokens(r.prompt) for r in reqs]
    assert evaluated < 0.35 * sum(prompt_tokens)
    for prompt in {r.prompt for r in reqs}:
        texts = [c.text for r, c in zip(reqs, replies) if r.prompt == prompt]
        assert len(set(texts)) >= 3, texts


@slow
def test_chat_prompts_and_too_long_prompts(llamacpp_teacher):
    messages = [{"role": "user", "content": "Say hello."}]
    rendered = llamacpp_teacher.render(messages)
    assert "<|im_start|>user" in rendered and rendered.rstrip().endswith("assistant")
    out = llamacpp_teacher.generate([messages], GenerationSettings(max_new_tokens=4))[0]
    assert out.completion_tokens <= 4 and out.prompt_tokens == len(llamacpp_teacher.tokenize(rendered, special=True))
    huge = "word " * (llamacpp_teacher.n_ctx + 10)
    bad = llamacpp_teacher.generate([huge, SHORT], GREEDY)
    assert bad[0].finish_reason == "error" and "context" in bad[0].error and "Paris" in bad[1].text


def test_label_reads_match_the_transformers_teacher_and_multi_token_labels_add_up(llamacpp_teacher, local_teacher):
    """The label step reads soft labels with the generating llama.cpp teacher (one model loaded): its label
    log-likelihoods are the transformers teacher's on the same text, up to the quantized arithmetic, and pick the
    same label; a candidate of several tokens is the sum over its tokens, as a cold evaluation of the text gives."""
    prefix = "Is the review positive or negative?\n\nReview: a great film\nLabel: positive\n\n"
    rows = [f"Review: {t}\nLabel:" for t in ("i loved every minute", "dull and far too long", "a mess", "wonderful")]
    cands = [" positive", " negative", " somewhat mixed"]
    ll = llamacpp_teacher.label_loglik(rows, cands, prefix=prefix)
    ref = local_teacher.label_loglik(rows, cands, prefix=prefix)
    assert ll.shape == (4, 3) and np.abs(ll - ref).max() < 1.0
    assert (ll[:, :2].argmax(1) == ref[:, :2].argmax(1)).all()
    llm = llamacpp_teacher.llm
    ids = llamacpp_teacher.tokenize(prefix + rows[1])
    cand = llamacpp_teacher.tokenize(cands[2])
    assert len(cand) > 1
    cold = 0.0
    for j, token in enumerate(cand):  # each token read from a cold evaluation of everything before it
        llm.reset()
        llm.eval(ids + cand[:j])
        cold += float(_log_softmax(llamacpp_teacher._logits())[token])
    # F16's batched kernels round a little differently for a different number of tokens in one evaluation
    assert ll[1, 2] == pytest.approx(cold, abs=1e-2)
    assert llamacpp_teacher.label_loglik(rows[1:2], cands, prefix=prefix, normalize=True)[0, 2] == \
        pytest.approx(ll[1, 2] / len(cand), abs=1e-2)


def test_weights_stay_out_of_the_amx_buffer_on_a_build_that_has_it():
    """A build with AMX crashes when it decodes after a kept prefix from weights in its AMX buffer: the teacher
    loads with llama.cpp's extra buffers off there, and only while one model loads."""
    pytest.importorskip("llama_cpp")
    import llama_cpp
    import llama_cpp.llama_cpp as capi

    from gold.teachers.llamacpp import _model_params, uses_extra_buffers

    assert uses_extra_buffers() == (b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info())
    default = capi.llama_model_default_params
    assert default().use_extra_bufts  # llama.cpp's own default: on
    with _model_params(use_extra_bufts=False):
        assert capi.llama_model_default_params().use_extra_bufts is False
    assert capi.llama_model_default_params is default
    with pytest.raises(RuntimeError), _model_params(use_extra_bufts=False):
        raise RuntimeError("a load that fails")
    assert capi.llama_model_default_params is default


@slow
def test_the_teacher_runs_fewer_threads_while_other_work_holds_a_core(llamacpp_teacher):
    """With a core busy elsewhere, llama.cpp itself is told to run one thread, and every core again once free."""
    import llama_cpp

    from gold.cpu import FreeCores, ThreadGovernor
    from support import Counters

    counters, clock = Counters(cores=2), [0.0]
    teacher = llamacpp_teacher
    saved = teacher.governor, teacher.running_threads
    teacher.governor = ThreadGovernor(2, FreeCores(cores=2, reader=counters), clock=lambda: clock[0])
    try:
        counters.tick(others=1.0, own=1.0)
        clock[0] += 1.0
        replies = teacher.generate([SHORT], GREEDY)
        assert teacher.running_threads == 1 == llama_cpp.llama_n_threads(teacher.llm.ctx)
        counters.tick(others=0.0, own=2.0)
        clock[0] += 1.0
        assert teacher.generate([SHORT], GREEDY)[0].text == replies[0].text  # the thread count changes no reply
        assert teacher.running_threads == 2 == llama_cpp.llama_n_threads_batch(teacher.llm.ctx)
    finally:
        teacher.governor, teacher.running_threads = saved
        llama_cpp.llama_set_n_threads(teacher.llm.ctx, teacher.running_threads, teacher.running_threads)


def test_auto_weights_copy_only_small_files_of_the_slow_types(tmp_path):
    from gold.models import DEFAULT_TEACHER, resolve

    try:
        embedded = resolve(DEFAULT_TEACHER).weights
    except Exception as e:  # noqa: BLE001 - a checkout without `make install`
        pytest.skip(str(e))
    assert gguf_weights.file_type(embedded) == 3  # Q4_1, read from the header alone
    assert gguf_weights.resolved_weights("auto", embedded) == "f16"
    assert gguf_weights.resolved_weights("file", embedded) == "file"
    cases = {  # (file type, size) -> what auto picks
        (9, 0): "f16",  # Q5_1
        (2, 0): "file",  # Q4_0: llama.cpp has batched kernels for it
        (15, 0): "file",  # Q4_K_M
        (1, 0): "file",  # already F16
        (3, gguf_weights.AUTO_MAX_FILE_BYTES + 1): "file",  # a larger model: decode streams weights from memory
        (None, 0): "file",  # the file does not say
    }
    for (ftype, size), expected in cases.items():
        path = tmp_path / f"m-{ftype}-{size}.gguf"
        gguf_header(path, ftype, size)
        assert gguf_weights.file_type(path) == ftype
        assert gguf_weights.resolved_weights("auto", path) == expected, (ftype, size)
    assert gguf_weights.resolved_weights("f16", tmp_path / "m-2-0.gguf") == "f16"
    assert gguf_weights.resolved_weights("f16", tmp_path / "m-1-0.gguf") == "file"  # nothing to convert
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    assert gguf_weights.file_type(not_gguf) is None and gguf_weights.resolved_weights("auto", not_gguf) == "file"
    with pytest.raises(ValueError, match="auto, file, f16"):
        gguf_weights.resolved_weights("q4_0", embedded)


@slow
def test_the_f16_copy_is_written_once_per_source_and_never_left_half_written(tmp_path, llamacpp_teacher):
    import shutil

    src = tmp_path / "teacher.gguf"
    shutil.copy(llamacpp_teacher.location.weights, src)
    first = gguf_weights.f16_copy(src, folder=tmp_path / "models")
    assert gguf_weights.file_type(first) == 1 and first.stat().st_size > 2 * src.stat().st_size
    made = first.stat().st_mtime_ns
    assert gguf_weights.f16_copy(src, folder=tmp_path / "models") == first and first.stat().st_mtime_ns == made
    os.utime(src, ns=(made + 10**9, made + 10**9))  # a replaced source: a copy of its own
    assert gguf_weights.f16_copy(src, folder=tmp_path / "models") != first
    broken = tmp_path / "broken.gguf"
    gguf_header(broken, 3)  # a header without tensors: llama.cpp refuses it
    with pytest.raises(OSError, match="could not write an F16 copy of broken.gguf"):
        gguf_weights.f16_copy(broken, folder=tmp_path / "models")
    assert sorted(p.name.split(".")[-1] for p in (tmp_path / "models").iterdir()) == ["gguf", "gguf"]


@slow
def test_the_f16_copy_reads_the_labels_the_file_reads_and_a_copy_it_cannot_write_is_no_failure(
        tmp_path, monkeypatch, llamacpp_teacher):
    """The default teacher runs the F16 copy; the file's own Q4_1 weights read the same labels, up to the
    quantized arithmetic. Where the copy cannot be written, the teacher runs the file and says why."""
    from gold.teachers.llamacpp import LlamaCppTeacher

    assert llamacpp_teacher.weights == "f16" and "converted from the file's Q4_1" in llamacpp_teacher.weights_note
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("GOLD_MODEL_COPIES", str(blocker / "models"))  # a folder cannot be made under a file
    fallback = LlamaCppTeacher(threads=1, weights="auto")
    assert fallback.weights == "file" and "no F16 copy" in fallback.weights_note
    prefix = "Is the review positive or negative?\n\nReview: a great film\nLabel: positive\n\n"
    rows = [f"Review: {t}\nLabel:" for t in ("i loved every minute", "dull and far too long", "a mess", "wonderful")]
    f16 = llamacpp_teacher.label_loglik(rows, [" positive", " negative"], prefix=prefix)
    q4 = fallback.label_loglik(rows, [" positive", " negative"], prefix=prefix)
    assert np.abs(f16 - q4).max() < 0.5 and (f16.argmax(1) == q4.argmax(1)).all()

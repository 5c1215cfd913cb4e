"""Prompt builders and strict reply parsing (gold.prompts).

Hand-written replies cover every rejection reason; `tests/fixtures/teacher_replies.jsonl` holds REAL replies
of the embedded 135M teacher (regenerate with tests/fixtures/make_teacher_replies.py), so the parser is also
checked against what the model actually writes.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from gold import prompts as P
from gold.specs import Example, TaskSpec
from gold.teachers.base import Completion, GenerationSettings

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "teacher_replies.jsonl"
REVIEW = P.PromptOptions(field_titles={"text": "Review"})

NEG = ["run for your lives !", "like a three-ring circus , there are side stories aplenty -- none of them memorable .",
       "a dull , plodding\nmess ."]
POS = ["takes a fresh and absorbing look at a figure whose legacy had begun to bronze .",
       "the usual movie rah-rah , pleasantly and predictably delivered ."]


@pytest.fixture
def sentiment() -> TaskSpec:
    seeds = [Example({"text": t}, "negative") for t in NEG] + [Example({"text": t}, "positive") for t in POS]
    return TaskSpec("sst2", "classification", "Classify the sentiment of a movie review.", ["negative", "positive"], seeds=seeds)


@pytest.fixture
def nli() -> TaskSpec:
    seeds = [
        Example({"premise": "The revamped engine indexes more pages than before.", "hypothesis": "The engine indexes pages."}, "entailment"),
        Example({"premise": "Syria said it supports Iran's nuclear stance.", "hypothesis": "Iran is at war with Syria."}, "not_entailment"),
    ]
    return TaskSpec("rte", "classification", "Decide whether the premise entails the hypothesis.",
                    ["entailment", "not_entailment"], ["premise", "hypothesis"], seeds=seeds)


@pytest.fixture
def math() -> TaskSpec:
    seeds = [
        Example({"question": "Robin has 43 packages of gum with 23 pieces each. How many pieces?"}, "989"),
        Example({"question": "There were 22 parents and 676 people in total. How many pupils?"}, "654"),
        Example({"question": "Zachary did 62 crunches and David 17 less. How many did David do?"}, "45"),
    ]
    return TaskSpec("svamp", "seq2seq", "Solve the math word problem.", [], ["question"], "answer", seeds)


def reasons(items) -> list[str | None]:
    return [it.reject_reason for it in items]


# -- builders: completion form -----------------------------------------------------------------------------

def test_same_label_list_with_given_line_titles(sentiment):
    req = P.build_request(sentiment, "completion", "negative", random.Random(0), options=REVIEW)
    text = req.prompt
    assert text.startswith('Classify the sentiment of a movie review.\n\nHere are some examples labeled "negative".'
                           '\n\nReview: ')
    assert text.endswith("\nReview:")
    lines = text.split("\n\n", 2)[2].split("\n")[:-1]  # after the instruction and the header
    # that label's seeds only, one line each (the seed with a newline is flattened), shuffled
    assert sorted(lines) == sorted(f"Review: {' '.join(t.split())}" for t in NEG)
    assert req.stop == ("\n",) and req.label == "negative" and req.n_expected == 1 and not req.next_titles
    shuffles = {P.build_request(sentiment, "completion", "negative", random.Random(s), options=REVIEW).prompt for s in range(8)}
    assert len(shuffles) > 1  # the seed order depends on the rng
    assert P.build_request(sentiment, "completion", "negative", random.Random(3), options=REVIEW).prompt == \
        P.build_request(sentiment, "completion", "negative", random.Random(3), options=REVIEW).prompt


def test_generic_header_uses_instruction_and_field_name(sentiment):
    text = P.build_request(sentiment, "completion", "positive", random.Random(0)).prompt
    assert text.startswith('Classify the sentiment of a movie review.\n\nHere are some examples labeled "positive".\n\nText: ')
    assert text.endswith("\nText:") and "run for your lives" not in text


def test_multi_field_blocks_and_line_by_line_titles(nli):
    req = P.build_request(nli, "completion", "entailment", random.Random(0))
    assert "Premise: The revamped engine indexes more pages than before.\nHypothesis: The engine indexes pages.\n\n" in req.prompt
    assert "Syria" not in req.prompt  # the other label's seed
    assert req.prompt.endswith("\n\nPremise:")
    assert req.next_titles == ("Hypothesis",) and req.stop == ("\n",)


def test_seq2seq_blocks_and_token_budget_from_seeds(math):
    req = P.plan_requests(math, 1)[0]
    assert req.prompt.startswith("Solve the math word problem.\n\nHere are some examples.\n\nQuestion: ")
    assert "\nAnswer: 989\n\n" in req.prompt and req.prompt.endswith("\n\nQuestion:")
    assert req.label is None and req.next_titles == ("Answer",)
    q, a = req.field_factors
    assert q > a and a == 0.2  # a short budget for a number keeps a small model from rambling


def test_classes_are_balanced_and_interleaved(sentiment, nli):
    reqs = P.plan_requests(sentiment, 10, seed=1)
    assert Counter(r.label for r in reqs) == {"negative": 5, "positive": 5}
    assert [r.label for r in reqs] != sorted(r.label for r in reqs)  # labels interleaved
    three = TaskSpec("t", "classification", "x", ["a", "b", "c"],
                     seeds=[Example({"text": f"seed text {l}"}, l) for l in "abc"])
    counts = Counter(r.label for r in P.plan_requests(three, 7, seed=2))
    assert sum(counts.values()) == 7 and max(counts.values()) - min(counts.values()) == 1


def test_feedback_of_the_label_only_at_the_rate(sentiment):
    fb = {"negative": [Example({"text": "FEEDBACK-NEG a tedious slog"}, "negative")],
          "positive": [Example({"text": "FEEDBACK-POS a joyous ride"}, "positive")]}
    always = P.plan_requests(sentiment, 6, feedback=fb, feedback_rate=1.0, seed=0)
    for r in always:
        assert r.feedback_used == 1
        assert ("FEEDBACK-NEG" in r.prompt) == (r.label == "negative")
        assert ("FEEDBACK-POS" in r.prompt) == (r.label == "positive")
    never = P.plan_requests(sentiment, 6, feedback=fb, feedback_rate=0.0, seed=0)
    assert not any("FEEDBACK" in r.prompt for r in never)
    # a flat list of examples is split by label too
    flat = P.plan_requests(sentiment, 4, feedback=[e for v in fb.values() for e in v], feedback_rate=1.0)
    assert all(("FEEDBACK-NEG" in r.prompt) == (r.label == "negative") for r in flat)
    half = P.plan_requests(sentiment, 200, feedback=fb, feedback_rate=0.5, feedback_count=3, seed=0)
    assert 60 < sum(r.feedback_used > 0 for r in half) < 140


def test_probe_prompts_are_tempered_and_on_task(sentiment):
    reqs = P.plan_requests(sentiment, 8, probe=True, options=REVIEW, seed=0)
    assert {r.direction for r in reqs} == set(P.PROBE_DIRECTIONS)
    for r in reqs:
        assert r.probe and r.prompt.startswith(f'{sentiment.instruction}\n\nHere are some examples labeled '
                                               f'"{r.label}", {r.direction}.\n\nReview: ')
        assert "domain" not in r.prompt  # the wording that pulled a 135M teacher off-topic
    chat = P.plan_requests(sentiment, 4, probe=True, style="chat", seed=0)
    user = chat[0].prompt[1]["content"]
    assert chat[0].direction in P.PROBE_DIRECTIONS_CHAT and chat[0].direction in user
    assert f'whose correct label is "{chat[0].label}"' in user


def test_chat_form_asks_for_json_lines(sentiment, nli):
    reqs = P.plan_requests(sentiment, 12, style="chat", options=P.PromptOptions(per_reply=5), seed=0)
    assert sorted(r.n_expected for r in reqs) == [1, 1, 5, 5]  # 6 per label: 5 + 1
    system, user = reqs[0].prompt
    assert system["role"] == "system" and user["role"] == "user"
    content = user["content"]
    label = reqs[0].label
    assert f"Write {reqs[0].n_expected} new example" in content and f'is clearly "{label}"' in content
    seeds = [ex for ex in sentiment.seeds if ex.output == label]
    assert all(json.dumps({"text": " ".join(ex.inputs["text"].split())}) in content for ex in seeds)
    assert reqs[0].stop == () and reqs[0].length_factor > reqs[0].n_expected
    nli_user = P.plan_requests(nli, 2, style="chat")[0].prompt[1]["content"]
    assert 'the keys "premise", "hypothesis"' in nli_user


def test_settings_for_scales_tokens_and_sets_stops(sentiment):
    base = GenerationSettings()
    comp = P.settings_for(P.plan_requests(sentiment, 2), base)
    assert comp.stop == ("\n",) and comp.max_new_tokens == 40
    chat = P.settings_for(P.plan_requests(sentiment, 10, style="chat"), base)
    assert chat.stop == () and chat.max_new_tokens > 5 * 40
    with pytest.raises(ValueError):
        P.settings_for(P.plan_requests(sentiment, 2) + P.plan_requests(sentiment, 2, style="chat"), base)


def test_settings_for_refuses_line_by_line_requests(math):
    with pytest.raises(ValueError, match="run_requests"):
        P.settings_for(P.plan_requests(math, 2), GenerationSettings())


class FakeTeacher:
    """Records prompts and answers from a script (a function of the prompt)."""

    prompt_style = "completion"

    def __init__(self, answer):
        self.answer = answer
        self.calls: list[tuple[list, GenerationSettings]] = []

    def generate(self, prompts, settings, progress=None):
        self.calls.append((list(prompts), settings))
        return [Completion(self.answer(p), 7, 3, "stop") for p in prompts]


def test_run_requests_writes_fields_line_by_line(math):
    reqs = P.plan_requests(math, 2, seed=0)
    t = FakeTeacher(lambda p: " 12" if p.endswith("Answer:") else " Ann has 5 pens and buys 7 more. How many now?")
    out = P.run_requests(t, reqs, GenerationSettings())
    assert [c.text for c in out] == [" Ann has 5 pens and buys 7 more. How many now?\nAnswer: 12"] * 2
    assert (out[0].prompt_tokens, out[0].completion_tokens) == (14, 6)  # summed over both steps
    (first, s1), (second, s2) = t.calls
    assert second[0] == first[0] + " Ann has 5 pens and buys 7 more. How many now?\nAnswer:"
    assert s1.stop == s2.stop == ("\n",) and s1.max_new_tokens > s2.max_new_tokens == 8
    items = P.parse_request(math, reqs[0], out[0].text)
    assert reasons(items) == [None] and items[0].output == "12"


def test_several_samples_per_prompt_are_consecutive_lines_of_one_field_tasks(sentiment, nli):
    reqs = P.plan_requests(sentiment, 10, seed=0, options=dataclasses.replace(REVIEW, per_prompt=4))
    assert sorted(r.n_expected for r in reqs) == [1, 1, 4, 4] and sum(r.n_expected for r in reqs) == 10
    four = next(r for r in reqs if r.n_expected == 4)
    assert four.next_titles == ("Review",) * 3 and four.prompt.endswith("\nReview:")
    # two-field records stay one per prompt (their lines are the fields)
    assert {r.n_expected for r in P.plan_requests(nli, 6, seed=0, options=P.PromptOptions(per_prompt=4))} == {1}


def test_prompts_sharing_a_draw_are_the_same_prompt_next_to_each_other_and_keep_the_labels_balanced(sentiment):
    """per_draw = 4: each label's requests come in runs of 4 that share one draw of seeds and feedback (so a
    teacher that keeps its last prompt reads it once), the labels are still given equal shares, and the draws
    still differ from group to group."""
    feedback = {"negative": [Example({"text": "a limp , lifeless mess ."}, "negative")],
                "positive": [Example({"text": "a warm , funny delight ."}, "positive")]}
    reqs = P.plan_requests(sentiment, 18, seed=3, feedback=feedback, feedback_rate=1.0,
                           options=dataclasses.replace(REVIEW, per_draw=4))
    assert len(reqs) == 18 and sorted(r.label for r in reqs) == ["negative"] * 9 + ["positive"] * 9
    runs = [[reqs[0]]]
    for r in reqs[1:]:
        if r.prompt == runs[-1][-1].prompt:
            runs[-1].append(r)
        else:
            runs.append([r])
    assert sorted(len(g) for g in runs) == [1, 1, 4, 4, 4, 4]  # 9 per label: 4 + 4 + 1
    assert all(r.feedback_used == 1 for r in reqs)
    assert len({g[0].prompt for g in runs}) > 2  # draws differ between groups
    # 1 (the default) draws per request, as a plan without the option
    assert P.plan_requests(sentiment, 18, seed=3, options=dataclasses.replace(REVIEW, per_draw=1)) == \
        P.plan_requests(sentiment, 18, seed=3, options=REVIEW)


def test_run_requests_writes_several_samples_line_by_line_and_accounts_for_each(sentiment):
    reqs = [P.build_request(sentiment, "completion", "negative", random.Random(0), n=3, options=REVIEW)]
    lines = iter([" dull and long .", " a waste of a fine cast .", ""])
    t = FakeTeacher(lambda p: next(lines))
    [reply] = P.run_requests(t, reqs, GenerationSettings())
    assert reply.text == " dull and long .\nReview: a waste of a fine cast .\nReview:"
    assert t.calls[1][0][0] == reqs[0].prompt + " dull and long .\nReview:"  # the prompt continued
    items = P.parse_request(sentiment, reqs[0], reply.text)
    assert reasons(items) == [None, None, "empty"]  # the third line came back empty: rejected, not lost
    assert [it.inputs["text"] for it in items[:2]] == ["dull and long .", "a waste of a fine cast ."]
    reply = " a grim and joyless slog .\nwhat was that\nReview: the plot goes nowhere at all ."
    assert reasons(P.parse_reply(sentiment, reply, "negative", options=REVIEW, expected=3)) == [
        None, "unparseable", None]
    assert reasons(P.parse_reply(sentiment, " a grim and joyless slog .", "negative", options=REVIEW,
                                 expected=3)) == [None, "empty", "empty"]


def test_a_teacher_that_keeps_its_prefix_gets_each_several_line_request_back_to_back(sentiment):
    """llama.cpp keeps one sequence's cache: the lines of one request go in consecutive calls of one prompt each
    (so only the new line is evaluated), with a seed of their own; one-line requests still go in one batch."""
    reqs = [P.build_request(sentiment, "completion", label, random.Random(k), n=n, options=REVIEW)
            for k, (label, n) in enumerate([("negative", 2), ("positive", 1), ("positive", 2), ("negative", 1)])]
    t = FakeTeacher(lambda p: " ok ." if p.endswith("Review:") else "")
    t.keeps_prefix = True
    out = P.run_requests(t, reqs, GenerationSettings(seed=5))
    assert [c.text.count("\nReview:") for c in out] == [1, 0, 1, 0]
    multi = [(prompts_, s) for prompts_, s in t.calls if len(prompts_) == 1 and "ok ." in prompts_[0]]
    assert len(multi) == 2 and len(t.calls) == 5  # 2 requests x 2 lines, then the two one-line requests at once
    assert t.calls[-1][0] == [reqs[1].prompt, reqs[3].prompt]
    firsts = [t.calls[k][0][0] for k in range(4) if not t.calls[k][0][0].endswith("ok .\nReview:")]
    assert all(t.calls[k + 1][0][0].startswith(t.calls[k][0][0]) for k in (0, 2)) and len(firsts) == 2
    assert len({s.seed for _, s in t.calls[:4]}) == 4


def test_parse_request_uses_the_titles_the_prompt_used(nli):
    opts = P.PromptOptions(field_titles={"premise": "Sentence", "hypothesis": "Claim"})
    req = P.build_request(nli, "completion", "entailment", random.Random(0), options=opts)
    assert req.prompt.endswith("\n\nSentence:") and req.next_titles == ("Claim",)
    items = P.parse_request(nli, req, " Two dogs play in the snow.\nClaim: Animals are outside.")
    assert reasons(items) == [None] and items[0].inputs == {"premise": "Two dogs play in the snow.", "hypothesis": "Animals are outside."}


def test_run_requests_stops_a_request_whose_first_line_is_empty(math):
    reqs = P.plan_requests(math, 1)
    t = FakeTeacher(lambda p: "")
    assert P.run_requests(t, reqs, GenerationSettings())[0].text == "" and len(t.calls) == 1


# -- parsing: every rejection reason -----------------------------------------------------------------------

def test_completion_reply_keeps_the_first_line(sentiment):
    items = P.parse_reply(sentiment, ' a warm , funny film .\nReview: more', "positive")
    assert reasons(items) == [None]
    assert items[0].inputs == {"text": "a warm , funny film ."} and items[0].output == "positive"
    # a repeated title and wrapping quotes are not part of the text
    assert P.parse_reply(sentiment, ' Text: "a warm , funny film ."', "positive")[0].inputs["text"] == "a warm , funny film ."


def test_empty(sentiment, nli):
    assert reasons(P.parse_reply(sentiment, "", "negative")) == ["empty"]
    assert reasons(P.parse_reply(sentiment, "   \n  ", "negative")) == ["empty"]
    assert reasons(P.parse_reply(nli, " Ships sail.\nHypothesis:  ", "entailment")) == ["empty"]


def test_too_short_and_too_long(sentiment):
    assert reasons(P.parse_reply(sentiment, " meh", "negative")) == ["too_short"]
    limits = P.ParseLimits.for_task(sentiment)
    long = " " + "very " * (limits.max_chars // 5 + 1) + "bad"
    items = P.parse_reply(sentiment, long, "negative")
    assert reasons(items) == ["too_long"] and items[0].inputs["text"].startswith("very")


def test_unparseable(nli, math, sentiment):
    assert reasons(P.parse_reply(nli, " A man walks a dog in the park.", "entailment")) == ["unparseable"]
    assert reasons(P.parse_reply(nli, " A man walks.\nLabel: entailment", "entailment")) == ["unparseable"]
    assert reasons(P.parse_reply(math, " Ann has 3 pens. How many?\nAnswer: lots of them")) == ["unparseable"]
    assert reasons(P.parse_reply(sentiment, "Sure! I can help with that.", "negative", style="chat")) == ["unparseable"]
    assert reasons(P.parse_reply(sentiment, '{"text": "broken', "negative", style="chat")) == ["unparseable"]
    assert reasons(P.parse_reply(nli, '{"premise": "only one field here"}', "entailment", style="chat")) == ["unparseable"]


def test_unknown_label(sentiment):
    reply = '{"text": "it was fine i guess , nothing special", "label": "neutral"}'
    items = P.parse_reply(sentiment, reply, "negative", style="chat")
    assert reasons(items) == ["unknown_label"] and items[0].output == "neutral"
    # a known label stated in any case is taken at its word, in canonical spelling
    ok = P.parse_reply(sentiment, '{"text": "a bright and lovely film", "label": "POSITIVE"}', "negative", style="chat")
    assert reasons(ok) == [None] and ok[0].output == "positive"
    with pytest.raises(ValueError):
        P.parse_reply(sentiment, " anything at all here", "neutral")


def test_seed_copy_and_duplicate_on_normalised_text(sentiment):
    seen = P.SeenTexts.from_examples(sentiment.seeds)
    assert reasons(P.parse_reply(sentiment, "  RUN  for your   lives !", "negative", seen=seen)) == ["seed_copy"]
    assert reasons(P.parse_reply(sentiment, " a tedious , joyless slog", "negative", seen=seen)) == [None]
    assert reasons(P.parse_reply(sentiment, "A Tedious ,  joyless slog ", "negative", seen=seen)) == ["duplicate"]
    assert len(seen) == 1
    # kept samples from earlier rounds count as seen
    seen2 = P.SeenTexts.from_examples(sentiment.seeds, [Example({"text": "a tedious , joyless slog"}, "negative")])
    assert reasons(P.parse_reply(sentiment, " a tedious , joyless slog", "negative", seen=seen2)) == ["duplicate"]


def test_rejections_carry_the_parsed_sample_and_a_detail(sentiment):
    item = P.parse_reply(sentiment, " run for your lives !", "negative")[0]
    assert isinstance(item, P.Rejection) and item.inputs == {"text": "run for your lives !"} and item.detail
    with pytest.raises(ValueError):
        P.Rejection("nonsense", "x")


def test_chat_reply_forms(sentiment, nli):
    fenced = '```json\n{"text": "a gorgeous , big-hearted film"}\n{"text": "A gorgeous ,  big-hearted film"}\n```'
    assert reasons(P.parse_reply(sentiment, fenced, "positive", style="chat")) == [None, "duplicate"]
    numbered = "Here are 3 examples:\n1. a quietly moving drama\n2) funny and smart throughout\n- tender , wise and true"
    items = P.parse_reply(sentiment, numbered, "positive", style="chat")
    assert [it.inputs["text"] for it in items] == ["a quietly moving drama", "funny and smart throughout", "tender , wise and true"]
    array = '[{"premise": "The cat sat on the warm mat.", "hypothesis": "A cat sat."}]'
    items = P.parse_reply(nli, array, "entailment", style="chat")
    assert reasons(items) == [None] and items[0].inputs["hypothesis"] == "A cat sat." and items[0].output == "entailment"
    # a multi-field task gets no free-text fallback
    assert reasons(P.parse_reply(nli, "1. The cat sat.\n2. A cat sat.", "entailment", style="chat")) == ["unparseable"]


def test_seq2seq_outputs(math):
    items = P.parse_reply(math, " Ann has 5 pens and buys 7 more. How many now?\nAnswer: $ 1,200 (she had)")
    assert reasons(items) == [None] and items[0].output == "1200"
    text = TaskSpec("t", "seq2seq", "Translate.", [], ["source"], "target",
                    [Example({"source": f"hello there {i}"}, f"bonjour {i}") for i in range(3)])
    assert P.parse_reply(text, " good morning to you\nTarget: bonjour a vous")[0].output == "bonjour a vous"
    js = P.parse_reply(math, '{"question": "Tom has 3 cats and 2 dogs. How many pets?", "answer": 5}', style="chat")
    assert reasons(js) == [None] and js[0].output == "5"


def test_answers_match():
    assert P.answers_match("42", "42.0") and P.answers_match(" 1,000 ", "1000") and P.answers_match("Paris.", "paris")
    assert not P.answers_match("42", "43") and not P.answers_match("", "0")


# -- the real teacher's replies ----------------------------------------------------------------------------

def load_fixture():
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    tasks = {r["name"]: TaskSpec.from_dict(r["spec"]) for r in rows if r["record"] == "task"}
    return tasks, [r for r in rows if r["record"] == "reply"]


def replay_options(options: dict) -> dict:
    """The options a fixture reply was recorded with, as far as PromptOptions has them (the recorded prompt
    shows the rest of its wording, which parsing does not read)."""
    return {k: v for k, v in options.items() if k in {f.name for f in dataclasses.fields(P.PromptOptions)}}


def test_fixture_corpus_covers_the_prompt_kinds():
    tasks, replies = load_fixture()
    assert 20 <= len(replies) <= 60
    assert {r["kind"] for r in replies} == {"classification", "probe", "seq2seq"}
    assert {r["style"] for r in replies} == {"completion", "chat"}
    assert {"sst2", "trec", "svamp"} <= set(tasks)


def test_every_real_reply_parses_into_samples_or_named_rejections():
    tasks, replies = load_fixture()
    seen = {name: P.SeenTexts.from_examples(t.seeds) for name, t in tasks.items()}
    kept: Counter = Counter()
    why: Counter = Counter()
    for r in replies:
        task = tasks[r["task"]]
        items = P.parse_reply(task, r["reply"], r["label"], style=r["style"], seen=seen[r["task"]],
                              options=P.PromptOptions(**replay_options(r["options"])))
        assert items, r
        for it in items:
            if isinstance(it, P.ParsedSample):
                kept[(r["task"], r["style"])] += 1
                assert all(it.inputs[f].strip() for f in task.input_fields)
                assert it.output in task.labels if task.kind == "classification" else it.output
                assert "\n" not in "".join(it.inputs.values())
            else:
                assert it.reason in P.REJECT_REASONS and it.detail
                why[it.reason] += 1
    # the completion recipe gives a 135M teacher usable samples; the acceptance rate is not zero anywhere
    for name in ("sst2", "trec", "svamp"):
        assert kept[(name, "completion")] > 0, (kept, why)
    total = sum(kept.values())
    assert total >= len(replies) // 2, (kept, why)


def test_label_shares_split_the_requests_by_largest_remainder():
    import random
    from collections import Counter

    from gold.examples import example_spec
    from gold.prompts import _apportion, plan_requests

    task = example_spec("sst2")
    even = Counter(r.label for r in plan_requests(task, 10, rng=random.Random(0)))
    assert sorted(even.values()) == [5, 5]
    steered = Counter(r.label for r in plan_requests(task, 10, rng=random.Random(0),
                                                     label_shares={task.labels[0]: 0.8, task.labels[1]: 0.2}))
    assert steered == {task.labels[0]: 8, task.labels[1]: 2}
    assert _apportion(7, [1, 1, 1], random.Random(1)) in ([3, 2, 2], [2, 3, 2], [2, 2, 3])
    assert _apportion(5, [0, 0], random.Random(0)) in ([3, 2], [2, 3])  # no weight at all: even
    assert sum(_apportion(64, [0.11, 0.37, 0.52], random.Random(2))) == 64

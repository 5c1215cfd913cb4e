"""Teacher prompts built from a task's seeds and feedback, and strict parsing of the replies into samples.

Two prompt forms, because the teachers differ (docs/architecture.md):
- completion form, for small local models: a same-label list of examples that the model simply continues:
  the task's instruction, "Here are some examples labeled "{label}"." and that label's seeds (shuffled) as
  "Title: …" lines, ending in "Title:"; the reply's first line is one new sample. The line titles come from
  the input field names. A multi-field input (premise/hypothesis) or a seq2seq pair (question/answer) is a
  block of "Title: value" lines; the model continues after the first title and the block ends at a blank line
  or at the next block's first title.
- chat form, for API models: a message asking for N examples as JSON lines.
Classification always asks per label, so classes stay balanced. Probe prompts push toward the tails (other
authors, styles, perspectives, subjects) — tempered in completion form, because a 135M teacher told "a
different domain" wrote about cats and breakfast instead of the task.

Parsing is strict and every failure is named, so the store can show why a reply was dropped:
unparseable, empty, too_short, too_long, unknown_label, duplicate, seed_copy. Duplicates and seed copies are
compared on normalised text (`gold.specs.normalize_text`), the same identity `Example.key()` uses.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from gold.specs import MAX_SEED_CHARS, Example, TaskSpec, normalize_text
from gold.teachers.base import Completion, GenerationSettings, Prompt

REJECT_REASONS = ("unparseable", "empty", "too_short", "too_long", "unknown_label", "duplicate", "seed_copy")

# Tail directions for probes. Completion form: mild phrases a small model can follow and stay on-task.
PROBE_DIRECTIONS = (
    "written in an unusual style",
    "written by a different kind of person",
    "written from an unusual point of view",
    "about a less common subject",
)
# Chat form: API models can take the paper's stronger wording, with the on-task guard spelled out.
PROBE_DIRECTIONS_CHAT = (
    "a different domain or subject area than the examples",
    "a different perspective or point of view",
    "a different kind of author (age, background, expertise)",
    "a different style, register or length",
)

_LEADING_NUMBER = re.compile(r"\$?\s?([-+]?\d[\d,]*(?:\.\d+)?)")
_LIST_MARKER = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*•])\s+")
_FENCE = re.compile(r"^\s*```")


# -- options and requests ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PromptOptions:
    """How prompts read. Defaults work for any task.

    Attributes:
        field_titles: the line title per input field (and for the output name), e.g. {"text": "Review"};
            default: the field name, capitalised ("premise" -> "Premise"). Parsing a reply reads the titles its
            request was written with (`parse_request`).
        max_seeds: seed examples per prompt at most (per label for classification).
        per_reply: chat form: examples asked for in one reply.
        per_prompt: completion form, one-field tasks: samples written as consecutive lines of one prompt (each
            line after the first continues the prompt; `run_requests`).
        per_draw: requests that share one draw of examples (the same seeds and feedback in the same order), kept
            next to each other. Each request is still sampled on its own, and every request's prompt is drawn as
            before, so what one sample sees is unchanged; a teacher that keeps the key/value cache of its last
            prompt (llama.cpp; a server with prefix caching) reads the shared prompt once for the group.
    """

    field_titles: Mapping[str, str] = field(default_factory=dict)
    max_seeds: int = 8
    per_reply: int = 5
    per_prompt: int = 1
    per_draw: int = 1


@dataclass
class TeacherRequest:
    """One prompt and what its reply should hold.

    `length_factor` says how many "samples' worth" of tokens the reply needs (1 for one line; a question and
    its answer need 2; a chat reply of 5 needs ~6), so `settings_for` can scale the user's max_new_tokens.
    """

    prompt: Prompt
    kind: str  # the task kind: "classification" or "seq2seq"
    style: str  # "completion" or "chat"
    label: str | None  # the label asked for (classification), else None
    probe: bool = False
    n_expected: int = 1
    stop: tuple[str, ...] = ("\n",)
    length_factor: float = 1.0
    direction: str | None = None  # the probe direction used, for the record
    feedback_used: int = 0
    # completion form, several fields: the titles of the lines after the first and their token factors; the
    # lines are generated one at a time (see `run_requests`)
    next_titles: tuple[str, ...] = ()
    field_factors: tuple[float, ...] = (1.0,)
    titles: tuple[str, ...] = ()  # every line title of the record, so parsing matches the prompt's wording


def field_title(task: TaskSpec, name: str, options: PromptOptions | None = None) -> str:
    options = options or PromptOptions()
    if name in options.field_titles and options.field_titles[name].strip():
        return options.field_titles[name].strip()
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def record_fields(task: TaskSpec, label: str | None) -> list[str]:
    """The lines of one example block: the input fields, plus the output for seq2seq (or for classification
    when no label is fixed by the prompt)."""
    fields = list(task.input_fields)
    if task.kind == "seq2seq" or label is None:
        fields.append(task.output_name)
    return fields


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _values(task: TaskSpec, ex: Example, fields: list[str]) -> list[str]:
    return [one_line(ex.output if f == task.output_name and f not in ex.inputs else ex.inputs.get(f, "")) for f in fields]


# -- completion form -----------------------------------------------------------------------------------------

def completion_header(task: TaskSpec, label: str | None, direction: str | None = None) -> str:
    """The first paragraph of a completion prompt: the instruction, then "Here are some examples labeled
    "negative"." (or "Here are some examples."). A probe direction is appended as a short clause.
    """
    tail = f", {direction}" if direction else ""
    if task.kind == "classification" and label is not None:
        return f"{task.instruction}\n\nHere are some examples labeled \"{label}\"{tail}.\n\n"
    return f"{task.instruction}\n\nHere are some examples{tail}.\n\n"


def completion_prompt(
    task: TaskSpec, label: str | None, demos: Sequence[Example], options: PromptOptions | None = None,
    direction: str | None = None,
) -> tuple[str, tuple[str, ...]]:
    """A completion prompt and its stop strings.

    One field: "Title: value" lines, one per example, ending "Title:"; stop at the newline.
    Several fields: blocks of "Title: value" lines separated by a blank line, ending with the first title;
    the fields are then written one line at a time (`run_requests`), each stopped at its newline: a 135M
    model asked for a whole question+answer block rambles past its budget before reaching "Answer:".
    """
    options = options or PromptOptions()
    fields = record_fields(task, label)
    titles = [field_title(task, f, options) for f in fields]
    parts = [completion_header(task, label, direction)]
    if len(fields) == 1:
        parts += [f"{titles[0]}: {_values(task, ex, fields)[0]}\n" for ex in demos]
        return "".join(parts) + f"{titles[0]}:", ("\n",)
    for ex in demos:
        parts.append("".join(f"{t}: {v}\n" for t, v in zip(titles, _values(task, ex, fields))) + "\n")
    return "".join(parts) + f"{titles[0]}:", ("\n",)


# -- chat form -----------------------------------------------------------------------------------------------

CHAT_SYSTEM = (
    "You write training data for a small machine-learning model. Follow the requested format exactly and "
    "write nothing else."
)


def chat_prompt(
    task: TaskSpec, label: str | None, demos: Sequence[Example], n: int, options: PromptOptions | None = None,
    direction: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking for `n` new examples as JSON lines with the record's keys."""
    options = options or PromptOptions()
    fields = record_fields(task, label)
    keys = ", ".join(f'"{f}"' for f in fields)

    def as_json(ex: Example) -> str:
        return json.dumps(dict(zip(fields, _values(task, ex, fields))), ensure_ascii=False)

    lines = [f"Task: {task.instruction}"]
    if task.kind == "classification":
        lines.append("Labels: " + ", ".join(task.labels))
    if label is not None:
        lines += ["", f'Examples whose {task.output_name} is "{label}":']
    else:
        lines += ["", "Examples:"]
    lines += [as_json(ex) for ex in demos]
    noun = "new example" if n == 1 else "new examples"
    what = f'{noun} whose {task.output_name} is clearly "{label}"' if label is not None else noun
    lines += ["", f"Write {n} {what}. Vary wording, length and content; do not copy the examples."]
    if direction:
        lines.append(
            f"Make them unlike the examples — {direction} — while each one stays a realistic input for this task"
            + (f' whose correct {task.output_name} is "{label}".' if label is not None else " with a correct output.")
        )
    shape = "1 line: one JSON object" if n == 1 else f"{n} lines, each one JSON object"
    lines.append(f"Reply with exactly {shape} with the key{'s' if len(fields) > 1 else ''} {keys}, and nothing else.")
    return [{"role": "system", "content": CHAT_SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


# -- planning a batch of requests ----------------------------------------------------------------------------

def _feedback_for(feedback: Mapping[str, Sequence[Example]] | Sequence[Example] | None, label: str | None) -> list[Example]:
    if not feedback:
        return []
    if isinstance(feedback, Mapping):
        if label is None:
            return [ex for rows in feedback.values() for ex in rows]
        return list(feedback.get(label, []))
    return [ex for ex in feedback if label is None or ex.output == label]


def build_request(
    task: TaskSpec, style: str, label: str | None, rng: random.Random, *, n: int = 1,
    feedback: Sequence[Example] = (), probe: bool = False, direction: str | None = None,
    options: PromptOptions | None = None,
) -> TeacherRequest:
    """One request: that label's seeds (shuffled by `rng`, at most `max_seeds`) plus the given feedback
    examples, mixed in random order, in the requested form."""
    options = options or PromptOptions()
    if style not in ("completion", "chat"):
        raise ValueError(f"Unknown prompt style '{style}': use 'completion' or 'chat'.")
    if task.kind == "classification" and label not in task.labels:
        raise ValueError(f"'{label}' is not one of the task's labels ({', '.join(task.labels)}).")
    demos = draw_demos(task, label, rng, feedback, options)
    return request_for(task, style, label, demos, n=n, feedback_count=len(feedback), probe=probe,
                       direction=direction, options=options)


def draw_demos(task: TaskSpec, label: str | None, rng: random.Random, feedback: Sequence[Example],
               options: PromptOptions) -> list[Example]:
    """A prompt's examples: that label's seeds (shuffled, at most `max_seeds`) and the feedback, in random order."""
    pool = [ex for ex in task.seeds if task.kind != "classification" or ex.output == label]
    rng.shuffle(pool)
    demos = pool[: options.max_seeds] + list(feedback)
    rng.shuffle(demos)
    return demos


def request_for(
    task: TaskSpec, style: str, label: str | None, demos: Sequence[Example], *, n: int, feedback_count: int,
    probe: bool, direction: str | None, options: PromptOptions,
) -> TeacherRequest:
    """The request asking for `n` samples after these examples, in the requested form."""
    fields = record_fields(task, label)
    factors = tuple(field_factor(task, f) for f in fields) if len(fields) > 1 else (1.0,)
    if style == "completion":
        prompt, stop = completion_prompt(task, label, demos, options, direction)
        titles = tuple(field_title(task, f, options) for f in fields)
        if len(fields) == 1 and n > 1:  # n samples as n consecutive lines, each after the first titled again
            return TeacherRequest(prompt, task.kind, style, label, probe, n, stop, factors[0], direction,
                                  feedback_count, titles * (n - 1), factors * n, titles)
        return TeacherRequest(prompt, task.kind, style, label, probe, 1, stop, factors[0], direction, feedback_count,
                              titles[1:], factors, titles)
    prompt = chat_prompt(task, label, demos, n, options, direction)
    factor = n * sum(factors) * 1.2 + 0.5
    return TeacherRequest(prompt, task.kind, style, label, probe, n, (), factor, direction, feedback_count, (), factors)


def field_factor(task: TaskSpec, name: str, base_tokens: int = 40) -> float:
    """Token budget of one field relative to the per-sample max_new_tokens (default 40), sized from the
    seeds (~4 characters a token, 1.3x headroom, between 0.2x and 3x): an SVAMP question needs ~60 tokens,
    its answer ~3, and a short budget for the answer keeps a small model from rambling."""
    if name == task.output_name and name not in task.input_fields:
        lengths = [len(ex.output) for ex in task.seeds]
    else:
        lengths = [len(str(ex.inputs.get(name, ""))) for ex in task.seeds]
    if not lengths:
        return 1.0
    tokens = 1.3 * max(lengths) / 4 + 4
    return round(min(3.0, max(0.2, tokens / base_tokens)), 2)


def plan_requests(
    task: TaskSpec,
    count: int,
    *,
    style: str = "completion",
    rng: random.Random | None = None,
    seed: int = 0,
    feedback: Mapping[str, Sequence[Example]] | Sequence[Example] | None = None,
    feedback_count: int = 3,
    feedback_rate: float = 0.5,
    probe: bool = False,
    options: PromptOptions | None = None,
    label_shares: Mapping[str, float] | None = None,
) -> list[TeacherRequest]:
    """Requests for `count` samples in all.

    Classification: labels get equal shares (the remainder goes to labels drawn at random), so classes stay
    balanced — or the given `label_shares` (energy steering), rounded by largest remainder. Completion form: one
    request per sample, or per `per_prompt` samples of a one-field task; chat form: requests of `per_reply` samples.
    A request gets up to `feedback_count` feedback examples of its label with probability `feedback_rate`
    (the official code: 3 examples, every second batch). Probes rotate through the tail directions.
    `options.per_draw` requests of a label share each draw of examples and stay together when the labels are
    interleaved.
    """
    options = options or PromptOptions()
    rng = rng or random.Random(seed)
    if count <= 0:
        return []
    if task.kind == "classification":
        labels = list(task.labels)
        if label_shares:
            per_label = list(zip(labels, _apportion(count, [max(0.0, label_shares.get(x, 0.0)) for x in labels], rng)))
        else:
            share, extra = divmod(count, len(labels))
            bonus = set(rng.sample(labels, extra))
            per_label = [(label, share + (label in bonus)) for label in labels]
    else:
        per_label = [(None, count)]
    directions = PROBE_DIRECTIONS if style == "completion" else PROBE_DIRECTIONS_CHAT
    groups: list[list[TeacherRequest]] = []
    for label, k in per_label:
        fb_pool = _feedback_for(feedback, label)
        if style == "completion":
            one_field = len(record_fields(task, label)) == 1
            sizes = _chunks(k, max(1, options.per_prompt)) if one_field else [1] * k
        else:
            sizes = _chunks(k, max(1, options.per_reply))
        per_draw = max(1, options.per_draw)
        for first in range(0, len(sizes), per_draw):
            fb: list[Example] = []
            if fb_pool and feedback_count > 0 and rng.random() < feedback_rate:
                fb = rng.sample(fb_pool, min(feedback_count, len(fb_pool)))
            direction = directions[len(groups) % len(directions)] if probe else None
            demos = draw_demos(task, label, rng, fb, options)
            groups.append([request_for(task, style, label, demos, n=n, feedback_count=len(fb), probe=probe,
                                       direction=direction, options=options)
                           for n in sizes[first : first + per_draw]])
    rng.shuffle(groups)  # interleave labels so a batch cut short (budget, cancel) is still balanced
    return [r for group in groups for r in group]


def _apportion(count: int, weights: list[float], rng: random.Random) -> list[int]:
    """`count` split in proportion to `weights` (largest remainder; ties at random), summing to `count`."""
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * len(weights), float(len(weights))
    exact = [count * w / total for w in weights]
    out = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (exact[i] - out[i], rng.random()), reverse=True)
    for i in order[: count - sum(out)]:
        out[i] += 1
    return out


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - i) for i in range(0, total, size)]


def settings_for(requests: Sequence[TeacherRequest], base: GenerationSettings) -> GenerationSettings:
    """The generation settings for a batch of single-step requests (one-field completion, or chat): their
    stop strings, and max_new_tokens scaled from the user's per-sample value by the largest `length_factor`
    (a chat reply of 5 examples needs ~6 samples' worth). `run_requests` uses it and handles every kind."""
    if not requests:
        return base
    if any(r.next_titles for r in requests):
        # one call would return only the first line of each block, and every reply would parse as unparseable
        raise ValueError("These completion requests are written one line at a time: send them with run_requests().")
    stops = {r.stop for r in requests}
    if len(stops) > 1:
        raise ValueError("These requests need different stop strings; generate them in separate batches.")
    factor = max(r.length_factor for r in requests)
    return base.with_(stop=stops.pop(), max_new_tokens=max(1, math.ceil(base.max_new_tokens * factor)))


def run_requests(
    teacher: Any, requests: Sequence[TeacherRequest], base: GenerationSettings, progress: Any = None
) -> list[Completion]:
    """Send requests to a teacher and return one reply per request, in order, ready for `parse_request`.

    Chat requests go in one call with `settings_for`. Completion requests are written one line (field, or
    sample of a several-sample request) at a time: every request's first line in one batched call, then each
    request's prompt + that line + "\nTitle:" for the next line, and so on; the returned text is the assembled
    block ("value\nTitle: value"), and its token counts are summed over the steps. A request whose line came
    back empty stops there (its reply then parses as empty or unparseable).
    """
    results: list[Completion | None] = [None] * len(requests)
    chat = [i for i, r in enumerate(requests) if r.style == "chat"]
    if chat:
        got = teacher.generate([requests[i].prompt for i in chat], settings_for([requests[i] for i in chat], base), progress)
        for i, c in zip(chat, got):
            results[i] = c
    lines = [i for i, r in enumerate(requests) if r.style != "chat"]
    apart: list[int] = []
    if getattr(teacher, "keeps_prefix", False):
        # A teacher that keeps the key/value cache of its last sequence (llama.cpp) writes each several-line
        # request's lines back to back, so every line after the first evaluates only the line before it and the
        # next title, not the prompt again; requests sorted by prompt, so consecutive ones share a prefix too.
        # Seeds differ per request and per line (one prompt per call, always at index 0).
        apart = sorted((i for i in lines if requests[i].next_titles), key=lambda i: str(requests[i].prompt))
        for k, i in enumerate(apart, 1):
            results[i] = _write_lines(teacher, requests, [i], base.with_(seed=base.seed + 1009 * i), None, True)[i]
            if progress:
                progress(k / len(lines), f"teacher: {k}/{len(lines)} prompts")
    written_apart = set(apart)
    for i, c in _write_lines(teacher, requests, [i for i in lines if i not in written_apart], base, progress,
                             False).items():
        results[i] = c
    return [c for c in results if c is not None]


def _write_lines(teacher: Any, requests: Sequence[TeacherRequest], todo: list[int], base: GenerationSettings,
                 progress: Any, salt_lines: bool) -> dict[int, Completion]:
    """The completion requests `todo`, written line by line: every request's first line in one call, then
    each one's next line after its prompt + lines so far + "\nTitle:", until its lines are done or one
    comes back empty. `salt_lines`: a different sampling seed per line (one request per call)."""
    text = {i: "" for i in todo}
    acc = {i: Completion("", 0, 0, "stop") for i in todo}
    step = 0
    while todo:
        prompts = [str(requests[i].prompt) + _continuation(requests[i], text[i], step) for i in todo]
        by_factor: dict[float, list[int]] = {}
        for j, i in enumerate(todo):
            factors = requests[i].field_factors
            by_factor.setdefault(factors[min(step, len(factors) - 1)], []).append(j)
        replies: dict[int, Completion] = {}
        for factor, js in sorted(by_factor.items()):
            s = base.with_(stop=("\n",), max_new_tokens=max(1, math.ceil(base.max_new_tokens * factor)),
                           seed=base.seed + (7919 * step if salt_lines else 0))
            for j, c in zip(js, teacher.generate([prompts[j] for j in js], s, progress if step == 0 else None)):
                replies[todo[j]] = c
        nxt = []
        for i in todo:
            c, a = replies[i], acc[i]
            line = c.text.split("\n")[0]
            text[i] += line if step == 0 else f"\n{requests[i].next_titles[step - 1]}:{line}"
            acc[i] = Completion(text[i], a.prompt_tokens + c.prompt_tokens, a.completion_tokens + c.completion_tokens,
                                c.finish_reason, c.error)
            if line.strip() and step < len(requests[i].next_titles) and c.finish_reason != "error":
                nxt.append(i)
        todo, step = nxt, step + 1
    return acc


def _continuation(request: TeacherRequest, text: str, step: int) -> str:
    """What follows the prompt at a step: the lines written so far and the title of the next line."""
    if step == 0:
        return ""
    return text + f"\n{request.next_titles[step - 1]}:"


# -- parsing -------------------------------------------------------------------------------------------------

@dataclass
class ParsedSample:
    """A reply fragment that became a sample."""

    inputs: dict[str, str]
    output: str
    raw: str = ""

    @property
    def reject_reason(self) -> None:
        return None

    def example(self) -> Example:
        return Example(dict(self.inputs), self.output)


@dataclass
class Rejection:
    """A reply (or a fragment of one) that did not become a sample: `reason` is one of REJECT_REASONS and
    `detail` a sentence for people. `inputs`/`output` are set when the text parsed but failed a check."""

    reason: str
    raw: str
    detail: str = ""
    inputs: dict[str, str] | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        if self.reason not in REJECT_REASONS:
            raise ValueError(f"Unknown rejection reason {self.reason!r}")

    @property
    def reject_reason(self) -> str:
        return self.reason


def text_key(inputs: Mapping[str, str]) -> tuple:
    """Identity of a sample's inputs: the same normalisation as `Example.key()`."""
    return tuple(sorted((k, normalize_text(v)) for k, v in inputs.items()))


class SeenTexts:
    """The identities a new sample must not repeat: the seeds (-> seed_copy) and samples kept so far
    (-> duplicate). `parse_reply` adds every sample it keeps."""

    def __init__(self, seeds: Iterable[Mapping[str, str]] = (), seen: Iterable[Mapping[str, str]] = ()):
        self.seeds = {text_key(x) for x in seeds}
        self.seen = {text_key(x) for x in seen}

    @classmethod
    def from_examples(cls, seeds: Iterable[Example], seen: Iterable[Example] = ()) -> "SeenTexts":
        return cls([ex.inputs for ex in seeds], [ex.inputs for ex in seen])

    def add(self, inputs: Mapping[str, str]) -> None:
        self.seen.add(text_key(inputs))

    def __len__(self) -> int:
        return len(self.seen)


@dataclass(frozen=True)
class ParseLimits:
    """Length checks per input field (characters and words) and for a seq2seq output."""

    min_chars: int = 8
    min_words: int = 2
    max_chars: int = 1000
    max_output_chars: int = 200
    numeric_output: bool = False  # seq2seq: the output must start with a number, and is cut to it

    @classmethod
    def for_task(cls, task: TaskSpec) -> "ParseLimits":
        """Limits that fit the seeds: never stricter than the shortest seed, and up to 3× the longest one."""
        values = [str(v) for ex in task.seeds for v in ex.inputs.values() if str(v).strip()]
        if not values:
            return cls()
        shortest = min(values, key=len)
        outs = [len(ex.output) for ex in task.seeds] if task.kind == "seq2seq" else [0]
        return cls(
            min_chars=max(1, min(8, len(shortest.strip()))),
            min_words=max(1, min(2, len(shortest.split()))),
            max_chars=min(MAX_SEED_CHARS, max(200, 3 * max(len(v) for v in values))),
            max_output_chars=min(MAX_SEED_CHARS, max(50, 3 * max(outs))),
            # every seed answer is a number (SVAMP): "801 (since there are" keeps "801", "No, Robby…" is dropped
            numeric_output=task.kind == "seq2seq" and all(_LEADING_NUMBER.fullmatch(ex.output.strip()) for ex in task.seeds),
        )


def _clean(value: object) -> str:
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" or text[:1] + text[-1:] in ("“”", "‘’"):
        text = text[1:-1].strip()
    return text


def _canonical_label(task: TaskSpec, value: str) -> str | None:
    for label in task.labels:
        if label.casefold() == value.strip().casefold():
            return label
    return None


def parse_reply(
    task: TaskSpec,
    reply: str,
    label: str | None = None,
    *,
    style: str = "completion",
    seen: SeenTexts | None = None,
    limits: ParseLimits | None = None,
    options: PromptOptions | None = None,
    expected: int = 1,
) -> list[ParsedSample | Rejection]:
    """Turn one teacher reply into samples and named rejections (at least one item per reply).

    `label` is the label the prompt asked for (classification); None means the reply must state it.
    Completion form: `reply` is the continuation after the prompt's last "Title:" — one sample, or with
    `expected` > 1 (a one-field task) that many, one per line, each line after the first "Title: value"; a
    sample the reply ended before is rejected as empty, so every sample asked for is accounted for.
    Chat form: JSON lines (or, for one-field tasks, numbered/bulleted lines) — several samples.
    `seen` is updated with every kept sample, so pass the same one across a round's replies.
    """
    if task.kind == "classification" and label is not None and label not in task.labels:
        raise ValueError(f"'{label}' is not one of the task's labels ({', '.join(task.labels)}).")
    if task.kind == "seq2seq":
        label = None
    seen = seen if seen is not None else SeenTexts.from_examples(task.seeds)
    limits = limits or ParseLimits.for_task(task)
    reply = reply or ""
    if not reply.strip():
        return [Rejection("empty", reply, "The teacher returned nothing.")] * max(1, expected)
    if style == "completion" and expected > 1 and len(record_fields(task, label)) == 1:
        records = _parse_lines(task, reply, label, options or PromptOptions(), expected)
    elif style == "completion":
        records = [_parse_block(task, reply, label, options or PromptOptions())]
    elif style == "chat":
        records = _parse_chat(task, reply, label)
    else:
        raise ValueError(f"Unknown prompt style '{style}': use 'completion' or 'chat'.")
    return [r if isinstance(r, Rejection) else _check(task, r, label, seen, limits) for r in records]


# A record before checks: (field -> value, raw text)
_Record = tuple[dict[str, str], str]


def _parse_block(task: TaskSpec, reply: str, label: str | None, options: PromptOptions) -> _Record | Rejection:
    """Completion form: the first line is the first field's value; each further field is a "Title: value"
    line, in order. Anything after the last field (a stop the server ignored) is dropped."""
    fields = record_fields(task, label)
    titles = [field_title(task, f, options) for f in fields]
    lines = reply.split("\n")
    first = lines[0].strip()
    # a model that repeats the title ("Review: Review: …") still gave one value
    again = re.match(rf"^{re.escape(titles[0])}\s*:\s*", first, re.IGNORECASE)
    if again:
        first = first[again.end():]
    values = {fields[0]: first}
    rest = lines[1:]
    for f, t in zip(fields[1:], titles[1:]):
        if not rest:
            return Rejection("unparseable", reply, f"The reply ended before its '{t}:' line.")
        m = re.match(rf"^\s*{re.escape(t)}\s*:\s*(.*)$", rest[0], re.IGNORECASE)
        if not m:
            return Rejection("unparseable", reply, f"Expected a line starting with '{t}:', got {rest[0][:60]!r}.")
        values[f] = m.group(1)
        rest = rest[1:]
    return values, reply


def _parse_lines(task: TaskSpec, reply: str, label: str | None, options: PromptOptions,
                 expected: int) -> list[_Record | Rejection]:
    """Completion form, several one-field samples in one reply: the first line is a value (as `_parse_block`
    reads it), each further line "Title: value"; lines past `expected` (a stop the server ignored) are dropped."""
    [field_name] = record_fields(task, label)
    title = field_title(task, field_name, options)
    lines = reply.split("\n")[:expected]
    out: list[_Record | Rejection] = [_parse_block(task, lines[0], label, options)]
    for line in lines[1:]:
        m = re.match(rf"^\s*{re.escape(title)}\s*:\s*(.*)$", line, re.IGNORECASE)
        out.append(({field_name: m.group(1)}, line) if m else
                   Rejection("unparseable", line, f"Expected a line starting with '{title}:', got {line[:60]!r}."))
    out += [Rejection("empty", "", f"The reply ended before its sample {k + 1} of {expected}.")
            for k in range(len(lines), expected)]
    return out


def _strip_fences(reply: str) -> list[str]:
    return [line for line in reply.split("\n") if not _FENCE.match(line)]


def _parse_chat(task: TaskSpec, reply: str, label: str | None) -> list[_Record | Rejection]:
    """Chat form: a JSON array, JSON lines, or (one-field tasks only) numbered or bulleted lines.

    Lines that are neither JSON nor list items (a preamble such as "Sure, here are 5:") are ignored; a line
    that starts like JSON but does not parse is a rejection.
    """
    fields = record_fields(task, label)
    body = "\n".join(_strip_fences(reply)).strip()
    try:
        whole = json.loads(body)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        whole = [whole]
    if isinstance(whole, list):
        return [_from_object(task, obj, fields, json.dumps(obj, ensure_ascii=False)) for obj in whole]

    out: list[_Record | Rejection] = []
    plain: list[str] = []
    saw_json = False
    for line in body.split("\n"):
        item = _LIST_MARKER.sub("", line).strip().rstrip(",")
        if not item:
            continue
        if item.startswith("{"):
            saw_json = True
            try:
                obj = json.loads(item)
            except json.JSONDecodeError:
                out.append(Rejection("unparseable", line, "A line starts like JSON but is not valid JSON."))
                continue
            out.append(_from_object(task, obj, fields, line))
        elif _LIST_MARKER.match(line):
            plain.append(line)
    if not saw_json and len(fields) == 1 and plain:
        for line in plain:
            out.append(({fields[0]: _LIST_MARKER.sub("", line).strip()}, line))
    if not out:
        need = "JSON lines" if len(fields) > 1 else "JSON lines or a numbered list"
        return [Rejection("unparseable", reply, f"No examples found in the reply: expected {need}.")]
    return out


def _from_object(task: TaskSpec, obj: object, fields: list[str], raw: str) -> _Record | Rejection:
    if not isinstance(obj, dict):
        return Rejection("unparseable", raw, "A JSON value is not an object with the requested keys.")
    lower = {str(k).strip().casefold(): v for k, v in obj.items()}
    values: dict[str, str] = {}
    for f in fields:
        v = obj.get(f, lower.get(f.casefold()))
        if v is None or isinstance(v, (dict, list)):
            return Rejection("unparseable", raw, f"The JSON object has no usable '{f}' value.")
        values[f] = str(v)
    # a reply may state a label even when the prompt fixed one: take it at its word, check it below
    if task.kind == "classification" and task.output_name not in values:
        stated = obj.get(task.output_name, lower.get(task.output_name.casefold(), lower.get("label")))
        if stated is not None and not isinstance(stated, (dict, list)):
            values[task.output_name] = str(stated)
    return values, raw


def _check(task: TaskSpec, record: _Record, label: str | None, seen: SeenTexts, limits: ParseLimits) -> ParsedSample | Rejection:
    values, raw = record
    values = {k: _clean(v) for k, v in values.items()}
    inputs = {f: values.get(f, "") for f in task.input_fields}
    if task.kind == "classification":
        output = values.get(task.output_name, label or "")
    else:
        output = values.get(task.output_name, "")

    def reject(reason: str, detail: str) -> Rejection:
        return Rejection(reason, raw, detail, inputs, output)

    blank = [f for f in task.input_fields if not inputs[f]]
    if blank or (task.kind == "seq2seq" and not output):
        return reject("empty", f"No text for {', '.join(repr(f) for f in blank or [task.output_name])}.")
    for f in task.input_fields:
        v = inputs[f]
        if len(v) < limits.min_chars or len(v.split()) < limits.min_words:
            return reject("too_short", f"'{f}' has {len(v)} characters / {len(v.split())} words; "
                                       f"at least {limits.min_chars} / {limits.min_words} are needed.")
        if len(v) > limits.max_chars:
            return reject("too_long", f"'{f}' has {len(v):,} characters; the limit is {limits.max_chars:,}.")
    if task.kind == "seq2seq" and limits.numeric_output:
        m = _LEADING_NUMBER.match(output)
        if not m:
            return reject("unparseable", f"The {task.output_name} should be a number, like the seeds'; got {output[:40]!r}.")
        output = m.group(1).replace(",", "")
    if task.kind == "seq2seq" and len(output) > limits.max_output_chars:
        return reject("too_long", f"The {task.output_name} has {len(output):,} characters; the limit is {limits.max_output_chars:,}.")
    if task.kind == "classification":
        canonical = _canonical_label(task, output)
        if canonical is None:
            return reject("unknown_label", f"'{output[:60]}' is not one of the labels ({', '.join(task.labels)}).")
        output = canonical
    key = text_key(inputs)
    if key in seen.seeds:
        return Rejection("seed_copy", raw, "This repeats a seed example.", inputs, output)
    if key in seen.seen:
        return Rejection("duplicate", raw, "This repeats a sample generated earlier.", inputs, output)
    seen.seen.add(key)
    return ParsedSample(inputs, output, raw)


def parse_request(task: TaskSpec, request: TeacherRequest, reply: str, seen: SeenTexts | None = None,
                  limits: ParseLimits | None = None, options: PromptOptions | None = None) -> list[ParsedSample | Rejection]:
    """`parse_reply` with the label, style and line titles taken from the request that produced the reply."""
    if options is None and request.titles:
        options = PromptOptions(field_titles=dict(zip(record_fields(task, request.label), request.titles)))
    expected = request.n_expected if request.style == "completion" else 1
    return parse_reply(task, reply, request.label, style=request.style, seen=seen, limits=limits, options=options,
                       expected=expected)


# -- seq2seq answers -----------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[-+]?(\d[\d,]*)?(\.\d+)?$")


def normalize_answer(text: str) -> str:
    """An answer for exact match: whitespace collapsed, case folded, a trailing full stop dropped, and a
    number written canonically ("1,000.0" -> "1000")."""
    t = normalize_text(text).rstrip(".").strip()
    if t and _NUMBER.match(t) and any(c.isdigit() for c in t):
        value = float(t.replace(",", ""))
        return str(int(value)) if value.is_integer() else repr(value)
    return t


def answers_match(predicted: str, expected: str) -> bool:
    """Exact match after `normalize_answer` (so "42", "42.0" and "42." agree)."""
    return normalize_answer(predicted) == normalize_answer(expected)

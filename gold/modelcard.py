"""The model card (README.md) of an exported student, rendered from `gold/templates/model_card.md`, and the
helpers a card is written with: which files of a student folder are the model, its parameter count, and where a
bundled example's data came from.

The layout lives in the template (string.Template, `$name` placeholders), the facts come from the store via
`gold.export.collect` and from the export's own gold_run.json, so the card and the JSON never disagree. This
module imports nothing from gold/export.py: the export calls it, never the other way round.
Every piece of user text (task name, instruction, labels, sample texts) is escaped for Markdown and HTML, or
put in a fenced block longer than any backtick run it contains, so it shows exactly as typed on any renderer.
Metrics are printed with 4 decimals, so they can be checked against the store.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from gold.models import hub_id, hub_license
from gold.records import ExportInfo
from gold.specs import GoldSettings, TaskSpec

TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"
MAX_VETOED_LISTED = 50
MAX_CELL_CHARS = 160
# Characters that mean something mid-line in CommonMark/GFM (or to a math or HTML renderer). md() output never
# starts a line in the template, so line-start markers (-, +, 1.) need no escape.
_MD_SPECIALS = set("\\`*_[]<>|&~$#")

MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "generation_config.json")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model", "chat_template.jinja",
    "chat_template.json",
)


# -- the student folder's files -----------------------------------------------------------------------------------

def model_files(src: Path) -> list[str]:
    """The files of a student folder that make the model: config, weights (sharded too), tokenizer."""
    names = [n for n in MODEL_FILES + TOKENIZER_FILES if (src / n).is_file()]
    names += sorted(p.name for p in src.glob("model-*-of-*.safetensors"))  # a sharded save
    return names


def safetensors_parameters(folder: Path) -> int | None:
    """Parameter count from the safetensors header(s), without loading a tensor."""
    total = 0
    files = [folder / "model.safetensors"] if (folder / "model.safetensors").is_file() else sorted(
        folder.glob("model-*-of-*.safetensors"))
    if not files:
        return None
    for path in files:
        try:
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
        except (OSError, ValueError, struct.error):
            return None
        for name, meta in header.items():
            if name != "__metadata__":
                total += math.prod(meta.get("shape") or [1])
    return total


# -- where a bundled example's data came from ---------------------------------------------------------------------

@dataclass(frozen=True)
class ExampleOrigin:
    """Where a bundled example task's seeds and evaluation rows come from (gold/example_data/SOURCES.md)."""

    key: str
    title: str
    hub_dataset: str  # the public copy's Hub id, for `datasets:` and model-index
    license: str  # a Hub licence id ("mit", "other")
    license_note: str  # the licence as the source states it
    citation: str
    commercial_use: bool = True


EXAMPLE_ORIGINS = {o.key: o for o in (
    ExampleOrigin("sst2", "Stanford Sentiment Treebank, binary (GLUE SST-2)", "stanfordnlp/sst2", "mit",
                  "MIT (the repositories the copies were taken from); cite the dataset paper",
                  "Socher et al., Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank, "
                  "EMNLP 2013"),
    ExampleOrigin("trec", "TREC question classification", "CogComp/trec", "mit",
                  "MIT (harvardnlp/sent-conv-torch); credit Li and Roth (2002)",
                  "Li and Roth, Learning Question Classifiers, COLING 2002"),
    ExampleOrigin("sms_spam", "SMS Spam Collection v.1", "ucirvine/sms_spam", "other",
                  "free use, copyright Almeida and Gómez Hidalgo, no warranty; cite the paper",
                  "Almeida, Gómez Hidalgo, Yamakami, Contributions to the Study of SMS Spam Filtering: New Collection "
                  "and Results, ACM DocEng 2011"),
    ExampleOrigin("agnews", "AG's News topic classification", "fancyzhx/ag_news", "other",
                  "research and other non-commercial use only (the dataset's own readme)",
                  "Zhang, Zhao, LeCun, Character-level Convolutional Networks for Text Classification, NeurIPS 2015",
                  commercial_use=False),
    ExampleOrigin("svamp", "SVAMP math word problems", "ChilleD/SVAMP", "mit", "MIT (arkilpatel/SVAMP)",
                  "Patel, Bhattamishra, Goyal, Are NLP Models really able to Solve Simple Math Word Problems?, "
                  "NAACL 2021"),
)}


def example_origin(task: TaskSpec) -> ExampleOrigin | None:
    """The bundled example a task was made from, recognised by its data (names can be changed): same kind,
    labels and input fields, and every seed one of the example's rows. None for a task of the user's own."""
    if not task.seeds:
        return None
    for key, origin in EXAMPLE_ORIGINS.items():
        rows = _example_rows(key)
        if rows is None:
            continue
        kind, labels, fields, known = rows
        if (task.kind, list(task.labels), list(task.input_fields)) != (kind, labels, fields):
            continue
        if all((tuple(sorted(ex.inputs.items())), ex.output) in known for ex in task.seeds):
            return origin
    return None


@functools.lru_cache(maxsize=None)
def _example_rows(key: str) -> tuple[str, list[str], list[str], frozenset] | None:
    from gold.examples import EXAMPLES

    if key not in EXAMPLES:
        return None
    spec = EXAMPLES[key].spec()
    known = frozenset((tuple(sorted(ex.inputs.items())), ex.output) for ex in spec.seeds + spec.eval_set)
    return spec.kind, list(spec.labels), list(spec.input_fields), known


# -- text -----------------------------------------------------------------------------------------------------------

def md(text: Any) -> str:
    """User text for a Markdown line or table cell: one line, every Markdown/HTML special escaped."""
    flat = " ".join(str(text).split())
    return "".join("\\" + c if c in _MD_SPECIALS else c for c in flat)


def plain_name(text: Any) -> str:
    """User text for a YAML metadata value (a name the Hub shows as is): one line, without the characters
    Markdown or HTML would act on, for renderers that show front matter as text. YAML quoting is yaml's job."""
    return " ".join("".join(" " if c in _MD_SPECIALS else c for c in str(text)).split()) or "task"


def fenced(text: str, lang: str = "text") -> str:
    """A fenced code block that `text` cannot close: the fence is longer than its longest backtick run."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def fmt_metric(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def _num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _cut(text: str, limit: int = MAX_CELL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_card(info: ExportInfo, provenance: dict[str, Any]) -> str:
    task, settings, rnd = info.task, info.settings, info.round
    classification = task.kind == "classification"
    folder_name = info.root_name
    metric_name = rnd.metrics.metric_name or ("accuracy" if classification else "exact_match")
    base_ref = info.notes.get("base") or settings.student.model
    hub = hub_id(base_ref)

    files = provenance.get("files")
    if files is None:  # a preview, before any file is written: the checkpoint's files are the same size or close
        files = {n: {"bytes": (info.checkpoint / n).stat().st_size} for n in model_files(info.checkpoint)}
    model_bytes = sum(v["bytes"] for k, v in files.items() if not k.startswith("data/"))
    params = safetensors_parameters(info.checkpoint)

    best = max((r for r in info.rounds if isinstance(r.metrics.metric, (int, float))),
               key=lambda r: (r.metrics.metric, r.n), default=None)
    reason = "best evaluation score" if best is not None and best.n == rnd.n else "chosen by hand"
    if best is None:
        reason = "last finished round" if rnd.n == max(r.n for r in info.rounds) else "chosen by hand"

    values = {
        "front_matter": front_matter(info, metric_name),
        "title": f"GOLD student for “{md(task.name)}” (run {info.run.id}, round {rnd.n})",
        "kind_phrase": "text classifier" if classification else "text-to-text generator",
        "mode": "GOLD" if info.run.mode == "gold" else "baseline (no feedback, no noise filter)",
        "usage": _usage(info, folder_name),
        "task_name": md(task.name),
        "kind": task.kind,
        "labels_title": "Labels" if classification else "Output",
        "labels": ", ".join(md(label) for label in task.labels) if classification else md(task.output_name),
        "input_format": md(provenance["task"]["input_format"]),
        "instruction": fenced(task.instruction),
        "base_model": md(provenance["base_model"]) + (f" (`{hub}`)" if hub else ""),
        "teacher": md(provenance["teacher"]),
        "labeler": md(provenance["labeler"]["name"]) + (
            f" (chosen on {provenance['labeler']['choice']['rows']} evaluation rows)"
            if provenance["labeler"].get("choice") else ""),
        "round": str(rnd.n),
        "rounds_planned": str(settings.rounds),
        "round_reason": reason + (f"; the weight average of the students of rounds "
                                  f"{', '.join(map(str, rnd.metrics.averaged_rounds))}"
                                  if rnd.metrics.averaged_rounds else ""),
        "parameters": f"{params / 1e6:.1f} M" if params else "—",
        "size": _size(model_bytes),
        "max_length": str(info.notes.get("max_length") or settings.student.max_length),
        "metric_note": _metric_note(info, metric_name),
        "metrics_table": metrics_table(info, metric_name),
        "train_set": _train_set(info, provenance),
        "counts_table": _counts_table(info.counts),
        "reject_reasons": ("Rejected replies by reason: " + ", ".join(f"{md(k)} {v}" for k, v in info.reject_reasons.items())
                           + ".") if info.reject_reasons else "",
        "vetoed": _vetoed(info),
        "settings_table": _settings_table(settings),
        "limits": _limits(info, metric_name),
        "provenance": _provenance(info, provenance),
    }
    text = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def front_matter(info: ExportInfo, metric_name: str) -> str:
    """The card's YAML metadata, in the fields the Hub reads: library and pipeline (the widget and the "use
    this model" snippet), base model, training datasets and licence (the model page's sidebar), tags, and the
    exported round's score on the task's evaluation rows as `model-index` (the evaluation results box).
    Written with yaml.safe_dump, so user text (a task name) is quoted as YAML needs, never parsed as markup."""
    classification = info.task.kind == "classification"
    pipeline_tag = "text-classification" if classification else "text-generation"
    base_ref = info.notes.get("base") or info.settings.student.model
    origin = example_origin(info.task)
    meta: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": pipeline_tag}
    if hub_id(base_ref):
        meta["base_model"] = hub_id(base_ref)
    if origin is not None:
        meta["datasets"] = [origin.hub_dataset]
        meta["language"] = ["en"]  # every bundled example is English
    license_id = hub_license(base_ref)
    if origin is not None and not origin.commercial_use:
        meta["license"] = "other"  # the data's non-commercial terms bind the student too
        meta["license_name"] = f"{origin.key}-non-commercial"
    elif license_id:
        meta["license"] = license_id
    meta["tags"] = ["gold-studio", "distillation", "synthetic-data"]
    result = model_index_result(info, metric_name, pipeline_tag, origin)
    if result is not None:
        meta["model-index"] = [{"name": info.root_name, "results": [result]}]
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000).rstrip("\n")


def model_index_result(info: ExportInfo, metric_name: str, pipeline_tag: str,
                       origin: ExampleOrigin | None) -> dict[str, Any] | None:
    """One model-index result: the exported round's metric on the task's evaluation rows. None when the round
    was measured on the seeds (training data: not an evaluation result) or has no score."""
    m = info.round.metrics
    value = m.metric
    if m.metric_on != "eval" or not isinstance(value, (int, float)) or isinstance(value, bool) \
            or value != value:
        return None
    rows = m.metric_rows
    name = plain_name(info.task.name)
    return {
        "task": {"type": pipeline_tag, "name": pipeline_tag.replace("-", " ").capitalize()},
        "dataset": {"name": f"{name}: {rows} evaluation rows" if rows else name,
                    "type": origin.hub_dataset if origin is not None else "custom"},
        "metrics": [{"type": metric_name, "value": float(value), "name": metric_name.replace("_", " ").capitalize(),
                     "verified": False}],
    }


def _usage(info: ExportInfo, folder: str) -> str:
    task = info.task
    example_row = (task.eval_set or task.seeds)[0] if (task.eval_set or task.seeds) else None
    example = task.format_input(example_row.inputs) if example_row else "your text here"
    if task.kind == "classification":
        code = (f'from transformers import pipeline\n'
                f'classifier = pipeline("text-classification", model="{folder}")\n'
                f'print(classifier([{example!r}], truncation=True))')
        return ("Unzip the download, then, with `transformers` installed (no GOLD Studio needed):\n\n"
                + fenced(code, "python")
                + "\n\nIt prints the predicted label and its probability, e.g. `[{'label': ..., 'score': 0.93}]`. "
                  "Pass `top_k=None` for every label's probability. From the command line: "
                  f"`python -m gold predict {folder} \"some text\"`.")
    fmt = info.notes.get("format") or {}
    prompt = str(fmt.get("prompt", "Input: {text}\nOutput:")).replace("{text}", example)
    stop = fmt.get("stop", "\n")
    tail = f'.split({stop!r})[0].strip()' if stop else ".strip()"
    code = (f'from transformers import pipeline\n'
            f'generator = pipeline("text-generation", model="{folder}")\n'
            f'print(generator({prompt!r}, do_sample=False, return_full_text=False)[0]["generated_text"]{tail})')
    return ("Unzip the download, then, with `transformers` installed (no GOLD Studio needed). The student was "
            "trained on prompts built from this template, `{text}` replaced by the input, and answers greedily up "
            "to the first newline:\n\n" + fenced(str(fmt.get("prompt", "Input: {text}\nOutput:"))) + "\n\n"
            + fenced(code, "python"))


def _metric_note(info: ExportInfo, metric_name: str) -> str:
    m = info.round.metrics
    on = m.metric_on
    rows = m.metric_rows
    if on == "eval":
        where = f"the task's evaluation set ({rows} labeled rows the student never trained on)"
    elif on == "seeds":
        where = (f"the task's {rows} seed examples, because the task has no evaluation set. The seeds are also "
                 "training data, so this score is optimistic: add an evaluation set for an honest number")
    else:
        where = "no evaluation rows"
    text = f"**{metric_name.replace('_', ' ')}** per round, measured on {where}."
    if info.baseline is not None:
        text += (f" The baseline column is run {info.baseline.run.id}: the same budget and settings without "
                 "feedback or noise filter.")
    return text


def metrics_table(info: ExportInfo, metric_name: str) -> str:
    base = {r.n: r.metrics for r in (info.baseline.rounds if info.baseline is not None else [])}
    head = ["round", metric_name] + ([f"baseline {metric_name}"] if info.baseline is not None else []) + [
        "train size", "kept", "noise", "feedback", "energy mean", "energy std", ""]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in info.rounds:
        m = r.metrics
        cells = [str(r.n), fmt_metric(m.metric)]
        if info.baseline is not None:
            twin = base.get(r.n)
            cells.append(fmt_metric(twin.metric if twin is not None else None))
        cells += [_num(m.train_size), _num(m.kept), _num(m.noise), _num(m.feedback),
                  _num(m.energy_mean), _num(m.energy_std),
                  "**exported**" if r.n == info.round.n else ("" if r.status == "done" else r.status)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _train_set(info: ExportInfo, provenance: dict[str, Any]) -> str:
    ts = provenance["data"]["train_set"]
    if ts["seeds"] is None:
        return "The exact training set of this round was not recorded (a run from an older version)."
    total = ts["seeds"] + ts["generated"]
    text = (f"This student trained on **{total}** examples: {ts['seeds']} seeds written by a person and "
            f"{ts['generated']} samples written by the teacher (kept, not vetoed, not flagged as noise when it trained).")
    if ts["file"]:
        text += f" They are in `{ts['file']}`, one JSON object per line."
    return text + _data_source(info)


def _data_source(info: ExportInfo) -> str:
    """Where the seeds and evaluation rows came from, when the task is a bundled example: its licence binds
    whoever ships the student."""
    origin = example_origin(info.task)
    if origin is None:
        return ""
    text = (f"\n\nThe seeds and evaluation rows are GOLD Studio's bundled copy of **{md(origin.title)}** "
            f"(`{origin.hub_dataset}` on the Hub; {md(origin.citation)}), licence as stated by the source: "
            f"{md(origin.license_note)}.")
    if not origin.commercial_use:
        text += " A student distilled from it is for research and evaluation, not for commercial use."
    return text


def _counts_table(counts: dict[str, int]) -> str:
    keys = ("generated", "kept", "rejected", "noise", "vetoed", "probe", "feedback")
    return ("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n| "
            + " | ".join(str(counts.get(k, 0)) for k in keys) + " |")


def _vetoed(info: ExportInfo) -> str:
    if not info.vetoed:
        return "No sample was vetoed by hand."
    n = len(info.vetoed)
    lines = [f"**{n} sample{'s' if n != 1 else ''} vetoed by hand** (kept out of training and feedback from the next "
             "round on; listed in full in `gold_run.json`):", "",
             "| id | round | label / output | in this student's training set | text |", "|---|---|---|---|---|"]
    for v in info.vetoed[:MAX_VETOED_LISTED]:
        lines.append(f"| {v['id']} | {v['round']} | {md(v['output'] or '')} | "
                     f"{'yes' if v['in_this_students_training_set'] else 'no'} | {md(_cut(v['input']))} |")
    if n > MAX_VETOED_LISTED:
        lines.append(f"\n… and {n - MAX_VETOED_LISTED} more.")
    return "\n".join(lines)


def _settings_table(s: GoldSettings) -> str:
    rows = [
        ("mode", s.mode), ("rounds", s.rounds), ("samples per round", s.samples_per_round),
        ("probe size", s.probe_size), ("energy temperature T", s.energy_temperature),
        ("feedback strategy", s.feedback),
        ("energy band (percentiles)", f"{s.band_lo:g}–{s.band_hi:g}"),
        ("feedback examples per prompt", s.feedback_count), ("feedback rate", s.feedback_rate),
        ("noise (samples above the band)", s.noise),
        ("feedback needs student agreement", s.feedback_needs_agreement),
        ("probes trained on (from the next round)", s.train_on_probes),
        ("seed", s.seed),
        ("student: epochs / min steps / max steps", f"{s.student.epochs} / {s.student.min_steps} / {s.student.max_steps}"),
        ("student: learning rate / batch / max length", f"{s.student.learning_rate:g} / {s.student.batch_size} / {s.student.max_length}"),
        ("student: loss", s.student.loss + (f" (alpha {s.student.sce_alpha:g}, beta {s.student.sce_beta:g})" if s.student.loss == "sce" else "")),
        ("student: warm start", s.student.warm_start),
        ("student: soft-label weight / calibration",
         f"{s.student.soft_label_weight:g} / {s.student.soft_label_calibration}" if s.student.soft_label_weight
         else "0 (the labels the teacher was asked to write)"),
        ("teacher: temperature / top_p / repetition penalty", f"{s.teacher.temperature:g} / {s.teacher.top_p:g} / {s.teacher.repetition_penalty:g}"),
        ("teacher: max new tokens", s.teacher.max_new_tokens),
    ]
    return "| setting | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _limits(info: ExportInfo, metric_name: str) -> str:
    task = info.task
    points = [
        f"Intended for the task above and text like its seed examples. It knows only what a "
        f"{'small ' if 'SmolLM2-135M' in str(info.settings.teacher.model) or 'smollm2' in str(info.settings.teacher.model) else ''}"
        "teacher wrote from a few seeds: expect errors on other domains, styles, languages and long inputs.",
        "The training labels come from a language model, not from people; some are wrong, and the student learns "
        "their biases. Check its predictions on your own labeled data before relying on it.",
    ]
    if task.kind == "classification":
        points.append(f"It always answers one of its {len(task.labels)} labels, even for inputs that fit none; "
                      "a low score means it is unsure.")
        points.append(f"Inputs longer than {info.notes.get('max_length') or info.settings.student.max_length} tokens "
                      "were truncated in training; pass `truncation=True` to the pipeline.")
    else:
        points.append("It generates short answers after the trained prompt format; other prompt forms give worse "
                      "answers. Greedy decoding (do_sample=False) is what it was measured with.")
    points.append("Not for decisions about people, or for medical, legal or financial advice.")
    return "\n".join(f"- {p}" for p in points)


def _provenance(info: ExportInfo, provenance: dict[str, Any]) -> str:
    run = provenance["run"]
    versions = ", ".join(f"{k} {v}" for k, v in provenance["versions"].items())
    return (f"Run {run['id']} (“{md(run['name'])}”, {run['mode']}, {run['status']}), created {run['created_at']}, "
            f"exported {provenance['exported_at']} with {versions}. The run's frozen settings, per-round metrics, "
            "sample counts, vetoes and file checksums are in `gold_run.json`.")

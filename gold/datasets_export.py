"""A run's generated data as a Hugging Face dataset folder, with a dataset card the Hub renders.

Why a folder of this shape: it is what `Dataset.push_to_hub` writes and what the `datasets` library and the
Hub read without any code of ours. The same data three ways, so every usual loader works:

    README.md                          the dataset card: YAML (licence, task, size, configs, features with the
                                       label names) and how the data was generated
    data/train-00000-of-00001.parquet  load_dataset(folder), load_dataset("parquet", data_files=...), pandas
    dataset_dict.json, train/          load_from_disk(folder) (the `save_to_disk` layout)

Rows are the run's kept samples (training samples and probes; rejected replies have no text and are only
counted in the card), in the order they were written: the input field(s), `label` (a ClassLabel with the
task's label names) or `output` for seq2seq, `soft_label` (the labeler's calibrated probability per label,
when the run stored them), `energy` under the run's latest student, `round`, `role`, `flag`, `vetoed` and
`sample_id` (the store's id, for joining with gold_run.json or the Explore page).

Nothing here imports streamlit; `gold export --data` calls `export_dataset`, the Export page
`gold.downloads.dataset_zip_bytes`.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

from gold.export import (
    ExportError, ExportResult, _check_target, is_finished, labeler_of_rounds, place_output, teacher_name,
)
from gold.modelcard import ExampleOrigin, example_origin, fenced, md, plain_name
from gold.records import Round, Run
from gold.specs import GoldSettings, TaskSpec
from gold.store import Store

PARQUET = "data/train-00000-of-00001.parquet"
CARD = "README.md"
TEMPLATE = Path(__file__).resolve().parent / "templates" / "dataset_card.md"
FIXED_COLUMNS = ("label", "output", "soft_label", "energy", "round", "role", "flag", "vetoed", "sample_id")
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def dataset_root(run_id: int) -> str:
    """The dataset export's folder (and zip root) name: ids only, never user text."""
    return f"gold-run{int(run_id)}-data"


def input_columns(task: TaskSpec) -> dict[str, str]:
    """Input field -> column name; a field named like one of our own columns gets an `input_` prefix."""
    return {f: (f"input_{f}" if f in FIXED_COLUMNS else f) for f in task.input_fields}


@dataclass
class DatasetFacts:
    """What the card says, all read from the store (nothing written)."""

    run: Run
    task: TaskSpec
    settings: GoldSettings
    rows: list[dict[str, Any]]
    counts: dict[str, int]  # the store's sample_counts
    reject_reasons: dict[str, int]
    rounds: list[Round]
    soft_labels: bool
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def classification(self) -> bool:
        return self.task.kind == "classification"


def collect_dataset(store: Store, run_id: int) -> DatasetFacts:
    """The run's kept samples as dataset rows, and the facts the card is written from."""
    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    samples = store.samples(run_id, kept_only=True)
    if not samples:
        raise ExportError(f"Run {run_id} has no kept samples yet, so there is no dataset to export. Wait for its "
                          "first round to generate some.")
    columns = input_columns(task)
    soft = task.kind == "classification" and any(s.teacher_probs for s in samples)
    label_index = {label: i for i, label in enumerate(task.labels)}
    rows = []
    for s in samples:
        row: dict[str, Any] = {columns[f]: s.inputs.get(f, "") for f in task.input_fields}
        if task.kind == "classification":
            row["label"] = label_index.get(s.output, -1)  # -1: a label no longer in the task (ClassLabel's "none")
            if soft:
                probs = s.teacher_probs
                row["soft_label"] = [float(p) for p in probs] if probs and len(probs) == len(task.labels) else None
        else:
            row["output"] = s.output
        row.update(energy=s.energy, round=int(s.round), role=s.role, flag=s.flag,
                   vetoed=bool(s.vetoed), sample_id=int(s.id))
        rows.append(row)
    return DatasetFacts(run=run, task=task, settings=GoldSettings.from_dict(run.settings), rows=rows,
                        counts=store.sample_counts(run_id), reject_reasons=store.reject_reasons(run_id),
                        rounds=store.rounds(run_id), soft_labels=soft, columns=columns)


def features(facts: DatasetFacts):
    """The `datasets.Features` of the rows: ClassLabel with the task's names, soft labels one float per label."""
    from datasets import ClassLabel, Features, List, Value

    spec: dict[str, Any] = {col: Value("string") for col in facts.columns.values()}
    if facts.classification:
        spec["label"] = ClassLabel(names=list(facts.task.labels))
        if facts.soft_labels:
            spec["soft_label"] = List(Value("float32"), length=len(facts.task.labels))
    else:
        spec["output"] = Value("string")
    spec.update(energy=Value("float32"), round=Value("int32"), role=Value("string"), flag=Value("string"),
                vetoed=Value("bool"), sample_id=Value("int64"))
    return Features(spec)


# -- writing ------------------------------------------------------------------------------------------------------

def export_dataset(store: Store, run_id: int, out: str | os.PathLike, overwrite: bool = False,
                   as_zip: bool = False) -> ExportResult:
    """Write the run's dataset folder at `out` (or a zip with `as_zip`), atomically: temp folder, then rename."""
    out = Path(out).expanduser().resolve()
    if as_zip and out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    _check_target(out, overwrite)
    facts = collect_dataset(store, run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{threading.get_ident()}"
    stage = out.with_name(f".{out.stem}.data-stage-{tag}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        files = write_dataset_folder(facts, stage)
        size = place_output(stage, out, dataset_root(run_id), as_zip, tag)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return ExportResult(out, run_id, 0, files, size, [])


def write_dataset_folder(facts: DatasetFacts, folder: Path) -> list[str]:
    """Fill a new `folder`: the parquet file, the save_to_disk layout, the card."""
    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # a bar per write on the page's server log helps no one
    feats = features(facts)
    columns = {name: [row.get(name) for row in facts.rows] for name in feats}
    ds = Dataset.from_dict(columns, features=feats)
    (folder / "data").mkdir(parents=True)
    ds.to_parquet(str(folder / PARQUET))
    DatasetDict({"train": ds}).save_to_disk(str(folder))
    (folder / CARD).write_text(render_dataset_card(facts, feats), encoding="utf-8")
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# -- the card -----------------------------------------------------------------------------------------------------

def size_category(n: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if n < limit:
            return name
    return "n>1M"


def label_counts(facts: DatasetFacts) -> list[dict[str, Any]]:
    """Per label: rows, training samples, probes, flagged noise, vetoed (classification only)."""
    out = []
    for i, label in enumerate(facts.task.labels):
        mine = [r for r in facts.rows if r["label"] == i]
        out.append({"label": label, "rows": len(mine), "train": sum(r["role"] == "train" for r in mine),
                    "probe": sum(r["role"] == "probe" for r in mine), "noise": sum(r["flag"] == "noise" for r in mine),
                    "vetoed": sum(r["vetoed"] for r in mine)})
    return out


def card_metadata(facts: DatasetFacts, feats) -> dict[str, Any]:
    """The card's YAML: what the Hub shows in the sidebar and needs to load and preview the data."""
    origin = example_origin(facts.task)
    meta: dict[str, Any] = {"pretty_name": f"GOLD Studio run {facts.run.id}: {plain_name(facts.task.name)}"}
    if origin is not None:
        meta["license"] = origin.license
        if origin.license == "other":
            meta["license_name"] = f"{origin.key}-terms"
        meta["language"] = ["en"]
    else:
        meta["license"] = "unknown"  # the seeds are the user's: only they know their terms
    meta["task_categories"] = ["text-classification" if facts.classification else "text-generation"]
    meta["size_categories"] = [size_category(len(facts.rows))]
    meta["annotations_creators"] = ["machine-generated"]
    meta["language_creators"] = ["machine-generated"]
    if origin is not None:
        meta["source_datasets"] = [origin.hub_dataset]
    meta["tags"] = ["synthetic", "gold-studio", "distillation"]
    meta["configs"] = [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    meta["dataset_info"] = {"features": feats._to_yaml_list(),
                            "splits": [{"name": "train", "num_examples": len(facts.rows)}]}
    return meta


def render_dataset_card(facts: DatasetFacts, feats) -> str:
    s, run = facts.settings, facts.run
    origin = example_origin(facts.task)
    front = yaml.safe_dump(card_metadata(facts, feats), sort_keys=False, allow_unicode=True, width=10_000)
    finished = [r.n for r in facts.rounds if r.status == "done"]
    vetoed = sum(r["vetoed"] for r in facts.rows)
    labeler = labeler_of_rounds(facts.rounds)["name"] if facts.classification else "none (seq2seq)"
    status = run.status + ("" if is_finished(run.status) else " (the run was not finished at export)")
    generation = [
        f"- **Task:** {md(facts.task.name)} ({facts.task.kind}); instruction given to the teacher below.",
        f"- **Teacher (wrote the texts):** {md(teacher_name(s))}",
        f"- **Labeler (read the soft labels):** {md(labeler)}",
        "- **Mode:** " + ("GOLD (feedback from the out-of-distribution tail, noise filter)" if run.mode == "gold"
                          else "baseline (plain generation from the seeds)"),
        f"- **Rounds:** {len(finished)} finished of {s.rounds} planned; {s.samples_per_round} samples per round"
        + (f" and {s.probe_size} probes" if run.mode == "gold" else "") + f"; seed {s.seed}",
        f"- **Seeds** (written by a person, not in this dataset): {len(facts.task.seeds)}",
        f"- **Run:** {run.id} ({md(run.name or 'unnamed')}), status {md(status)}",
    ]
    counts = facts.counts
    count_keys = ("generated", "kept", "probe", "rejected", "noise", "feedback", "vetoed")
    counts_table = ("| " + " | ".join(count_keys) + " |\n|" + "---|" * len(count_keys) + "\n| "
                    + " | ".join(str(counts.get(k, 0)) for k in count_keys) + " |")
    rejects = ("Rejected replies by reason (not in the dataset): "
               + ", ".join(f"{md(k)} {v}" for k, v in facts.reject_reasons.items()) + "."
               ) if facts.reject_reasons else ""
    if facts.classification:
        lines = ["| label | rows | training samples | probes | flagged noise | vetoed |", "|---|---|---|---|---|---|"]
        lines += [f"| {md(c['label'])} | {c['rows']} | {c['train']} | {c['probe']} | {c['noise']} | {c['vetoed']} |"
                  for c in label_counts(facts)]
        unknown = sum(r["label"] == -1 for r in facts.rows)
        if unknown:
            lines.append(f"\n{unknown} rows carry a label no longer in the task's label set: `label` is -1 there.")
        labels_block = "\n".join(lines)
    else:
        labels_block = f"Outputs: {len(facts.rows)} rows, {len(Counter(r['output'] for r in facts.rows))} distinct."
    values = {
        "front_matter": front.rstrip("\n"),
        "title": f"GOLD Studio data for “{md(facts.task.name)}” (run {run.id})",
        "n_rows": f"{len(facts.rows)} text{'s' if len(facts.rows) != 1 else ''}",
        "generation": "\n".join(generation),
        "instruction": fenced(facts.task.instruction),
        "counts_table": counts_table,
        "rejects": rejects,
        "vetoes": (f"**{vetoed} row{'s' if vetoed != 1 else ''} vetoed by hand** (`vetoed` is true): kept out of "
                   "training and feedback from the next round on." if vetoed else "No row was vetoed by hand."),
        "labels_block": labels_block,
        "columns": _columns_table(facts),
        "usage": fenced(_usage(facts), "python"),
        "source": _source(origin),
    }
    text = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)
    return text.rstrip() + "\n"


def _columns_table(facts: DatasetFacts) -> str:
    rows = [(md(col), f"input field {md(f)} (text)" if col == f else f"input field {md(f)} (text; renamed)")
            for f, col in facts.columns.items()]
    if facts.classification:
        rows.append(("`label`", "the label the teacher was asked to write (ClassLabel: "
                     + ", ".join(f"{i} = {md(label)}" for i, label in enumerate(facts.task.labels)) + ")"))
        if facts.soft_labels:
            rows.append(("`soft_label`", "the labeler's calibrated probability of each label, in the order above "
                         "(what the student trained on; null where the run stored none)"))
    else:
        rows.append(("`output`", f"the {md(facts.task.output_name or 'output')} the teacher wrote"))
    rows += [
        ("`energy`", "E(x) = −T·logsumexp(f(x)/T) under the run's latest student: high = out of its distribution"),
        ("`round`", "the round that generated the row"),
        ("`role`", "`train` (a training sample) or `probe` (asked toward other styles; scored, trained on only "
                   "with train_on_probes)"),
        ("`flag`", "`ok`, `feedback` (shown to the teacher in the next round) or `noise` (kept out of training)"),
        ("`vetoed`", "vetoed by hand on the Explore page (kept out of training)"),
        ("`sample_id`", "the sample's id in the GOLD Studio store"),
    ]
    return "| column | meaning |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def _usage(facts: DatasetFacts) -> str:
    root = dataset_root(facts.run.id)
    filt = ('ds = ds.filter(lambda r: r["role"] == "train" and not r["vetoed"] and r["flag"] != "noise")'
            "  # what the student trained on")
    return (f'from datasets import load_dataset, load_from_disk\n\n'
            f'ds = load_dataset("{root}", split="train")  # the folder, as the Hub would serve it\n'
            f'ds = load_dataset("parquet", data_files="{root}/data/train-*.parquet", split="train")\n'
            f'ds = load_from_disk("{root}")["train"]\n'
            + filt)


def _source(origin: ExampleOrigin | None) -> str:
    if origin is None:
        return ("The seeds the teacher wrote from are the user's own; their terms (and the teacher's) apply to "
                "this data. The licence field says `unknown` until the owner sets it.")
    text = (f"The seeds (and the evaluation rows the students were measured on) are GOLD Studio's bundled copy of "
            f"**{md(origin.title)}** (`{origin.hub_dataset}` on the Hub; {md(origin.citation)}). Licence as stated by "
            f"the source: {md(origin.license_note)}. The generated texts were written from those seeds.")
    if not origin.commercial_use:
        text += " For research and evaluation only: not for commercial use."
    return text


__all__ = ["PARQUET", "DatasetFacts", "collect_dataset", "features", "export_dataset", "write_dataset_folder",
           "dataset_root", "card_metadata", "render_dataset_card", "label_counts",
           "size_category"]

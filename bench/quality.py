"""Does GOLD deliver? The distilled student against the teacher used few-shot, and GOLD against plain generation,
on real labeled data, with GOLD Studio's own engine (the same rounds a user's run executes).

Usage:
  .venv/bin/python bench/quality.py --quick                    # SST-2, 1 seed, 64 samples: < 10 min on 2 cores
  .venv/bin/python bench/quality.py                            # SST-2 and TREC, 3 seeds, 256 samples per method
  .venv/bin/python bench/quality.py --tasks trec --budget 512 --seeds 0,1,2
  .venv/bin/python bench/quality.py --seeds-file S.jsonl --eval-file E.jsonl --kind classification \\
        --labels neg,pos --instruction "..."                   # any task: seeds + labeled rows
  .venv/bin/python bench/quality.py --simulated-veto 10,25,50  # + a reviewer vetoing after each round
  .venv/bin/python bench/quality.py --variant keep_all=gold:noise=keep,student.loss=ce

Methods, all with the same seeds, the same teacher budget and the same held-out rows:
  teacher_raw / teacher_calibrated  the teacher classifies each row from a few-shot prompt of the seeds by label
  / teacher_batch_calibrated        log-likelihood (no sampling), raw, contextually calibrated, and batch-
                                    calibrated (the test rows together given every label equally often; no
                                    label is read); seq2seq: greedy answers (teacher_raw), exact match;
  seeds_only                        the student trained on the seeds alone (the lower bound);
  baseline                          plain generation, no feedback and no noise filter (ZeroGen-style);
  gold                              the full loop with the product's default settings;
  <variant>                         gold or baseline with settings changed (`--variant`);
  gold+veto<K> / gold+random<K> /   gold with a simulated reviewer who, after each round but the last, looks at K
  gold+suspect<K>                   unreviewed samples still in training (not flagged as noise): the highest-energy
                                    ones, K random ones, or the K whose given label the student believes least; and
                                    vetoes those whose label is wrong (wrong = disagrees with the exact-text gold
                                    label of a labeled row, else with a reference classifier trained on the task's
                                    labeled validation rows).

The dev rows are split once (fixed shuffle): `--test-rows` of them are the held-out test set every number here is
read on; the rest become the task's evaluation set, which the run itself sees (per-round metric in the product,
and the reference classifier). Nothing is tuned on the test rows.

Budget = every teacher sample a method asks for, probes included: gold spends `budget/rounds` per round of which
`--probe-share` are probes; the baseline spends the same per round on plain generation.

Finished cells (task × method × seed × settings) are cached under bench/.work/quality/: a rerun skips them and a
killed run resumes from its last finished round step (the store's checkpoints). Prints a table and writes
bench/results/quality.json (`--quick`: quality_quick.json), merging with the tasks and budgets already there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from common import RESULTS, WORK, machine, machine_line, read_json, write_json  # noqa: I001
from tqdm import tqdm

from gold.datafiles import ColumnMapping, DataFileError, load_examples
from gold.evaluation import evaluate_student, is_correct
from gold.examples import EXAMPLES
from gold.checkpoints import best_round, load_checkpoint
from gold.context import RunContext
from gold.loop import RunHooks, execute_run
from gold.records import Round, RoundMetrics
from gold.settings import BEFORE_THEY_EXISTED
from gold.specs import (AVERAGE_ROUNDS, Example, GoldSettings, LabelerSpec, SpecError, StudentSpec, TaskSpec,
                        noise_from_flags, normalize_text)

SPLIT_SEED = 1234
RUN_METHODS = ("baseline", "gold")
ALL_METHODS = ("teacher", "seeds_only", "baseline", "gold")


# -- tasks ------------------------------------------------------------------------------------------------------

@dataclass
class BenchTask:
    """A task as the run sees it (seeds + validation rows as its evaluation set) and the held-out test rows."""

    key: str
    spec: TaskSpec
    test: list[Example]

    @property
    def val(self) -> list[Example]:
        return self.spec.eval_set


def split_rows(rows: list[Example], test_rows: int) -> tuple[list[Example], list[Example]]:
    """(validation, test): a fixed shuffle of the labeled rows, the first `test_rows` held out."""
    order = list(range(len(rows)))
    random.Random(SPLIT_SEED).shuffle(order)
    test_rows = min(test_rows, len(rows))
    return [rows[i] for i in order[test_rows:]], [rows[i] for i in order[:test_rows]]


def example_task(key: str, test_rows: int) -> BenchTask:
    spec = EXAMPLES[key].spec()
    val, test = split_rows(spec.eval_set, test_rows)
    return BenchTask(key, replace(spec, eval_set=val), test)


def file_task(a: argparse.Namespace) -> BenchTask:
    fields = [f.strip() for f in a.input_fields.split(",") if f.strip()]
    mapping = ColumnMapping(inputs={f: f for f in fields}, output=a.output_column)
    seeds = load_examples(a.seeds_file, fields, mapping)
    rows = load_examples(a.eval_file, fields, mapping)
    labels = [x.strip() for x in (a.labels or "").split(",") if x.strip()]
    if a.kind == "classification" and not labels:
        labels = sorted({ex.output for ex in seeds})
    val, test = split_rows(rows, a.test_rows)
    spec = TaskSpec(name=a.name or Path(a.seeds_file).parent.name or "task", kind=a.kind, instruction=a.instruction,
                    labels=labels, input_fields=fields, output_name=a.output_column, seeds=seeds, eval_set=val)
    problems = spec.problems()
    if problems:
        raise SpecError(problems)
    return BenchTask(a.name or "custom", spec, test)


# -- methods ------------------------------------------------------------------------------------------------------

@dataclass
class Method:
    """One row of the table: what is measured and, for runs, the settings changed from the product's defaults."""

    name: str
    kind: str  # teacher | seeds_only | run
    mode: str = "gold"
    overrides: dict[str, Any] = field(default_factory=dict)
    veto: int = 0  # simulated reviewer: samples looked at after each round
    veto_order: str = "energy"  # energy | random | label_prob


def parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_variant(text: str) -> Method:
    """NAME=BASE:key=value,key=value — BASE is gold or baseline; keys are GoldSettings fields, student.* or
    teacher.* for the nested specs (e.g. student.loss=ce)."""
    try:
        name, rest = text.split("=", 1)
        base, _, pairs = rest.partition(":")
    except ValueError:
        sys.exit(f"error: --variant '{text}' is not NAME=BASE:key=value,...")
    if base not in RUN_METHODS:
        sys.exit(f"error: --variant '{text}': the base must be gold or baseline.")
    overrides = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        overrides[key.strip()] = parse_value(value)
    return Method(name.strip(), "run", base, overrides)


# How the llama.cpp engine runs the teacher in every run cell (`--gguf-weights`, `--parallel-sequences`; the
# product's defaults unless set). Not a method's override, so a cell run with the values the engine had before these
# settings existed (file, 1) keeps the key it was measured under.
LLAMACPP_TEACHER: dict[str, Any] = {}
# Settings only the llama.cpp engine reads: a cell on another engine leaves them out of its identity.
LLAMACPP_ONLY = ("gguf_weights", "parallel_sequences")
# The student's *Average the rounds* in every run cell (`--average-rounds`; the product's default, auto, unless
# set). `off` keeps the rounds' own students, so such a cell keeps the key it was measured under before the setting
# had auto, and `bench/refit.py`'s `average_all` gives what averaging would have saved from the same cell.
STUDENT_EVERY_RUN: dict[str, Any] = {}


def run_settings(method: Method, seed: int, budget: int, rounds: int, probe_share: float) -> GoldSettings:
    per_round = max(1, budget // rounds)
    probe = round(per_round * probe_share) if probe_share > 0 else 0
    settings = GoldSettings(mode=method.mode, rounds=rounds, samples_per_round=per_round - probe, probe_size=probe,
                            seed=seed)
    settings.teacher.engine = "transformers"  # not "auto": a cell names its engine (`--engine` overrides it)
    settings.teacher = replace(settings.teacher, **LLAMACPP_TEACHER)
    settings.student = replace(settings.student, **STUDENT_EVERY_RUN)
    top, teacher, student, labeler = {}, {}, {}, {}
    for key, value in method.overrides.items():
        if key.startswith("student."):
            student[key[8:]] = value
        elif key.startswith("teacher."):
            teacher[key[8:]] = value
        elif key.startswith("labeler."):  # labeler.models takes references separated by '|'
            labeler[key[8:]] = str(value).split("|") if key == "labeler.models" else value
        else:
            top[key] = value
    if "noise_filter" in top or "relabel_noise" in top:  # the two booleans the `noise` setting replaced
        noise_filter, relabel = bool(top.pop("noise_filter", True)), bool(top.pop("relabel_noise", False))
        if relabel and not noise_filter:
            sys.exit(f"error: method '{method.name}': relabel_noise=true needs the noise filter (noise=relabel).")
        top.setdefault("noise", noise_from_flags(noise_filter, relabel))
    unknown = [k for k in top if k not in GoldSettings.__dataclass_fields__] + \
              [f"student.{k}" for k in student if k not in StudentSpec.__dataclass_fields__] + \
              [f"labeler.{k}" for k in labeler if k not in LabelerSpec.__dataclass_fields__]
    if unknown:
        sys.exit(f"error: unknown setting(s) {', '.join(unknown)} in method '{method.name}'.")
    if "probe_size" in top:  # the budget stays the same: what is not spent on probes goes to samples
        top.setdefault("samples_per_round", per_round - int(top["probe_size"]))
    settings = replace(settings, **top, student=replace(settings.student, **student),
                       teacher=replace(settings.teacher, **teacher), labeler=replace(settings.labeler, **labeler))
    problems = settings.problems()
    if problems:
        sys.exit(f"error: method '{method.name}': " + " ".join(problems))
    return settings


# -- the cache of finished cells ------------------------------------------------------------------------------------

# A setting added after cells were measured is left out of a cell's identity while it has the value that does what
# the engine did before it existed (gold.settings.BEFORE_THEY_EXISTED, the table stored runs are read with too), so
# adding a setting does not throw away measured cells.

# Settings the engine reads only in GOLD mode (rounds.probing, training_set's probes): a baseline cell's identity
# leaves them out, so a change of their default does not throw away baseline cells that would run the same.
GOLD_ONLY = ("train_on_probes", "feedback")


def without_neutral(settings: dict[str, Any], neutral: dict[str, Any] = BEFORE_THEY_EXISTED) -> dict[str, Any]:
    out = {}
    for k, v in settings.items():
        if isinstance(v, dict) and isinstance(neutral.get(k), dict):
            inner = without_neutral(v, neutral[k])
            if inner or k not in ("labeler",):  # a spec added later, all at its neutral values: left out
                out[k] = inner
        elif not (k in neutral and not isinstance(neutral[k], dict) and v == neutral[k]):
            out[k] = v
    return out


def as_cached(d: dict[str, Any]) -> dict[str, Any]:
    """The settings as the cell cache keys them: the shape GoldSettings had when the cached cells were measured.

    - `noise` is written as the two booleans it replaced: noise_filter (off for "keep"), and relabel_noise, which
      appears only when on ("relabel"; a cell of the other strategies was keyed without it);
    - `feedback` at "energy_band", what a run stored without the setting does, is left out;
    - map_after_round, which every bench run set to False (the map is a hook now, not a setting), is put back.
    Any other strategy name stays in under its own key, so a new strategy's cells get keys of their own."""
    d = dict(d)
    noise = d.pop("noise")
    d["noise_filter"] = noise != "keep"
    if noise == "relabel":
        d["relabel_noise"] = True
    elif noise not in ("drop", "keep"):
        d["noise"] = noise
    if d.get("feedback") == "energy_band":
        del d["feedback"]
    d["map_after_round"] = False
    return d


# Settings that choose how the arithmetic is done, not what is computed, and stay out of a cell's identity as the
# machine does: bf16 and fp32 training give students whose test-row probabilities are 0.7–3.8e-4 apart and the same
# labels (`bench/precision.py`), and `auto` resolves differently on different machines anyway.
NUMERICS = ("precision",)


def settings_identity(settings: GoldSettings) -> dict[str, Any]:
    """What of a run's settings its result depends on: all of them (`as_cached`), less those at the value runs got
    before they existed, less the arithmetic ones (NUMERICS) and, in baseline mode, less the GOLD-only ones."""
    d = as_cached(settings.to_dict())
    d["student"]["average_rounds"] = "on" if settings.averages_rounds() else "off"  # what the run does: auto resolved
    for k in NUMERICS:
        d.get("student", {}).pop(k, None)
    if d["teacher"]["engine"] != "llama.cpp":
        for k in LLAMACPP_ONLY:
            d["teacher"].pop(k, None)
    if d["mode"] == "baseline":
        for k in GOLD_ONLY:
            d.pop(k, None)
    return without_neutral(d)


def cell_key(task: BenchTask, method: Method, seed: int, budget: int, rounds: int, probe_share: float) -> str:
    """Everything a cell's result depends on, hashed: change any of it and the cell is measured again."""
    ident = {"task": task.spec.to_dict(), "test": [ex.to_dict() for ex in task.test], "method": method.__dict__,
             "seed": seed, "budget": budget, "rounds": rounds, "probe_share": probe_share,
             "v": 2 if method.veto or method.kind == "teacher" else 1}
    # v2: the reviewer looks only at samples still in training; teacher cells carry the batch-calibrated read-out
    if method.kind == "run":  # the product's defaults are part of a run's identity: change one, measure again
        settings = run_settings(method, seed, budget, rounds, probe_share)
        ident["settings"] = settings_identity(settings)
        if settings.student.soft_label_weight > 0:
            ident["label_read"] = label_read(settings)
    if method.kind == "teacher":
        ident["label_read"] = READS
    elif method.kind == "seeds_only":
        ident["student"] = {k: v for k, v in without_neutral({"student": asdict(StudentSpec())})["student"].items()
                            if k not in NUMERICS and k != "average_rounds"}  # one fit: nothing to average
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{task.key}-{method.name}-s{seed}-b{budget}-{digest}"


# How the teacher reads a label back: the few-shot prompt encoded whole, as a server encodes it. Part of the
# identity of every cell that reads labels (teacher cells, soft-label runs): cells read otherwise are measured again.
READS = "whole_prompt"


def label_read(settings: GoldSettings) -> str:
    """How a run's labels are read: READS, and for a local llama.cpp teacher, which reads them itself (quantized
    arithmetic), also the engine; cells whose labels were read under transformers keep their identity."""
    t = settings.teacher
    return f"{READS}, llama.cpp" if t.backend == "local" and t.engine == "llama.cpp" else READS


class Cache:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> dict[str, Any] | None:
        return read_json(self.folder / f"{key}.json") or None

    def put(self, key: str, result: dict[str, Any]) -> None:
        write_json(self.folder / f"{key}.json", result)


# -- measuring one cell -----------------------------------------------------------------------------------------

def measure_teacher(task: BenchTask, seed: int) -> dict[str, Any]:
    from gold.teachers import fewshot
    from gold.teachers.local import LocalTeacher

    teacher = LocalTeacher.cached()
    if task.spec.kind == "classification":
        r = fewshot.classify(teacher, task.spec, task.test, seed=seed)
        return {"teacher_raw": r.metrics["raw"], "teacher_calibrated": r.metrics["calibrated"],
                "teacher_batch_calibrated": r.metrics["batch_calibrated"],
                "examples_per_s": r.examples_per_s, "seconds": r.seconds, **r.extra}
    r = fewshot.answer(teacher, task.spec, task.test, seed=seed)
    return {"teacher_raw": r.metrics["greedy"], "examples_per_s": r.examples_per_s, "seconds": r.seconds}


def train_student(task: TaskSpec, examples: list[Example], spec: StudentSpec, seed: int):
    from gold.checkpoints import new_student
    from gold.students.base import TrainExample

    student = new_student(task, GoldSettings(student=spec))  # the engine's own constructor, as a round uses
    rows = [TrainExample(task.format_input(ex.inputs), ex.output) for ex in examples]
    student.fit(rows, spec.training_args(seed=seed))
    return student


def measure_seeds_only(task: BenchTask, seed: int) -> dict[str, Any]:
    spec = StudentSpec() if task.spec.kind == "classification" else StudentSpec(loss="ce")
    started = time.perf_counter()
    student = train_student(task.spec, task.spec.seeds, spec, seed)
    return {"seeds_only": evaluate_student(student, task.spec, task.test), "train_s": time.perf_counter() - started}


class Reviewer(RunHooks):
    """The simulated human of the Explore page: after a round, looks at K unreviewed samples still in training
    (highest energy first, or at random) and vetoes those whose label it knows to be wrong. It replaces the
    product's hook between rounds, so a bench run draws no maps."""

    def __init__(self, store, run_id: int, task: BenchTask, oracle, k: int, order: str, seed: int, last_round: int):
        super().__init__(draw_maps=False)
        self.store, self.run_id, self.task, self.oracle, self.k, self.order = store, run_id, task, oracle, k, order
        self.rng = random.Random(seed)
        self.last_round = last_round
        self.with_probes = GoldSettings.from_dict(store.get_run(run_id).settings).train_on_probes
        self.reviewed: set[int] = set()
        self.log: list[dict[str, int]] = []

    def after_round(self, ctx, n: int, settings: GoldSettings) -> None:
        if self.k <= 0 or n >= self.last_round:  # a veto after the last round would need an extra training pass
            return
        # Only samples the next training would use: a noise-flagged one is out of training already, so looking
        # at it costs the reviewer time and buys nothing (measured: most top-energy samples were flagged).
        rows = [r for r in self.store.samples(self.run_id, trainable_only=True, with_probes=self.with_probes)
                if r.id not in self.reviewed and r.energy is not None]
        if self.order == "energy":
            rows.sort(key=lambda r: r.energy, reverse=True)
        elif self.order == "label_prob":  # the student's belief in the given label, least believed first
            rows.sort(key=lambda r: r.label_prob if r.label_prob is not None else 2.0)
        else:
            self.rng.shuffle(rows)
        looked = rows[: self.k]
        self.reviewed.update(r.id for r in looked)
        wrong = [r.id for r in looked if not self.oracle.agrees(r.inputs, r.output)]
        self.store.set_vetoed(wrong)
        self.log.append({"round": n, "reviewed": len(looked), "vetoed": len(wrong)})


class Oracle:
    """Knows a sample's true label when its text is a labeled row (exact, normalised text), else asks a reference
    classifier trained on the task's seeds and validation rows (never the test rows)."""

    def __init__(self, task: BenchTask):
        spec = task.spec
        self.task = spec
        self.known = {normalize_text(spec.format_input(ex.inputs)): ex.output for ex in spec.seeds + task.val}
        self.student = train_student(spec, spec.seeds + task.val, StudentSpec(loss="ce", epochs=10), seed=0)
        self.test_accuracy = evaluate_student(self.student, spec, task.test)

    def agrees(self, inputs: dict[str, str], output: str) -> bool:
        text = self.task.format_input(inputs)
        truth = self.known.get(normalize_text(text))
        if truth is None:
            truth = self.student.predict([text])[0].output
        return is_correct(self.task, output, truth)


def measure_run(task: BenchTask, method: Method, settings: GoldSettings, home: Path, key: str,
                oracle: Oracle | None) -> dict[str, Any]:
    """One run through the engine (`execute_run`, as the worker does), then every round's student on the test rows."""
    from gold.store import Store

    store = Store(home)
    try:
        task_id = next((t.id for t in store.list_tasks() if t.name == key), None)
        if task_id is None:
            task_id = store.create_task(replace(task.spec, name=key))
        run = next((r for r in store.list_runs(task_id) if r.name == key), None)
        run_id = run.id if run else store.create_run(task_id, settings.to_dict(), name=key, mode=settings.mode)
        if store.get_run(run_id).status != "done":
            worker = f"bench-{os.getpid()}"
            store.resume_run(run_id)  # a failed or cancelled cell is queued again (a no-op otherwise)
            if store.claim_run(worker, stale_after=0, only=[run_id]) != run_id:
                raise RuntimeError(f"Could not claim run {run_id} in {home}.")
            # no reviewer: a hook that does nothing between rounds (no map: the bench never looks at one)
            reviewer = Reviewer(store, run_id, task, oracle, method.veto, method.veto_order, settings.seed,
                                settings.rounds)
            status = execute_run(RunContext(store, run_id, worker), hooks=reviewer)
            store.finish_run(run_id, status)
        else:
            reviewer = None
        rounds = store.rounds(run_id)
        curve = [evaluate_student(load_checkpoint(store, run_id, r.n), task.spec, task.test) for r in rounds]
        m = [r.metrics.to_dict() for r in rounds]
        last = m[-1]
        flags = [s.flag for s in store.samples(run_id, kept_only=True)]
        # every sample asked of the teacher, kept or rejected (a prompt may write several)
        asked = sum((x.get(k) or 0) for x in m for k in ("gen_kept", "gen_rejected", "probe_kept", "probe_rejected"))
        return {
            "test": curve[-1], "curve": curve, "val_curve": [x.get("metric") for x in m],
            "generate_s": round(sum(x.get("generate_seconds", 0) for x in m), 1),
            "train_s": round(sum(x.get("train_seconds", 0) for x in m), 1),
            "kept": last.get("kept"), "rejected": last.get("rejected"), "noise": flags.count("noise"),
            "feedback": flags.count("feedback"), "train_size": last.get("train_size"),
            "vetoed": last.get("vetoed"), "teacher_samples": asked,
            "reviewer": reviewer.log if reviewer and method.veto else None,
        }
    finally:
        store.close()


# -- the table ----------------------------------------------------------------------------------------------------

def pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


def summarize(values: list[float | None]) -> tuple[float | None, list[float] | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return round(statistics.mean(vals), 1), [round(min(vals), 1), round(max(vals), 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="SST-2, seed 0, 64 samples in 2 rounds (< 10 min on 2 cores)")
    ap.add_argument("--tasks", default="sst2,trec", help=f"example tasks, comma-separated ({', '.join(EXAMPLES)})")
    ap.add_argument("--seeds", default="0,1,2", help="random seeds (data generation and training), comma-separated")
    ap.add_argument("--budget", type=int, default=256, help="teacher samples per method, probes included")
    ap.add_argument("--rounds", type=int, default=4, help="rounds per run (the budget is split evenly)")
    ap.add_argument("--probe-share", type=float, default=0.2, help="share of each gold round's budget spent on probes")
    ap.add_argument("--test-rows", type=int, default=200, help="labeled rows held out for the table")
    ap.add_argument("--methods", default=",".join(ALL_METHODS), help="subset of: " + ", ".join(ALL_METHODS))
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=BASE:k=v,...",
                    help="an extra method: gold or baseline with settings changed (repeatable)")
    ap.add_argument("--simulated-veto", default="", metavar="K[,K...]",
                    help="add gold+vetoK and gold+randomK for each K: a reviewer looks at K samples after each round")
    ap.add_argument("--engine", default="transformers", choices=("transformers", "llama.cpp"),
                    help="the local teacher's engine for every run (llama.cpp: faster on a CPU; a different engine is "
                         "a different cell)")
    ap.add_argument("--gguf-weights", choices=("auto", "file", "f16"), default=None,
                    help="llama.cpp: the weights every run's teacher runs (default: the product's, auto)")
    ap.add_argument("--parallel-sequences", type=int, default=None,
                    help="llama.cpp: replies decoded together in every run (default: the product's)")
    ap.add_argument("--average-rounds", choices=AVERAGE_ROUNDS, default=None,
                    help="the student's *Average the rounds* in every run (default: the product's, auto); off "
                         "keeps the last round's own student, and bench/refit.py's average_all gives the average")
    ap.add_argument("--out", default=None, help="results file (default bench/results/quality.json)")
    ap.add_argument("--work", default=str(WORK / "quality"), help="cache of finished cells and the runs' stores")
    ap.add_argument("--cached-only", action="store_true",
                    help="measure nothing: build the table from the finished cells (a method's missing seeds are "
                         "left out and listed)")
    custom = ap.add_argument_group("any task instead of the examples")
    custom.add_argument("--seeds-file")
    custom.add_argument("--eval-file", help="labeled rows (the test rows are held out from these)")
    custom.add_argument("--kind", default="classification", choices=("classification", "seq2seq"))
    custom.add_argument("--labels", help="comma-separated (default: the seeds' labels)")
    custom.add_argument("--instruction", default="")
    custom.add_argument("--input-fields", default="text")
    custom.add_argument("--output-column", default="label")
    custom.add_argument("--name", default="")
    a = ap.parse_args()
    if a.quick:
        a.tasks, a.seeds, a.budget, a.rounds = "sst2", "0", 64, 2
    out = Path(a.out) if a.out else RESULTS / ("quality_quick.json" if a.quick else "quality.json")

    try:
        if a.seeds_file or a.eval_file:
            if not (a.seeds_file and a.eval_file):
                sys.exit("error: give both --seeds-file and --eval-file.")
            tasks = [file_task(a)]
        else:
            unknown = [k for k in a.tasks.split(",") if k not in EXAMPLES]
            if unknown:
                sys.exit(f"error: unknown task(s) {', '.join(unknown)}; choose from {', '.join(EXAMPLES)}.")
            tasks = [example_task(k, a.test_rows) for k in a.tasks.split(",")]
    except (DataFileError, SpecError) as e:
        sys.exit(f"error: {e}")
    seeds = [int(s) for s in a.seeds.split(",")]
    chosen = [m.strip() for m in a.methods.split(",") if m.strip()]
    bad = [m for m in chosen if m not in ALL_METHODS]
    if bad:
        sys.exit(f"error: unknown method(s) {', '.join(bad)}; choose from {', '.join(ALL_METHODS)}.")
    methods = [Method(m, "run", m) if m in RUN_METHODS else Method(m, m) for m in chosen]
    methods += [parse_variant(v) for v in a.variant]
    if a.gguf_weights is not None:
        LLAMACPP_TEACHER["gguf_weights"] = a.gguf_weights
    if a.parallel_sequences is not None:
        LLAMACPP_TEACHER["parallel_sequences"] = a.parallel_sequences
    if a.average_rounds is not None:
        STUDENT_EVERY_RUN["average_rounds"] = a.average_rounds
    if a.engine != "transformers":
        for m in methods:
            if m.kind == "run":
                m.overrides.setdefault("teacher.engine", a.engine)
    try:
        veto_ks = [int(k) for k in a.simulated_veto.split(",") if k.strip()]
    except ValueError:
        sys.exit(f"error: --simulated-veto '{a.simulated_veto}' is not a comma-separated list of numbers.")
    for k in veto_ks:
        methods += [Method(f"gold+veto{k}", "run", "gold", veto=k),
                    Method(f"gold+random{k}", "run", "gold", veto=k, veto_order="random"),
                    Method(f"gold+suspect{k}", "run", "gold", veto=k, veto_order="label_prob")]
    settings_of = {m.name: run_settings(m, 0, a.budget, a.rounds, a.probe_share) for m in methods if m.kind == "run"}

    work = Path(a.work)
    cache = Cache(work / "cells")
    # The quick cells (teacher, seeds only) first; then runs seed by seed, so that a stopped benchmark leaves
    # complete, paired comparisons (every method on the same seeds) rather than one method on every seed.
    cells = [(t, m, s) for m in methods if m.kind != "run" for t in tasks for s in seeds]
    cells += [(t, m, s) for s in seeds for t in tasks for m in methods if m.kind == "run"]
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    oracles: dict[str, Oracle] = {}
    started = time.perf_counter()
    bar = tqdm(cells, desc="quality", unit="cell")
    for task, method, seed in bar:
        key = cell_key(task, method, seed, a.budget, a.rounds, a.probe_share)
        bar.set_postfix_str(f"{task.key} {method.name} seed {seed}")
        result = cache.get(key)
        if result is None and a.cached_only:
            continue
        if result is None:
            t0 = time.perf_counter()
            if method.kind == "teacher":
                result = measure_teacher(task, seed)
            elif method.kind == "seeds_only":
                result = measure_seeds_only(task, seed)
            else:
                oracle = None
                if method.veto:
                    if task.key not in oracles:
                        oracles[task.key] = Oracle(task)
                    oracle = oracles[task.key]
                settings = run_settings(method, seed, a.budget, a.rounds, a.probe_share)
                result = measure_run(task, method, settings, work / "homes" / key, key, oracle)
                if oracle is not None:
                    result["oracle_test"] = oracle.test_accuracy
            result["cell_seconds"] = round(time.perf_counter() - t0, 1)
            result["measured_on"] = machine_line(machine())  # a cell measured on a GPU machine says so
            cache.put(key, result)
        results[(task.key, method.name, seed)] = result
        tqdm.write(f"{task.key:<6} {method.name:<18} seed {seed}: " + _cell_line(result))

    info = machine()
    data = read_json(out)
    data["machine"] = machine_line(info)
    data["machine_info"] = info
    data.setdefault("quality_by_budget", {})
    for task in tasks:
        entry = table_entry(task, methods, seeds, results, a, settings_of)
        entry["command"] = "bench/quality.py " + " ".join(sys.argv[1:])  # the file's `command` is the last one
        borrow_budget_free_rows(entry, data["quality_by_budget"], task.key, a.budget)
        data["quality_by_budget"].setdefault(str(a.budget), {})[task.key] = entry
        best = max(int(b) for b, per_task in data["quality_by_budget"].items() if task.key in per_task)
        data.setdefault("quality", {})[task.key] = data["quality_by_budget"][str(best)][task.key]
        print_table(task, entry)
    data["command"] = "bench/quality.py " + " ".join(sys.argv[1:])
    write_json(out, data)
    print(f"\n{machine_line(info)}; {time.perf_counter() - started:.0f} s this invocation; written {out}")


# rows that spend no teacher samples, by the method that measures them
BUDGET_FREE_ROWS = {"teacher": ("teacher_raw", "teacher_calibrated", "teacher_batch_calibrated"),
                    "seeds_only": ("seeds_only",)}
BUDGET_FREE = tuple(name for names in BUDGET_FREE_ROWS.values() for name in names)


def borrow_budget_free_rows(entry: dict[str, Any], by_budget: dict[str, Any], task_key: str, budget: int) -> None:
    """A table at one budget measured without the teacher / seeds-only rows takes them from another budget's table
    of the same task, for the same seeds (they do not depend on the budget), saying where they came from."""
    borrowed: dict[str, list[float]] = {}
    for name in BUDGET_FREE:
        if name in entry:
            continue
        for other_budget, per_task in by_budget.items():
            other = per_task.get(task_key)
            if other_budget == str(budget) or not other or name not in other.get("per_seed", {}):
                continue
            by_seed = dict(zip(other["seeds"], other["per_seed"][name]))
            if all(s in by_seed for s in entry["seeds"]):
                borrowed[name] = vals = [by_seed[s] for s in entry["seeds"]]
                entry[name], entry["spread"][name] = summarize(vals)
                entry.setdefault("borrowed", {})[name] = f"measured with budget {other_budget}"
                break
    entry["per_seed"] = {**borrowed, **entry["per_seed"]}
    # a method whose rows were borrowed for every seed is not "not measured" in this table
    missing = entry.get("missing_seeds") or {}
    for method, names in BUDGET_FREE_ROWS.items():
        if method in missing and any(name in borrowed for name in names):
            del missing[method]
    if "missing_seeds" in entry and not missing:
        del entry["missing_seeds"]


def _cell_line(r: dict[str, Any]) -> str:
    if "test" in r:
        return (f"test {pct(r['test'])}% (curve {[pct(x) for x in r['curve']]}), kept {r['kept']}, rejected "
                f"{r['rejected']}, noise {r['noise']}, gen {r['generate_s']} s, train {r['train_s']} s")
    return ", ".join(f"{k} {pct(v) if k != 'examples_per_s' else round(v, 1)}" for k, v in r.items()
                     if k in BUDGET_FREE + ("examples_per_s",) and v is not None)


def exported_round(cell: dict[str, Any]) -> int | None:
    """The round (1-based) whose student the Export page and `gold export` download by default: the product's own
    rule, `gold.checkpoints.best_round` (best evaluation-row score, the later round on a tie), applied to the cell's
    stored evaluation curve. Why: the tables' headline is the last round's student, but a user downloads this one,
    so the tables also say what that student scores on the test rows."""
    vals = cell.get("val_curve") or []
    if not vals or len(vals) != len(cell.get("curve") or []):
        return None
    rounds = [Round(id=0, run_id=0, n=i + 1, status="done", step="done", metrics=RoundMetrics(metric=v))
              for i, v in enumerate(vals)]
    return best_round(rounds).n


def table_entry(task: BenchTask, methods: list[Method], seeds: list[int], results: dict, a, settings_of) -> dict[str, Any]:
    """The results-format entry for one task: mean % per method, [min, max] spread, and the details."""
    per_seed: dict[str, list[float | None]] = {}
    details: dict[str, Any] = {}
    missing: dict[str, list[int]] = {}
    for m in methods:
        rows = [results[(task.key, m.name, s)] for s in seeds if (task.key, m.name, s) in results]
        if len(rows) < len(seeds):
            missing[m.name] = [s for s in seeds if (task.key, m.name, s) not in results]
        if not rows:
            continue
        if m.kind == "teacher":
            per_seed["teacher_raw"] = [pct(r.get("teacher_raw")) for r in rows]
            if task.spec.kind == "classification":
                per_seed["teacher_calibrated"] = [pct(r.get("teacher_calibrated")) for r in rows]
                per_seed["teacher_batch_calibrated"] = [pct(r.get("teacher_batch_calibrated")) for r in rows]
            details["teacher"] = {"examples_per_s": round(statistics.mean(r["examples_per_s"] for r in rows), 2)}
        elif m.kind == "seeds_only":
            per_seed["seeds_only"] = [pct(r["seeds_only"]) for r in rows]
        else:
            per_seed[m.name] = [pct(r["test"]) for r in rows]
            details[m.name] = {
                "curve": [pct(statistics.mean(c)) for c in zip(*[r["curve"] for r in rows])],
                "generate_s": round(statistics.mean(r["generate_s"] for r in rows), 1),
                "train_s": round(statistics.mean(r["train_s"] for r in rows), 1),
                "kept": round(statistics.mean(r["kept"] for r in rows), 1),
                "rejected": round(statistics.mean(r["rejected"] for r in rows), 1),
                "noise": round(statistics.mean(r["noise"] for r in rows), 1),
                "train_size": round(statistics.mean(r["train_size"] for r in rows), 1),
                "teacher_samples": round(statistics.mean(r["teacher_samples"] for r in rows), 1),
                # the last round's metric on the task's evaluation rows: a second read on rows disjoint from the
                # test rows every default was chosen on (the run sees them only as its per-round metric)
                "eval_rows": pct(statistics.mean(r["val_curve"][-1] for r in rows)) if all(
                    r.get("val_curve") and r["val_curve"][-1] is not None for r in rows) else None,
                "overrides": m.overrides,
            }
            picked = [exported_round(r) for r in rows]
            if all(picked):
                scores = [r["curve"][n - 1] for r, n in zip(rows, picked)]
                details[m.name].update(exported=pct(statistics.mean(scores)),
                                       exported_per_seed=[pct(x) for x in scores], exported_rounds=picked)
            if m.veto:
                details[m.name]["vetoed"] = round(statistics.mean(r["vetoed"] for r in rows), 1)
                details[m.name]["reviewer"] = [r["reviewer"] for r in rows]
                details[m.name]["oracle_test"] = pct(rows[0].get("oracle_test"))
    entry: dict[str, Any] = {}
    spread = {}
    for name, vals in per_seed.items():
        entry[name], spread[name] = summarize(vals)
    if missing:
        entry["missing_seeds"] = missing
    entry.update(spread=spread, per_seed=per_seed, seeds=seeds, budget=a.budget, rounds=a.rounds,
                 teacher_engine=a.engine, **({"llamacpp_teacher": dict(LLAMACPP_TEACHER)} if LLAMACPP_TEACHER else {}),
                 **({"student_every_run": dict(STUDENT_EVERY_RUN)} if STUDENT_EVERY_RUN else {}),
                 probe_share=a.probe_share, test_rows=len(task.test), val_rows=len(task.val),
                 metric="accuracy" if task.spec.kind == "classification" else "exact_match", details=details)
    if "gold" in settings_of:
        s = settings_of["gold"]
        entry["gold_settings"] = {"samples_per_round": s.samples_per_round, "probe_size": s.probe_size,
                                  "band": [s.band_lo, s.band_hi], "noise_filter": s.noise != "keep",
                                  "loss": s.student.loss, "epochs": s.student.epochs, "min_steps": s.student.min_steps}
    return entry


def print_table(task: BenchTask, entry: dict[str, Any]) -> None:
    print(f"\n{task.key}: {entry['metric']} % on {entry['test_rows']} held-out rows, budget {entry['budget']} teacher "
          f"samples, seeds {entry['seeds']}")
    if entry.get("missing_seeds"):
        print(f"not measured (left out of the means): {entry['missing_seeds']}")
    print(f"{'method':<20} {'mean':>6} {'spread':>13}  per seed            gen s   train s  kept  rej  noise  exported")
    for name, vals in entry["per_seed"].items():
        mean, spread = entry[name], entry["spread"][name]
        d = entry["details"].get(name, {})
        extra = (f"{d['generate_s']:>7} {d['train_s']:>8} {d['kept']:>5} {d['rejected']:>4} {d['noise']:>6}"
                 if d else "")
        if d.get("exported") is not None:  # the student Export downloads: best round on the evaluation rows
            extra += f"  {d['exported']} (rounds {d['exported_rounds']})"
        spread_s = f"[{spread[0]}, {spread[1]}]" if spread else "-"
        print(f"{name:<20} {mean if mean is not None else '-':>6} {spread_s:>13}  {str(vals):<18} {extra}")


if __name__ == "__main__":
    main()

"""How should the final student be trained? Re-fit it on the data of finished quality cells with other recipes.

The final round's generation happens before its training, so changing only how the final student is trained
(fresh or warm-started, loss, label smoothing, early stopping on the task's evaluation rows, noise-flagged rows
kept or not) leaves the generated data exactly as it was. Instead of rerunning a whole cell (~5 min of
generation on 2 cores at 256 samples) this script takes each finished cell's store from bench/quality.py,
rebuilds the final training set and trains a student per recipe (~1 min), read on the same held-out test rows.
Every data seed is paired with `--train-seeds` training seeds, because training noise alone moves a student
by several points (docs/architecture.md).

Usage:
  .venv/bin/python bench/quality.py                     # first: the cells (cached under bench/.work/quality)
  .venv/bin/python bench/refit.py                       # every recipe on every finished 256-sample cell
  .venv/bin/python bench/refit.py --recipes fresh_ce,fresh_ce_es --train-seeds 0,1 --tasks sst2
  .venv/bin/python bench/refit.py --recipe mine=trainable:final_fresh=true,loss=ce,label_smoothing=0.2

A recipe is ROWS:key=value,... — ROWS is `trainable` (what the run's last round trained on: seeds + samples
neither vetoed nor flagged as noise), `all` (every kept sample, noise flags ignored) or `relabel` (trainable +
the noise-flagged samples under the label the run's last student predicted: noise strategy `relabel`); keys are
StudentSpec fields on top of the product's defaults, and `rounds=K` or `rounds=J-K` keeps the seeds and only those
rounds' samples; with `trainable`, `noise=NAME` flags the earlier rounds' samples anew with that noise strategy
(gold/strategies/noise), scored by the round before last's student, as the run's select step would have. Soft
labels: a cell whose run stored them trains on them; a hard-label cell trains on the given labels, or, with a
soft_label_weight, on the teacher's read-back computed here. Two kinds train nothing:
`exported` (the round the run's evaluation rows pick, as the Export page does) and `average` (the weight average of
the round students, `gold.students.averaging`; `last=K`: of the last K rounds'; `export=true`: what the Export page
downloads when *Average the rounds* is on, the round its evaluation rows pick with the average standing in for the
last round's student). Writes bench/results/refit.json and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import RESULTS, WORK, machine, machine_line, read_json, write_json  # noqa: I001
from quality import example_task, parse_value
from tqdm import tqdm

from gold.evaluation import evaluate_student
from gold.specs import GoldSettings, StudentSpec

RECIPES = {
    "as_run": "",  # the cell's own final student, as measured by bench/quality.py (no training here)
    "fresh_sce": "trainable:final_fresh=true,loss=sce",
    "fresh_ce": "trainable:final_fresh=true,loss=ce",
    "fresh_ce_all": "all:final_fresh=true,loss=ce",
    "fresh_ce_ls": "trainable:final_fresh=true,loss=ce,label_smoothing=0.1",
    "fresh_ce_es": "trainable:final_fresh=true,loss=ce,early_stopping=true,final_epochs=8",
    "fresh_ce_es_all": "all:final_fresh=true,loss=ce,early_stopping=true,final_epochs=8",
    "warm_es": "trainable:early_stopping=true",
    "warm_soft": "trainable:soft_label_weight=0.5",
    "warm_es_soft": "trainable:early_stopping=true,soft_label_weight=0.5",
    "fresh_ce_soft": "trainable:final_fresh=true,loss=ce,soft_label_weight=0.5",
    "warm_soft_only": "trainable:soft_label_weight=1.0",
    "warm_soft_bc": "trainable:soft_label_weight=0.5,soft_label_calibration=batch",
    "warm_soft_only_bc": "trainable:soft_label_weight=1.0,soft_label_calibration=batch",
    "all_soft_only_bc": "all:soft_label_weight=1.0,soft_label_calibration=batch",
    "warm_relabel": "relabel:",
    "warm_es_relabel": "relabel:early_stopping=true",
    "exported": "exported:",  # the round the run's evaluation rows pick, as the Export page does (no training)
    "average_all": "average:",  # the weight average of every round's student (no training)
    "average_last2": "average:last=2",  # of the last two rounds' students
    "exported_averaged": "average:export=true",  # Export's pick when the last round's student is the average
    "greedy_soup": "average:soup=greedy",  # rounds averaged best-first on the evaluation rows while they help
    "fresh_round1": "trainable:final_fresh=true,rounds=1",  # a fresh student on the seeds and round 1's samples
    "fresh_round4": "trainable:final_fresh=true,rounds=4",  # ... and on round 4's alone
    "reflag_drop": "trainable:noise=drop",  # the earlier rounds flagged anew by energy (the check of the path)
    "reflag_disagreement": "trainable:noise=disagreement",  # ... by the student's disagreement with the target
}


ROW_KINDS = ("trainable", "all", "relabel", "average", "exported")


def parse_recipe(text: str) -> tuple[str, dict[str, Any]]:
    rows, _, pairs = text.partition(":")
    if rows not in ROW_KINDS:
        sys.exit(f"error: recipe '{text}': rows must be one of {', '.join(ROW_KINDS)}.")
    overrides = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        if rows == "average" and key.strip() == "last":
            overrides["last"] = int(value)
            continue
        if rows == "average" and key.strip() == "soup":  # soup=greedy: rounds added best first while they help
            if value.strip() != "greedy":
                sys.exit(f"error: recipe '{text}': soup must be greedy.")
            overrides["soup"] = "greedy"
            continue
        if rows == "average" and key.strip() == "export":
            overrides["export"] = parse_value(value) is True
            continue
        if rows == "trainable" and key.strip() == "noise":  # flag the earlier rounds' samples anew (`reflagged`)
            from gold.strategies import NOISE
            if value.strip() not in NOISE:
                sys.exit(f"error: recipe '{text}': noise must be one of {', '.join(NOISE)}.")
            overrides["noise"] = value.strip()
            continue
        if rows != "average" and key.strip() == "rounds":  # e.g. rounds=1 or rounds=1-2: only these rounds' samples
            lo, _, hi = value.partition("-")
            overrides["rounds"] = list(range(int(lo), int(hi or lo) + 1))
            continue
        if key.strip() not in StudentSpec.__dataclass_fields__:
            sys.exit(f"error: recipe '{text}': '{key}' is not a student setting.")
        overrides[key.strip()] = parse_value(value)
    return rows, overrides


def finished_cells(work: Path, task: str, method: str, budget: int, seed: int) -> list[Path]:
    """The homes of finished cells of this task/method/seed/budget, newest first (their keys hash the settings
    they ran with; any finished one is a valid source of data)."""
    homes = sorted(work.glob(f"homes/{task}-{method}-s{seed}-b{budget}-*"), key=lambda p: p.stat().st_mtime,
                   reverse=True)
    return [h for h in homes if (work / "cells" / f"{h.name}.json").exists()]


def from_rounds(home: Path, bench_task, rows_kind: str, last: int = 0, export: bool = False,
                soup: str = "") -> dict[str, Any]:
    """A final student made of the cell's saved round students, with no training: `exported`, the round whose
    student the run's own evaluation rows score best (the latest of ties, as the Export page picks); `average`,
    the weight average of every round's student (`last` K > 0: of the last K rounds'). `export` (with `average`):
    the averaged student is the last round's, as a run with `student.average_rounds` saves it, scored on the run's
    evaluation rows as its measure step would, and the result is the round Export then picks."""
    from gold.checkpoints import load_checkpoint
    from gold.export import pick_round
    from gold.students.averaging import average_students
    from gold.store import Store

    store = Store(home)
    try:
        run_id = store.list_runs()[0].id
        rounds = [r.n for r in store.rounds(run_id)]
        if rows_kind == "exported":
            n = pick_round(store, run_id).n
            return {"test": evaluate_student(load_checkpoint(store, run_id, n), bench_task.spec, bench_task.test),
                    "round": n}
        if soup == "greedy":
            return greedy_soup(store, run_id, bench_task)
        picked = rounds[-last:] if last else rounds
        t0 = time.perf_counter()
        student = average_students([load_checkpoint(store, run_id, n) for n in picked])
        test = evaluate_student(student, bench_task.spec, bench_task.test)
        out = {"test": test, "rounds": picked}
        if export:
            out.update(export_with_average(store, run_id, student, test, bench_task))
        return {**out, "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        store.close()


def greedy_soup(store, run_id: int, bench_task) -> dict[str, Any]:
    """A greedy soup of the rounds' students (Wortsman et al., 2022): the rounds in order of their score on the
    run's evaluation rows (best first, the later on a tie), each added to the average only if the average then
    scores at least as well on those rows. Starts from the round Export picks, so on the evaluation rows it is never
    below the exported student."""
    from gold.checkpoints import load_checkpoint
    from gold.steering import evaluation_rows
    from gold.students.averaging import average_students

    t0 = time.perf_counter()
    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    rows, _ = evaluation_rows(task, GoldSettings.from_dict(run.settings))
    done = [r for r in store.rounds(run_id) if r.status == "done" and r.metrics.metric is not None]
    order = sorted(done, key=lambda r: (r.metrics.metric, r.n), reverse=True)
    ingredients, best = [order[0].n], order[0].metrics.metric
    soup = load_checkpoint(store, run_id, order[0].n)
    tried = {}
    for r in order[1:]:
        candidate = average_students([load_checkpoint(store, run_id, k) for k in (*ingredients, r.n)])
        score = evaluate_student(candidate, task, rows)
        tried[r.n] = score
        if score >= best:
            ingredients, best, soup = [*ingredients, r.n], score, candidate
    return {"test": evaluate_student(soup, bench_task.spec, bench_task.test), "rounds": ingredients,
            "soup_eval": best, "tried": tried, "seconds": round(time.perf_counter() - t0, 1)}


def export_with_average(store, run_id: int, averaged, averaged_test: float, bench_task) -> dict[str, Any]:
    """What Export picks when the last round saved `averaged`: the best on the run's evaluation rows (the later
    round on a tie) among the earlier rounds' measured students and the average, scored on the rows the run's
    measure step used. Its test accuracy becomes the result's `test`; the average's own stays as `average_test`."""
    from gold.checkpoints import best_round, load_checkpoint
    from gold.steering import evaluation_rows

    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    rows, _ = evaluation_rows(task, GoldSettings.from_dict(run.settings))
    rounds = [r for r in store.rounds(run_id) if r.status == "done"]
    last = rounds[-1]
    rounds[-1] = replace(last, metrics=replace(last.metrics, metric=evaluate_student(averaged, task, rows)))
    pick = best_round(rounds).n  # Export's own rule
    test = averaged_test if pick == last.n else evaluate_student(
        load_checkpoint(store, run_id, pick), bench_task.spec, bench_task.test)
    return {"test": test, "average_test": averaged_test, "round": pick,
            "eval": {r.n: r.metrics.metric for r in rounds}}


def refit(home: Path, bench_task, rows_kind: str, overrides: dict[str, Any], train_seed: int) -> dict[str, Any]:
    """One recipe on one cell: the product's train step (its training set, its recipe for the final round, its
    student constructor), with the recipe's StudentSpec fields on top and, for training seeds after the first, the
    seed moved by 7919 per training seed (training seed 0 trains exactly as the run's last round did)."""
    from gold import layout
    from gold.checkpoints import new_student
    from gold.records import Sample
    from gold.steps.train import training_args, training_set
    from gold.store import Store
    from gold.students.base import TrainExample

    store = Store(home)
    try:
        run = store.get_run(store.list_runs()[0].id)
        only_rounds = overrides.pop("rounds", None)
        reflag = overrides.pop("noise", None)
        spec = replace(StudentSpec(), **overrides)
        # ROWS: trainable = the run's own noise strategy; relabel = the noise rows under the last student's label
        stored = GoldSettings.from_dict(run.settings)
        settings = replace(stored, student=spec, noise="relabel" if rows_kind == "relabel" else stored.noise)
        task = store.get_task(run.task_id).spec
        if rows_kind == "all" or reflag:  # every kept sample (noise flags ignored), or those the strategy keeps
            rows: list[Sample] = (reflagged(store, run.id, task, settings, reflag) if reflag
                                  else store.samples(run.id, role="train", kept_only=True))
            train = [TrainExample(task.format_input(ex.inputs), ex.output) for ex in task.seeds]
            train += [TrainExample(task.format_input(r.inputs), r.output) for r in rows]
        else:
            train = training_set(store, run.id, task, settings).rows
            rows = store.samples(run.id, trainable_only=True)
        if any(r.teacher_probs for r in rows):  # a soft-label cell: the probabilities its run stored and trained on
            soft = {str(r.id): r.teacher_probs for r in rows}
        elif overrides.get("soft_label_weight"):
            if overrides.get("soft_label_calibration") == "batch":  # over each round's samples, as a run does
                every = store.samples(run.id, role="train", kept_only=True)
                soft = batch_calibrated(task, every, teacher_probs(home, task, every, settings.seed))
            else:
                soft = teacher_probs(home, task, rows, settings.seed)
        else:
            soft = {}
        # a hard-label cell: the recipe's soft labels (the teacher's read-back, cached per cell)
        by_text = {task.format_input(r.inputs): soft.get(str(r.id)) for r in rows}
        train = [replace(t, soft=by_text.get(t.text)) for t in train]
        if only_rounds:  # the seeds and these rounds' samples
            round_of = {task.format_input(r.inputs): r.round for r in rows}
            train = [t for t in train if round_of.get(t.text, only_rounds[0]) in only_rounds]
        last = settings.rounds
        prev = layout.checkpoint_dir(store.run_dir(run.id), last - 1)
        args = training_args(settings, spec.warm_start and prev.exists(), last)
        args = replace(args, seed=args.seed + 7919 * train_seed)
        student = new_student(task, settings, prev if args.warm_start else None)
        judge = [TrainExample(task.format_input(ex.inputs), ex.output) for ex in task.eval_set]
        t0 = time.perf_counter()
        report = student.fit(train, args, eval_examples=judge)
        return {"test": evaluate_student(student, task, bench_task.test), "train_rows": len(train),
                "steps": report.steps, "best_step": report.best_step, "eval_history": report.eval_history,
                "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        store.close()


def reflagged(store, run_id: int, task, settings: GoldSettings, noise: str) -> list:
    """The samples the last round would have trained on had the run's select steps used the noise strategy
    `noise`: the earlier rounds' kept training samples (not vetoed) are scored by the round before last's student
    and flagged by the strategy, as that round's select step did with the run's own strategy; the last round's
    samples, generated after that select step, all train. (The store's flags are the last round's own select
    step's, made after its training: the run's last student trained on the flags before them.)"""
    from gold.checkpoints import load_checkpoint
    from gold.store import training_roles
    from gold.strategies import noise_strategy

    last = settings.rounds
    roles = training_roles(settings.train_on_probes)
    kept = [r for r in store.samples(run_id, kept_only=True) if r.role in roles and not r.vetoed]
    earlier = [r for r in kept if r.round < last]
    student = load_checkpoint(store, run_id, last - 1)
    scored = student.score([task.format_input(r.inputs) for r in earlier], temperature=settings.energy_temperature)
    earlier = [replace(r, energy=float(e)) for r, e in zip(earlier, scored.energy)]
    flagged = set(noise_strategy(noise).flag(earlier, task, settings, student=lambda: student))
    return [r for r in kept if r.id not in flagged]


def teacher_probs(home: Path, task, rows: list, seed: int) -> dict[str, list[float]]:
    """The teacher's calibrated label probabilities for a cell's samples (by sample id), computed once per cell."""
    from gold.teachers import fewshot
    from gold.teachers.local import LocalTeacher

    path = home.parent.parent / "refit" / f"{home.name}-teacher-probs.json"
    cached = read_json(path)
    missing = [r for r in rows if str(r.id) not in cached]
    if missing:
        p = fewshot.label_probs(LocalTeacher.cached(), task, [r.inputs for r in missing], seed=seed)
        cached.update({str(r.id): [round(float(x), 5) for x in row] for r, row in zip(missing, p.calibrated)})
        write_json(path, cached)
    return cached


def batch_calibrated(task, rows: list, soft: dict[str, list[float]]) -> dict[str, list[float]]:
    """The cached (contextually calibrated) probabilities re-calibrated as a run with soft_label_calibration=batch
    stores them: per round, over every sample that round kept (`fewshot.match_prior` to the mix of labels asked
    for, as the label step does; the noise flags come after). Prior matching fixes one weight per label, so
    contextual or raw probabilities give the same."""
    import numpy as np

    from gold.teachers import fewshot

    out: dict[str, list[float]] = {}
    for n in sorted({r.round for r in rows}):
        group = [r for r in rows if r.round == n and str(r.id) in soft]
        if group:
            probs = fewshot.match_prior(np.array([soft[str(r.id)] for r in group]),
                                        fewshot.label_mix(task, [r.output for r in group]))
            out.update({str(r.id): q.round(5).tolist() for r, q in zip(group, probs)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="sst2,trec")
    ap.add_argument("--methods", default="baseline,gold", help="the quality cells' methods whose data is re-fitted")
    ap.add_argument("--seeds", default="0,1,2", help="data seeds (the cells')")
    ap.add_argument("--train-seeds", default="0", help="training seeds per data seed")
    ap.add_argument("--budget", type=int, default=256)
    ap.add_argument("--test-rows", type=int, default=200, help="as bench/quality.py was run")
    ap.add_argument("--recipes", default=",".join(RECIPES), help="subset of: " + ", ".join(RECIPES))
    ap.add_argument("--recipe", action="append", default=[], metavar="NAME=ROWS:k=v,...", help="an extra recipe")
    ap.add_argument("--work", default=str(WORK / "quality"))
    ap.add_argument("--out", default=str(RESULTS / "refit.json"))
    ap.add_argument("--cached-only", action="store_true", help="fit nothing: the table from the fits already done")
    ap.add_argument("--every-cell", action="store_true",
                    help="every finished cell of a task/method/seed (cells of other settings, e.g. teacher weights), "
                         "not only the newest")
    a = ap.parse_args()

    recipes: dict[str, str] = {}
    for name in filter(None, a.recipes.split(",")):
        if name not in RECIPES:
            sys.exit(f"error: unknown recipe '{name}'; choose from {', '.join(RECIPES)} or add one with --recipe.")
        recipes[name] = RECIPES[name]
    for text in a.recipe:
        name, _, body = text.partition("=")
        recipes[name.strip()] = body
    parsed = {name: parse_recipe(body) for name, body in recipes.items() if body}
    work = Path(a.work)
    cache_dir = work / "refit"
    seeds = [int(s) for s in a.seeds.split(",")]
    train_seeds = [int(s) for s in a.train_seeds.split(",")]

    jobs = []
    for task_key in a.tasks.split(","):
        bench_task = example_task(task_key, a.test_rows)
        for seed in seeds:
            for method in a.methods.split(","):
                homes = finished_cells(work, task_key, method, a.budget, seed)
                if not homes:
                    print(f"no finished {task_key}/{method} cell for seed {seed} at budget {a.budget}: skipped")
                    continue
                for home in (homes if a.every_cell else homes[:1]):
                    for name in recipes:
                        untrained = name == "as_run" or parsed.get(name, ("",))[0] in ("average", "exported")
                        for ts in ([0] if untrained else train_seeds):
                            jobs.append((bench_task, method, seed, home, name, ts))

    results: dict[str, Any] = {}
    started = time.perf_counter()
    bar = tqdm(jobs, desc="refit", unit="fit")
    for bench_task, method, seed, home, name, ts in bar:
        body = recipes[name]
        ident = f"{home.name}|{name}|{body}|t{ts}"
        bar.set_postfix_str(f"{bench_task.key} {method} s{seed} {name} t{ts}")
        cached = read_json(cache_dir / f"{home.name}-{name}-t{ts}.json")
        if cached.get("ident") == ident:
            r = cached
        elif a.cached_only and name != "as_run":
            continue
        elif name == "as_run":
            r = {"ident": ident, "test": read_json(work / "cells" / f"{home.name}.json")["test"]}
        else:
            rows_kind, overrides = parsed[name]
            if rows_kind in ("average", "exported"):
                r = {"ident": ident, **from_rounds(home, bench_task, rows_kind, overrides.get("last", 0),
                                                   overrides.get("export", False), overrides.get("soup", ""))}
            else:
                r = {"ident": ident, **refit(home, bench_task, rows_kind, dict(overrides), ts)}
            write_json(cache_dir / f"{home.name}-{name}-t{ts}.json", r)
        cell = f"s{seed}@{home.name.rsplit('-', 1)[-1]}" if a.every_cell else f"s{seed}"
        results[f"{bench_task.key}|{method}|{name}|{cell}|t{ts}"] = {"test": r["test"], "best_step": r.get("best_step"),
                                                                       "seconds": r.get("seconds")}
        tqdm.write(f"{bench_task.key:<5} {method:<9} s{seed} t{ts} {name:<16} test {100 * r['test']:.1f}%"
                   + (f" (best step {r['best_step']})" if r.get("best_step") else ""))

    table: dict[str, Any] = {}
    for key, r in results.items():
        task_key, method, name, _, _ = key.split("|")
        table.setdefault(task_key, {}).setdefault(name, {}).setdefault(method, []).append(100 * r["test"])
    print()
    for task_key, per_recipe in table.items():
        methods = sorted({m for v in per_recipe.values() for m in v})
        print(f"{task_key}: test accuracy %, mean [min, max] over data seeds × training seeds")
        print(f"{'recipe':<18}" + "".join(f"{m:>24}" for m in methods))
        for name, per_method in per_recipe.items():
            cells = []
            for m in methods:
                v = per_method.get(m, [])
                cells.append(f"{statistics.mean(v):.1f} [{min(v):.1f}, {max(v):.1f}] n{len(v)}" if v else "-")
            print(f"{name:<18}" + "".join(f"{c:>24}" for c in cells))
        print()
    summary = {t: {name: {m: {"mean": round(statistics.mean(v), 1), "spread": [round(min(v), 1), round(max(v), 1)],
                              "n": len(v)} for m, v in pm.items()} for name, pm in pr.items()} for t, pr in table.items()}
    info = machine()
    write_json(Path(a.out), {"machine": machine_line(info), "budget": a.budget, "recipes": {**RECIPES, **recipes},
                             "summary": summary, "cells": results, "command": "bench/refit.py " + " ".join(sys.argv[1:])})
    print(f"{machine_line(info)}; {time.perf_counter() - started:.0f} s; written {a.out}")


if __name__ == "__main__":
    main()

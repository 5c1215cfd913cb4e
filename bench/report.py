"""The README's benchmark tables, printed as Markdown from bench/results/*.json (so the README shows what the
scripts measured, not numbers typed by hand).

Usage: .venv/bin/python bench/report.py [--quality bench/results/quality.json] [--speed bench/results/speed.json]
                                        [--refit bench/results/refit*.json] [--veto bench/results/quality_veto.json]
                                        [--label-choice bench/results/label_choice*.json]
       .venv/bin/python bench/report.py --combine A.json B.json --quality C.json   # two invocations as one table
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from pathlib import Path

from common import RESULTS, read_json, write_json

LABELS = {
    "teacher_raw": "teacher few-shot (label log-likelihood, raw)",
    "teacher_calibrated": "teacher few-shot, contextually calibrated",
    "teacher_batch_calibrated": "teacher few-shot, batch-calibrated",
    "seeds_only": "student on the seeds only",
    "baseline": "student, plain generation (baseline; soft labels, as the defaults)",
    "gold": "student, GOLD (product defaults: soft labels, batch-calibrated)",
    "baseline_hard": "student, plain generation, hard labels (soft-label weight 0)",
    "gold_hard": "student, GOLD, hard labels (soft-label weight 0)",
}
SPEED = [
    ("teacher_batched_over_single", "teacher generation, batch 16 over batch 1 (tokens/s)", "≥ 4", ">="),
    ("student_train_ex_per_s", "student training, examples/s", "≥ 75", ">="),
    ("student_infer_ex_per_s", "student inference, examples/s", "", ""),
    ("student_over_teacher_speedup", "per-example latency, teacher few-shot over student", "≥ 100", ">="),
    ("round_64_s", "one default GOLD round (64 samples + 16 probes, read back, train, score), its own path, s",
     "≤ 90", "<="),
    ("round_64_map_s", "its map, drawn while the next round runs, s", "", ""),
    ("umap_2k_warm_s", "UMAP layout of 2,000 samples, warm, s", "", ""),
    ("umap_10k_warm_s", "UMAP layout of 10,000 samples, warm, s", "", ""),
    ("explore_10k_render_s", "Explore page with 10,000 samples, server-side render, s", "≤ 2", "<="),
    ("peak_rss_mb", "peak memory of a process holding teacher + student + map, MB", "", ""),
]


def engine_note(entry: dict) -> str:
    """Tables measured with the llama.cpp teacher say so (same GGUF and recipe, different sampling stream)."""
    engine = entry.get("teacher_engine", "transformers")
    return "" if engine == "transformers" else f", teacher on {engine}"


# Two-sided 95% Student t quantiles by degrees of freedom: the interval of a mean over a handful of seeds.
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def interval_half(diffs: list[float]) -> float | None:
    """Half the 95% t-interval of the mean of `diffs` over seeds; None for fewer than 2."""
    if len(diffs) < 2:
        return None
    m = sum(diffs) / len(diffs)
    sd = (sum((d - m) ** 2 for d in diffs) / (len(diffs) - 1)) ** 0.5
    return T95.get(len(diffs) - 1, 1.96) * sd / len(diffs) ** 0.5


def seeds_of(e: dict, name: str) -> list[int]:
    """The seeds a method's per-seed values belong to (its missing seeds are left out of them)."""
    missing = set((e.get("missing_seeds") or {}).get(name, []))
    return [s for s in e["seeds"] if s not in missing]


def reference_of(e: dict, name: str) -> str | None:
    """The plain-generation row a run is compared with: the hard-label baseline for a hard-label row, else the
    defaults' baseline."""
    if name in ("baseline", "baseline_hard") or name not in e.get("details", {}):
        return None
    hard = e["details"][name].get("overrides", {}).get("student.soft_label_weight") == 0
    ref = "baseline_hard" if hard and "baseline_hard" in e["per_seed"] else "baseline"
    return ref if ref in e["per_seed"] else None


def values_of(e: dict, name: str, exported: bool = False) -> list | None:
    """A row's per-seed test accuracies: of the last round's student, or of the exported one (the round Export
    picks on the evaluation rows, `quality.exported_round`)."""
    if exported:
        return e.get("details", {}).get(name, {}).get("exported_per_seed")
    return e["per_seed"].get(name)


def paired(e: dict, name: str, exported: bool = False) -> str:
    """A run row minus plain generation on the same seeds: mean difference, its 95% t-interval over seeds (n ≥ 2)
    and wins–losses. Why: with 200 test rows and 2–3 seeds most differences in these tables are inside the
    noise, and this says which. `exported` compares the students Export downloads instead of the last rounds'."""
    ref = reference_of(e, name)
    if ref is None:
        return ""
    mine_vals, their_vals = values_of(e, name, exported), values_of(e, ref, exported)
    if mine_vals is None or their_vals is None:
        return ""
    mine = dict(zip(seeds_of(e, name), mine_vals))
    theirs = dict(zip(seeds_of(e, ref), their_vals))
    diffs = [mine[s] - theirs[s] for s in mine if s in theirs and mine[s] is not None and theirs[s] is not None]
    if not diffs:
        return ""
    m = sum(diffs) / len(diffs)
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    text = f"{m:+.1f}"
    half = interval_half(diffs)
    if half is not None:
        text += f" [{m - half:+.1f}, {m + half:+.1f}]"
    return f"{text} ({wins}–{losses}{', vs hard-label baseline' if ref == 'baseline_hard' else ''})"


def exported_cell(e: dict, name: str) -> str:
    """The exported student's mean test accuracy, the round picked per seed, and its paired difference from plain
    generation's exported student."""
    d = e.get("details", {}).get(name, {})
    if d.get("exported") is None:
        return ""
    diff = paired(e, name, exported=True)
    return f"{d['exported']} (rounds {', '.join(map(str, d['exported_rounds']))})" + (f"; {diff}" if diff else "")


def quality_tables(data: dict) -> str:
    out = []
    for budget, per_task in sorted(data.get("quality_by_budget", {}).items(), key=lambda kv: int(kv[0])):
        for task, e in per_task.items():
            out.append(f"**{task}**, {e['metric']} on {e['test_rows']} held-out dev rows, {budget} teacher samples per "
                       f"method ({e['rounds']} rounds), seeds {e['seeds']}"
                       + engine_note(e) + (f" (`{e['command']}`)" if e.get("command") else "") + ":\n")
            out.append("| method | mean % | min–max over seeds | per seed | − plain generation, same seeds: mean [95% CI] "
                       "(wins–losses) | exported student % (round picked on the evaluation rows); − plain generation "
                       "| evaluation rows % | generate s | train s | kept | noise flagged |")
            out.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for name, vals in e["per_seed"].items():
                spread = e["spread"].get(name)
                d = e["details"].get(name, {})
                cells = [str(d.get("eval_rows") or ""), f"{d['generate_s']:.0f}", f"{d['train_s']:.0f}",
                         f"{d['kept']:.0f}", f"{d['noise']:.0f}"] if "generate_s" in d else ["", "", "", "", ""]
                label = LABELS.get(name, f"`{name}`" + (f" ({', '.join(f'{k}={v}' for k, v in d.get('overrides', {}).items())})"
                                                       if d.get("overrides") else ""))
                spread_s = f"{spread[0]}–{spread[1]}" if spread else ""
                out.append(f"| {label} | {e[name]} | {spread_s} | {', '.join(map(str, vals))} | {paired(e, name)} | "
                           f"{exported_cell(e, name)} | "
                           + " | ".join(cells) + " |")
            if e.get("missing_seeds"):
                out.append(f"\nNot measured (left out of the means): {e['missing_seeds']}.")
            out.append("")
    return "\n".join(out)


# the entry fields two quality results must share for their cells to be one table's
COMPARABLE = ("budget", "rounds", "probe_share", "test_rows", "teacher_engine", "metric")


def method_of(row: str) -> str:
    """The bench method that measures a table row (the teacher's three rows come from one cell per seed)."""
    return "teacher" if row.startswith("teacher_") else row


def row_seeds(e: dict, row: str) -> list[int]:
    """The seeds a row's per-seed values belong to."""
    missing = set((e.get("missing_seeds") or {}).get(method_of(row), []))
    return [s for s in e["seeds"] if s not in missing]


def combine_entries(entries: list[dict]) -> tuple[dict, list[str]]:
    """One task's quality entries, measured by separate `bench/quality.py` invocations at the same budget, as one
    entry: each row (method) taken whole from the entry that measured it on the most seeds (the later on a tie),
    with its details; a row that other entries measured on further seeds (seeds run in separate lanes) is joined
    seed by seed instead (`join_row`). Why this is sound: a cell is a deterministic function of its key (task,
    method settings, seed, budget), so a method measured in two invocations gives the same numbers; where two
    entries hold the same row and seed they must agree, and the second list returned names every disagreement (an
    empty list means the entries reproduced each other wherever they met)."""
    first = entries[0]
    for e in entries[1:]:
        differ = [k for k in COMPARABLE if e.get(k) != first.get(k)]
        if differ:
            raise ValueError(f"these results are not one table: they differ in {', '.join(differ)}")
    seen: dict[tuple[str, int], float | None] = {}
    problems: list[str] = []
    source: dict[str, dict] = {}
    for e in entries:
        for row, vals in e["per_seed"].items():
            for seed, v in zip(row_seeds(e, row), vals):
                if (row, seed) in seen and seen[(row, seed)] != v:
                    problems.append(f"{row} seed {seed}: {seen[(row, seed)]} and {v}")
                seen[(row, seed)] = v
            if row not in source or len(row_seeds(e, row)) >= len(row_seeds(source[row], row)):
                source[row] = e
    seeds = sorted({s for e in entries for s in e["seeds"]})
    out = {k: first.get(k) for k in (*COMPARABLE, "val_rows")}
    out.update(seeds=seeds, per_seed={}, spread={}, details={}, missing_seeds={},
               command=" + ".join(dict.fromkeys(e["command"] for e in entries if e.get("command"))))
    for row, e in source.items():
        holders = [x for x in entries if row in x["per_seed"]]
        union = {sd for x in holders for sd in row_seeds(x, row)}
        if len(union) > len(row_seeds(e, row)):
            have, joined = join_row(row, holders)
            out["per_seed"][row], out[row], out["spread"][row] = joined["per_seed"], joined["mean"], joined["spread"]
            if joined["details"] is not None:
                out["details"][method_of(row)] = joined["details"]
        else:
            have = row_seeds(e, row)
            out["per_seed"][row] = e["per_seed"][row]
            out[row], out["spread"][row] = e[row], e["spread"].get(row)
            if method_of(row) in e.get("details", {}):
                out["details"][method_of(row)] = e["details"][method_of(row)]
        if len(have) < len(seeds):
            out["missing_seeds"][method_of(row)] = [s for s in seeds if s not in have]
    if not out["missing_seeds"]:
        del out["missing_seeds"]
    return out, problems


PER_SEED_DETAILS = ("exported_per_seed", "exported_rounds")


def join_row(row: str, holders: list[dict]) -> tuple[list[int], dict]:
    """A row measured on different seeds by different entries, joined seed by seed: each seed's value from the
    entry with the most seeds that holds it; the mean and [min, max] over the joined seeds; the method's details
    with per-seed lists joined the same way, `exported` the mean of the joined exported students, and every other
    number (and list of numbers, as the per-round curve) the seed-weighted mean of the entries' means."""
    owner: dict[int, dict] = {}
    for e in sorted(holders, key=lambda x: -len(row_seeds(x, row))):
        for sd in row_seeds(e, row):
            owner.setdefault(sd, e)
    have = sorted(owner)
    values = [owner[sd]["per_seed"][row][row_seeds(owner[sd], row).index(sd)] for sd in have]
    known = [v for v in values if v is not None]
    mean = round(statistics.mean(known), 1) if known else None
    spread = [min(known), max(known)] if known else None
    m = method_of(row)
    sources = list({id(owner[sd]): owner[sd] for sd in have}.values())  # in seed order, each entry once
    weights = Counter(id(owner[sd]) for sd in have)  # seeds each entry gives
    with_details = [e for e in sources if m in e.get("details", {})]
    if not with_details:
        return have, {"per_seed": values, "mean": mean, "spread": spread, "details": None}
    details: dict = {}
    for key in dict.fromkeys(k for e in with_details for k in e["details"][m]):
        got = [(e, e["details"][m][key]) for e in with_details if key in e["details"][m]]
        if key in PER_SEED_DETAILS and len(got) == len(with_details):
            details[key] = [owner[sd]["details"][m][key][row_seeds(owner[sd], row).index(sd)] for sd in have]
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for _, v in got):
            total = sum(weights[id(e)] for e, _ in got)
            details[key] = round(sum(weights[id(e)] * v for e, v in got) / total, 1)
        elif all(isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v) for _, v in got) and \
                len({len(v) for _, v in got}) == 1:
            total = sum(weights[id(e)] for e, _ in got)
            details[key] = [round(sum(weights[id(e)] * v[i] for e, v in got) / total, 1) for i in range(len(got[0][1]))]
        else:
            details[key] = got[0][1]
    if "exported_per_seed" in details and "exported" in details:
        details["exported"] = round(statistics.mean(details["exported_per_seed"]), 1)
    return have, {"per_seed": values, "mean": mean, "spread": spread, "details": details}


def combine_quality(datas: list[dict]) -> tuple[dict, list[str]]:
    """Quality results files as one (`combine_entries` per budget and task)."""
    out: dict = {"quality_by_budget": {}, "combined_from": [d.get("command") for d in datas]}
    problems: list[str] = []
    keys = {(b, t) for d in datas for b, per_task in d.get("quality_by_budget", {}).items() for t in per_task}
    for budget, task in sorted(keys):
        entries = [d["quality_by_budget"][budget][task] for d in datas if task in d["quality_by_budget"].get(budget, {})]
        entry, bad = combine_entries(entries)
        out["quality_by_budget"].setdefault(budget, {})[task] = entry
        problems += [f"{task}, {budget} samples, {b}" for b in bad]
    out["machine"] = datas[-1].get("machine")
    return out, problems


def refit_tables(data: dict) -> str:
    """bench/refit.py: how the final student is trained, on the same generated data (one table per task)."""
    out = []
    recipes = data.get("recipes", {})
    for task, per_recipe in data.get("summary", {}).items():
        methods = sorted({m for v in per_recipe.values() for m in v})
        out.append(f"**{task}**, final student re-trained on each finished {data.get('budget')}-sample cell's data "
                   "(test %, mean and min–max over data seeds × training seeds):\n")
        out.append("| recipe | rows : settings | " + " | ".join(methods) + " |")
        out.append("|---|---|" + "---|" * len(methods))
        for name, per_method in per_recipe.items():
            cells = []
            for m in methods:
                v = per_method.get(m)
                cells.append(f"{v['mean']} ({v['spread'][0]}–{v['spread'][1]}, n={v['n']})" if v else "")
            body = recipes.get(name) or "the run's own final student"
            out.append(f"| `{name}` | {body} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def veto_table(data: dict) -> str:
    """bench/quality.py --simulated-veto: accuracy and the reviewer's work, energy order against random order."""
    out = []
    for budget, per_task in sorted(data.get("quality_by_budget", {}).items(), key=lambda kv: int(kv[0])):
        for task, e in per_task.items():
            ks = sorted({int(m[len("gold+veto"):]) for m in e["per_seed"] if m.startswith("gold+veto")})
            if not ks:
                continue
            base = e.get("gold")
            out.append(f"**{task}**, {budget} samples, seeds {e['seeds']}; no reviewer: {base}% "
                       f"(reference classifier for \"wrong\": {e['details'][f'gold+veto{ks[0]}'].get('oracle_test')}% "
                       "on the test rows):\n")
            out.append("| looked at per round (K) | energy order: test % | vetoed | random order: test % | vetoed "
                       "| least-believed label first: test % | vetoed |")
            out.append("|---|---|---|---|---|---|---|")
            for k in ks:
                cells = []
                for name in (f"gold+veto{k}", f"gold+random{k}", f"gold+suspect{k}"):
                    d = e["details"].get(name, {})
                    cells += [str(e.get(name, "")), str(d.get("vetoed", ""))]
                out.append(f"| {k} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)


def label_choice_table(data: dict) -> str:
    """bench/label_choice.py: soft or hard labels chosen per run on the evaluation rows, against either fixed."""
    out = [f"{data['budget']} samples per method; test % on the 200 held-out rows, mean over the seeds; the pick "
           "per seed (round 1 / at the end):\n",
           "| task | method | soft labels (default) | hard labels | chosen on round 1 | chosen at the end (2 runs) | picks |",
           "|---|---|---|---|---|---|---|"]
    for task, by_base in data.get("label_choice", {}).items():
        for base, e in by_base.items():
            picks = ", ".join(f"s{r['seed']} {r['picked_round1']} / {r['picked_end']}" for r in e["rows"])
            out.append(f"| {task} | {base} | {e['mean_soft']} | {e['mean_hard']} | {e['mean_chosen_round1']} | "
                       f"{e['mean_chosen_end']} | {picks} |")
    return "\n".join(out) + "\n"


def speed_table(data: dict) -> str:
    out = ["| measure | value | target |", "|---|---|---|"]
    for key, label, target, op in SPEED:
        if key not in data:
            continue
        value = data[key]
        mark = ""
        if op:
            ok = value >= float(target[2:]) if op == ">=" else value <= float(target[2:])
            mark = " met" if ok else " **missed**"
        out.append(f"| {label} (`{key}`) | {value} | {target}{mark} |")
    t = data.get("teacher", {})
    if t:
        out.append(f"\nTeacher generation: batch 1 {t['single']['tokens_per_s']:.1f} tokens/s "
                   f"({t['single']['samples_per_s']:.2f} samples/s), batch {t['batched']['batch']} "
                   f"{t['batched']['tokens_per_s']:.1f} tokens/s ({t['batched']['samples_per_s']:.2f} samples/s).")
    return "\n".join(out)


def engines_table(d: dict) -> str:
    """bench/teacher_engines.py: the two local engines on the same prompts, per thread count."""
    out = [f"{d['prompts']} generation prompts (SST-2 + TREC), the product's sampling recipe; best of "
           f"{len(next(iter(d['by_threads'].values()))['transformers']['passes'])} alternating passes:\n",
           "| threads | engine | samples/s | tokens/s | load s | tokens per reply | ended at the stop | distinct |",
           "|---|---|---|---|---|---|---|---|"]
    for threads, row in d["by_threads"].items():
        for name in ("transformers", "llama.cpp"):
            r = row[name]
            out.append(f"| {threads} | {name} | {r['samples_per_s']:.2f} | {r['tokens_per_s']:.1f} | {r['load_s']:.1f} | "
                       f"{r['mean_tokens']:.1f} | {r['stopped_share']:.2f} | {r['distinct_share']:.2f} |")
        out.append(f"| {threads} | **llama.cpp / transformers** | **{row['llama_over_transformers']}×** | | | | | |")
    return "\n".join(out)


def section(title: str, data: dict, script: str, render) -> None:
    """One results file's tables under a line naming the machine and the command that measured them."""
    if data:
        print(f"{title} ({data.get('machine', '?')}; `{data.get('command', script)}`):\n")
        print(render(data))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", default=str(RESULTS / "quality.json"))
    ap.add_argument("--speed", default=str(RESULTS / "speed.json"))
    ap.add_argument("--refit", nargs="*", default=[str(p) for p in sorted(RESULTS.glob("refit*.json"))])
    ap.add_argument("--veto", default=str(RESULTS / "quality_veto.json"))
    ap.add_argument("--label-choice", nargs="*", default=[str(p) for p in sorted(RESULTS.glob("label_choice*.json"))])
    ap.add_argument("--engines", default=str(RESULTS / "teacher_engines.json"))
    ap.add_argument("--combine", nargs="+", metavar="RESULTS.json",
                    help="quality results of separate bench/quality.py invocations (same budget and settings) to "
                         "write as one file, --quality, and print; refused where they disagree on a cell")
    a = ap.parse_args()
    if a.combine:
        try:
            combined, problems = combine_quality([read_json(Path(p)) for p in a.combine])
        except ValueError as e:
            raise SystemExit(f"error: {e}")
        if problems:
            raise SystemExit("error: the files disagree on cells they share, so their cells were not measured "
                             "the same way:\n  " + "\n  ".join(problems))
        write_json(Path(a.quality), combined)
        print(f"written {a.quality}")
        section("Quality", combined, "bench/quality.py", quality_tables)
        return
    q, s = read_json(Path(a.quality)), read_json(Path(a.speed))
    section("Simulated reviewer", read_json(Path(a.veto)), "bench/quality.py", veto_table)
    section("Quality", q, "bench/quality.py", quality_tables)
    for path in a.refit:
        section("Final-student recipes", read_json(Path(path)), "bench/refit.py", refit_tables)
    for path in a.label_choice:
        section("Soft or hard labels chosen per run", read_json(Path(path)), "bench/label_choice.py",
                label_choice_table)
    section("Teacher engines", read_json(Path(a.engines)), "bench/teacher_engines.py", engines_table)
    if s:
        print(f"Speed ({s.get('machine', '?')}; `bench/speed.py`, {s.get('seconds', '?')} s):\n")
        print(speed_table(s))


if __name__ == "__main__":
    main()

"""Runs page: choose teacher, student and GOLD settings, start / cancel / resume runs, watch them live.

The run itself happens in the background worker (gold/worker.py); this page only writes the run's frozen
settings to the store and reads its progress back, refreshing a fragment every two seconds while the run is queued
or running (a finished run's page is drawn once: no polling while nothing can change).
The address bar names the run shown (`/runs?run=ID`), so a run can be linked, bookmarked and reopened after a
server restart; `?task=ID` preselects the task of a new run.
"""

from __future__ import annotations

import html
import json
from datetime import datetime

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from gold.runs import (
    SAMPLE_COUNTS,
    default_run_id,
    describe_status,
    human_size,
    metric_curves,
    run_estimate,
    run_overview,
    runs_table,
    soft_label_check,
    start_run,
)
from gold import model_copies
from gold.settings import FORM_GROUPS, RUN_HELP, Setting, form_settings, from_values
from gold.specs import SpecError
from gold.records import Run
from gold.store import ACTIVE_STATUSES, NotFound, StoreError, tree_bytes
from gold.worker import ensure_worker, spawn_keyed_worker
from views._common import (
    clip,
    follow_url,
    get_store,
    md_escape,
    mirror_url,
    show_problems,
)

store = get_store()
ss = st.session_state

st.title("Runs")
st.caption("A run is one task with frozen settings: the worker generates, trains, scores energy and feeds the "
           "tails back, round after round. Compare GOLD with the no-feedback baseline at the same budget.")

tasks = store.list_tasks()
if not tasks:
    st.info("Define a task first (Task page).")
    st.stop()
task_names = {t.id: t.name for t in tasks}
url_problem = follow_url("task", "run_task_id", list(task_names), what="task")
if url_problem:
    st.warning(md_escape(url_problem))
elif ss.get("run_task_id") in task_names and st.query_params.get("task") == str(ss["run_task_id"]):
    ss["task_id"] = ss["run_task_id"]  # a link to a task's runs: its task is the current one
if ss.get("task_id") not in task_names:
    ss["task_id"] = tasks[0].id
if ss.get("run_task_id") not in task_names:
    ss["run_task_id"] = ss["task_id"]
if "run_deleted_msg" in ss:
    st.success(ss.pop("run_deleted_msg"))

if not store.live_workers():
    st.warning("No background worker is running, so queued runs wait. Start one with `python -m gold worker` "
               "(the app starts one itself unless GOLD_AUTOSTART_WORKER=0).")

# -- new run ------------------------------------------------------------------------------------------------------


def metric_axis_range(values: pd.Series) -> list[float]:
    """The chart's metric axis: the measured values with 5 points of margin, inside 0–100% (plotly's own range
    around a single point spans -50%…150%, a scale no metric has)."""
    lo, hi = float(min(values)), float(max(values))
    lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05)
    return [lo, hi] if hi > lo else [0.0, 1.0]

def setting_widget(container, s: Setting):
    """The widget the registry says a setting gets, at its default, with its help; returns the value."""
    kind, key = s.widget_kind, s.path.replace(".", "_")
    if kind == "checkbox":
        return container.checkbox(s.label, s.default, help=s.help, key=key)
    if kind in ("radio", "selectbox"):
        show = container.radio if kind == "radio" else container.selectbox
        extra = {"horizontal": True} if kind == "radio" else {}
        return show(s.label, s.choices, index=s.choices.index(s.default), format_func=s.choice_label, help=s.help,
                    key=key, **extra)
    if kind == "number":
        cast = int if s.type is int else float
        return container.number_input(s.label, cast(s.lo), cast(s.hi), cast(s.default),
                                      step=cast(s.step) if s.step else None, format=s.fmt, help=s.help, key=key)
    if kind == "lines":
        return container.text_area(s.label, "\n".join(s.default), height=80, placeholder=s.placeholder, help=s.help,
                                   key=key)
    return container.text_input(s.label, s.default, placeholder=s.placeholder, help=s.help, key=key)


def setting_rows(rows: list[Setting], values: dict, per_row: int = 4) -> None:
    for start in range(0, len(rows), per_row):
        for col, s in zip(st.columns(per_row), rows[start : start + per_row]):
            values[s.path] = setting_widget(col, s)


# A run just queued: the form folds away (the run it started is what the user watches now, and it is drawn below
# the form), and what was said about it when it was queued is said again on this rerun.
queued = ss.pop("run_queued", None)
if queued:
    ss["new_run_open"] = False
    st.success(queued["message"])
    for sentence in queued["notes"]:
        st.info(sentence)
    st.caption(queued["estimate"])

with st.expander("Start a new run", expanded=not store.list_runs(), key="new_run_open", on_change="rerun"):
    # enter_to_submit=False: Enter in a number box (Rounds…) must not queue a run; only the button does.
    with st.form("new_run", enter_to_submit=False):
        task_id = st.selectbox("Task", list(task_names), format_func=task_names.get, key="run_task_id")
        values: dict = {}
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Run name", placeholder="optional", key="run_name")
        also_baseline = c2.checkbox("Also queue a baseline", value=False, key="also_baseline",
                                    help=RUN_HELP["also_baseline"])
        setting_rows(form_settings("core", "GOLD loop"), values, per_row=3)
        teacher_core = form_settings("core", "Teacher")
        cols = st.columns(len(teacher_core) + 1)
        for col, s in zip(cols, teacher_core):
            values[s.path] = setting_widget(col, s)
        api_key = cols[-1].text_input("API key", type="password", help=RUN_HELP["api_key"])
        with st.expander("Advanced settings"):
            for group in FORM_GROUPS:
                rows = form_settings("advanced", group)
                if rows:
                    st.markdown(f"**{group}**")
                    setting_rows(rows, values)
            st.markdown("**Experimental** (options the benchmarks did not show to help; off by default)")
            setting_rows(form_settings("experimental"), values)
        b1, b2, _ = st.columns([1, 1, 4])
        submitted = b1.form_submit_button("Start run", type="primary")
        estimating = b2.form_submit_button("Estimate", help="Teacher calls, tokens, the most it can cost and, from "
                                                            "this machine's finished rounds, how long: nothing starts.")

    if estimating and not submitted:
        settings = from_values(values)
        problems = settings.problems()
        if problems:
            show_problems(problems, "Please fix these settings first:")
        else:
            estimate = run_estimate(store, task_id, settings)
            st.info(estimate.sentence() + (" The baseline twin asks the same again." if also_baseline else ""))

    if submitted:
        settings = from_values(values)
        keyed = settings.teacher.backend == "openai" and bool(api_key)
        try:
            ids = start_run(store, task_id, settings, name=name, with_baseline=also_baseline, held=keyed,
                            key_given=keyed)
        except SpecError as e:
            show_problems(e.problems, "The run was not started. Please fix these settings:")
        else:
            with st.spinner("Asking the teacher's server whether it gives log-probabilities…"):
                notes = soft_label_check(store, task_id, settings, api_key=api_key or None)
            if keyed:
                # The key goes into one worker's environment only: never the database, the logs or `ps`.
                spawn_keyed_worker(store.home, ids, api_key)
            ss["run_id"] = ids[0]
            ss["run_queued"] = {
                "notes": list(notes), "estimate": run_estimate(store, task_id, settings).sentence(),
                "message": f"Queued run {', '.join(map(str, ids))}; the worker starts it in a moment. "
                           "It is shown below.",
            }
            st.rerun()

# -- the runs ---------------------------------------------------------------------------------------------------

runs = store.list_runs()
if not runs:
    st.stop()
run_ids = [r.id for r in runs]
url_problem = follow_url("run", "run_id", run_ids)
if url_problem:
    st.warning(md_escape(url_problem))
if ss.get("run_id") not in run_ids:
    linked_task = [r for r in runs if str(r.task_id) == st.query_params.get("task")]
    ss["run_id"] = default_run_id(linked_task or runs)
st.subheader(f"Runs ({len(runs)})")
st.dataframe(runs_table(runs), hide_index=True, width="stretch", height=min(300, 38 + 35 * len(runs)), key="runs_list")
copies = model_copies.folder(store.home)
models = tree_bytes(copies) if copies.is_relative_to(store.home) else 0
st.caption(f"Data folder `{store.home}`: {human_size(tree_bytes(store.home))} on disk"
           + (f", of which {human_size(models)} converted copies of the teacher's model (`models/`, written once, "
              "reused by every run)" if models else "")
           + ". Delete a run you no longer need (below), or start runs that keep only their best and last checkpoints "
             "(Advanced).")
# The picker names a run without its status: the browser keeps a chosen option's label as first drawn, so a status
# in it would still say "queued" while the table above and the run below say "running".
st.selectbox("Run", run_ids, key="run_id",
             format_func=lambda i: next(f"#{r.id} {r.name} · {r.task_name} · {r.mode}" for r in runs if r.id == i))
mirror_url("run", "run_id", ss["run_id"])


def confirm_delete(run: Run) -> None:
    """The second step of *Delete run*: say what goes (rows, checkpoints and their size) and what stays, then a
    yes or a no. On yes, the page reopens on another run and the address bar stops naming the deleted one."""
    run_id = run.id
    size = human_size(tree_bytes(store.run_dir(run_id)))
    rounds = len(store.rounds(run_id))
    samples = store.sample_counts(run_id)["generated"]
    st.warning(f"Delete run #{run_id} {md_escape(run.name)} with its {rounds} round(s), {samples} samples and "
               f"{size} of checkpoints? Its task and the other runs stay. This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete run", key=f"confirm_delete_run_yes_{run_id}", type="primary"):
        try:
            store.delete_run(run_id)
        except StoreError as e:  # it was resumed in another window meanwhile, or its folder would not go
            st.error(md_escape(str(e)))
            return
        ss.pop("confirm_delete_run", None)
        ss["run_deleted_msg"] = f"Deleted run #{run_id} ({size} freed)."
        if st.query_params.get("run") == str(run_id):
            del st.query_params["run"]
        st.rerun()
    if no.button("Keep it", key=f"confirm_delete_run_no_{run_id}"):
        ss.pop("confirm_delete_run", None)
        st.rerun()


def live(run_id: int, drawn: tuple[str, int]) -> None:
    """The run's progress, controls, tables and charts. `drawn`: the run's status and finished rounds as the runs
    table above shows them. While that status is active this fragment reruns every two seconds; when either value
    changes (the worker picked the run up, a round finished, the run ended) one full rerun redraws the page, so
    the table never says "queued" beside a running run, and a run that ended is drawn once more without the
    timer."""
    polling = drawn[0] in ACTIVE_STATUSES
    try:
        ov = run_overview(store, run_id)
    except NotFound:
        st.warning("This run was deleted.")
        return
    run = ov.run
    if polling and (run.status, ov.rounds_done) != drawn:
        st.rerun()
    st.subheader(f"#{run.id} {md_escape(run.name)}")
    st.caption(f"Task: {md_escape(run.task_name)} · mode: {run.mode} · {describe_status(run)}")
    st.progress(ov.progress, text=md_escape(clip(ov.progress_text, 300)))
    c1, c2, c3, c4 = st.columns(4)
    active = run.status in ACTIVE_STATUSES
    if c4.button("Delete run…", key=f"delete_run_{run_id}", disabled=active,
                 help="Cancel the run first." if active else "Delete this run's samples, rounds and checkpoints "
                                                             "(its task and other runs stay); asks first."):
        ss["confirm_delete_run"] = run_id
    if ss.get("confirm_delete_run") == run_id and not active:
        confirm_delete(run)
    if active:
        if c1.button("Cancel run", key=f"cancel_{run_id}"):
            store.request_cancel(run_id)
            st.rerun()
    else:
        key = ""
        if (run.settings.get("teacher") or {}).get("backend") == "openai":
            key = c3.text_input("API key to continue with", type="password", key=f"key_{run_id}",
                                help="Needed when the run was started with a typed key: keys are never stored, so "
                                     "a resumed run gets its own worker with this key. " + RUN_HELP["api_key"])

        def hand_over() -> None:  # a typed key: a worker of its own; else the shared one
            if key:
                spawn_keyed_worker(store.home, [run_id], key)
            else:
                ensure_worker(store.home)

        if c1.button("Resume run", key=f"resume_{run_id}", disabled=run.status == "done",
                     help="Continue from the last finished step."):
            store.resume_run(run_id, held=bool(key))
            hand_over()
            st.rerun()
        if c2.button("Retrain the student now", key=f"retrain_{run_id}", disabled=ov.rounds_table is None,
                     help="Train the student again on the current data, with your vetoes applied (an extra round "
                          "that generates nothing)."):
            store.request_retrain(run_id, held=bool(key))
            hand_over()
            st.rerun()
    if run.error:
        st.error(f"The run stopped with an error: {md_escape(run.error)}")
    counts = ov.counts
    m = st.columns(len(SAMPLE_COUNTS))
    for col, (key, (label, help_text)) in zip(m, SAMPLE_COUNTS.items()):
        col.metric(label, counts.get(key, 0), help=help_text)
    usage = ov.usage
    if usage:
        st.caption(f"Teacher tokens: {int(usage.get('prompt_tokens', 0)):,} prompt + "
                   f"{int(usage.get('completion_tokens', 0)):,} completion"
                   + (f" · estimated cost ${usage.get('cost_usd', 0):.4f}" if usage.get("cost_usd") else ""))
    if ov.rounds_table is not None and len(ov.rounds_table):
        st.markdown("**Per round**")
        # placeholder: a round still running has measured nothing yet, and a column of "None" reads like an error.
        st.dataframe(ov.rounds_table, hide_index=True, width="stretch", placeholder="–")
        if ov.selected_on_eval:
            st.caption(f"Round {', '.join(map(str, ov.selected_on_eval))}: early stopping chose the student's epoch "
                       f"on the evaluation rows, so its {ov.metric_name or 'metric'} on them is optimistic. Measure "
                       "it on rows the run never saw before you rely on it.")
        for n, rounds in ov.averaged.items():
            st.caption(f"Round {n}'s student is the weight average of the students of rounds "
                       f"{', '.join(map(str, rounds))}.")
        left, right = st.columns(2)
        curves = metric_curves(store, run_id)
        curves["run"] = curves["run"].map(html.escape)  # plotly renders HTML tags in legends and hovers
        if len(curves):
            fig = px.line(curves, x="round", y="metric", color="run", line_dash="mode", markers=True,
                          labels={"metric": ov.metric_name or "metric"},
                          title=f"{ov.metric_name or 'metric'} per round (GOLD and baseline runs of this task)")
            fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), yaxis_tickformat=".0%",
                              yaxis_range=metric_axis_range(curves["metric"]), xaxis_dtick=1,
                              legend=dict(orientation="h", yanchor="top", y=-0.25, title_text=""))  # runs' names are long
            left.plotly_chart(fig, key=f"curve_{run_id}")
        if ov.histograms:
            hist = go.Figure()
            for n, h in sorted(ov.histograms.items()):
                centres = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:])]
                hist.add_trace(go.Bar(x=centres, y=h["counts"], name=f"round {n}", opacity=0.6))
            hist.update_layout(barmode="overlay", height=320, margin=dict(l=10, r=10, t=40, b=10),
                               title="energy of each round's samples (under that round's student)",
                               xaxis_title="energy (higher = more out-of-distribution)")
            right.plotly_chart(hist, key=f"hist_{run_id}")
    if ov.labeler_choice and ov.labeler_choice.get("table"):
        choice = ov.labeler_choice
        st.markdown(f"**Labeler chosen on your {choice['rows']} evaluation rows**: {md_escape(choice['chosen'])}")
        st.dataframe(pd.DataFrame([{"labeler": r["labeler"], "accuracy": r["metric"],
                                    "seconds": r["seconds"], "chosen": "✓" if r["chosen"] else "",
                                    "error": r["error"] or ""} for r in choice["table"]]),
                     hide_index=True, width="stretch")
    elif ov.labeler:
        st.caption(f"Soft labels read by: {md_escape(ov.labeler)}")
    if ov.reject_reasons:
        st.caption("Rejected replies: " + ", ".join(f"{k} {v}" for k, v in ov.reject_reasons.items()))
    with st.expander("Event log"):
        ev = pd.DataFrame(ov.events)
        if len(ev):
            ev["time"] = [datetime.fromtimestamp(x).strftime("%H:%M:%S") for x in ev["ts"]]
            st.dataframe(ev[["time", "level", "message"]], hide_index=True, width="stretch")
    with st.expander("Settings (frozen for this run)"):
        st.download_button("Download settings", data=json.dumps(run.settings, indent=2, ensure_ascii=False),
                           file_name="run.json", mime="application/json", on_click="ignore",
                           icon=":material/download:", key=f"download_settings_{run_id}",
                           help="These settings as run.json: `python -m gold run --config run.json` repeats the run.")
        st.json(run.settings)


shown = next(r for r in runs if r.id == ss["run_id"])
st.fragment(live, run_every=2.0 if shown.status in ACTIVE_STATUSES else None)(ss["run_id"],
                                                                              (shown.status, shown.rounds_done))

"""Runs page: choose teacher, student and GOLD settings, start / cancel / resume runs, watch them live.

The run itself happens in the background worker (gold/worker.py); this page only writes the run's frozen
settings to the store and reads its progress back, refreshing a fragment every two seconds while it runs.
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
    RUN_HELP,
    default_run_id,
    describe_status,
    human_size,
    metric_curves,
    run_overview,
    runs_table,
    soft_label_check,
    start_run,
)
from gold.specs import (
    KEEP_CHECKPOINTS,
    LABELER_PICKS,
    LOCAL_ENGINES,
    SOFT_LABEL_CALIBRATIONS,
    GoldSettings,
    LabelerSpec,
    SpecError,
    StudentSpec,
    TeacherSpec,
)
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

with st.expander("Start a new run", expanded=not store.list_runs()):
    # enter_to_submit=False: Enter in a number box (Rounds…) must not queue a run; only the button does.
    with st.form("new_run", enter_to_submit=False):
        task_id = st.selectbox("Task", list(task_names), format_func=task_names.get, key="run_task_id")
        d = GoldSettings()
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Run name", placeholder="optional", key="run_name")
        mode = c2.radio("Mode", ["gold", "baseline"], horizontal=True, help=RUN_HELP["mode"])
        also_baseline = c3.checkbox("Also queue a baseline run with the same budget", value=False, key="also_baseline")
        st.markdown("**GOLD loop**")
        c1, c2, c3, c4 = st.columns(4)
        rounds = c1.number_input("Rounds", 1, 100, d.rounds, help=RUN_HELP["rounds"])
        spr = c2.number_input("Samples per round", 1, 100_000, d.samples_per_round, help=RUN_HELP["samples_per_round"])
        probe = c3.number_input("Probe size", 0, 100_000, d.probe_size, help=RUN_HELP["probe_size"])
        seed = c4.number_input("Random seed", 0, 2**31 - 1, d.seed, help=RUN_HELP["seed"])
        c1, c2, c3, c4 = st.columns(4)
        band = c1.slider("Feedback band (energy percentiles)", 0, 100, (int(d.band_lo), int(d.band_hi)),
                         help=RUN_HELP["band"])
        temp = c2.number_input("Energy temperature T", 0.01, 100.0, d.energy_temperature, help=RUN_HELP["energy_temperature"])
        fb_count = c3.number_input("Feedback examples per prompt", 0, 50, d.feedback_count, help=RUN_HELP["feedback_count"])
        fb_rate = c4.slider("Feedback rate", 0.0, 1.0, d.feedback_rate, help=RUN_HELP["feedback_rate"])
        c1, c2, c3, c4, c5 = st.columns(5)
        noise = c1.checkbox("Keep the highest-energy samples out of training (noise filter)", d.noise_filter,
                            help=RUN_HELP["noise_filter"])
        relabel = c4.checkbox("Relabel noise with the student's label instead", d.relabel_noise,
                              help=RUN_HELP["relabel_noise"])
        agree = c2.checkbox("Feedback only from samples whose label the student believes", d.feedback_needs_agreement,
                            help=RUN_HELP["feedback_needs_agreement"])
        steer = c3.checkbox("Steer label shares by energy", d.steer_labels, help=RUN_HELP["steer_labels"])
        probes_train = c5.checkbox("Train on probes too", d.train_on_probes, help=RUN_HELP["train_on_probes"])

        st.markdown("**Teacher**")
        t = TeacherSpec()
        c1, c2, c3, c4 = st.columns(4)
        backend = c1.radio("Backend", ["local", "openai"], horizontal=True, help=RUN_HELP["backend"])
        engine = c2.selectbox("Local engine", LOCAL_ENGINES, index=LOCAL_ENGINES.index(t.engine),
                              help=RUN_HELP["engine"])
        model = c3.text_input("Model", t.model, help=RUN_HELP["teacher_model"])
        base_url = c4.text_input("Base URL (OpenAI-compatible)", "", placeholder="https://api.openai.com/v1",
                                 help=RUN_HELP["base_url"])
        c1, c2, c3, c4 = st.columns(4)
        api_key = c1.text_input("API key", type="password", help=RUN_HELP["api_key"])
        price_in = c2.number_input("$ per 1M prompt tokens", 0.0, 1000.0, 0.0)
        price_out = c3.number_input("$ per 1M completion tokens", 0.0, 1000.0, 0.0)
        budget = c4.number_input("Budget cap ($, 0 = none)", 0.0, 100_000.0, 0.0, help=RUN_HELP["budget"])
        c1, c2, c3, c4 = st.columns(4)
        max_new = c1.number_input("Max new tokens", 1, 4096, t.max_new_tokens)
        t_temp = c2.number_input("Sampling temperature", 0.0, 2.0, t.temperature)
        top_p = c3.number_input("top_p", 0.01, 1.0, t.top_p)
        concurrency = c4.number_input("Concurrent requests (server)", 1, 256, t.max_concurrency,
                                      help=RUN_HELP["max_concurrency"])

        st.markdown("**Student**")
        s = StudentSpec()
        c1, c2, c3, c4, c5 = st.columns(5)
        s_model = c1.text_input("Student model", s.model, help=RUN_HELP["student_model"])
        epochs = c2.number_input("Epochs", 1, 100, s.epochs)
        min_steps = c3.number_input("Min steps", 0, 100_000, s.min_steps, help=RUN_HELP["min_steps"])
        lr = c4.number_input("Learning rate", 1e-7, 1e-1, s.learning_rate, format="%.1e")
        loss = c5.selectbox("Loss", ["sce", "ce"], index=["sce", "ce"].index(s.loss), help=RUN_HELP["loss"])
        c1, c2, c3, c4, c5, c6 = st.columns(6)
        final_fresh = c1.checkbox("Fresh final student", s.final_fresh, help=RUN_HELP["final_fresh"])
        early = c2.checkbox("Early stopping on the evaluation rows", s.early_stopping, help=RUN_HELP["early_stopping"])
        final_epochs = c3.number_input("Final epochs", 0, 100, s.final_epochs, help=RUN_HELP["final_epochs"])
        smoothing = c4.number_input("Label smoothing", 0.0, 0.9, s.label_smoothing, step=0.05,
                                    help=RUN_HELP["label_smoothing"])
        soft = c5.number_input("Soft-label weight", 0.0, 1.0, s.soft_label_weight, step=0.1,
                               help=RUN_HELP["soft_label_weight"])
        soft_cal = c6.selectbox("Soft-label calibration", SOFT_LABEL_CALIBRATIONS,
                                index=SOFT_LABEL_CALIBRATIONS.index(s.soft_label_calibration),
                                help=RUN_HELP["soft_label_calibration"])
        st.markdown("**Labels** (who reads each generated text back for the student's soft labels)")
        lab = LabelerSpec()
        c1, c2, c3 = st.columns([2, 1, 1])
        labeler_text = c1.text_area("Labelers, one per line", "", height=80, placeholder="teacher",
                                    help=RUN_HELP["labelers"])
        pick = c2.selectbox("Pick the labeler", LABELER_PICKS, index=LABELER_PICKS.index(lab.pick),
                            help=RUN_HELP["labeler_pick"])
        votes = c3.number_input("Label votes (servers without log-probabilities)", 0, 20, lab.votes,
                                help=RUN_HELP["label_votes"])
        st.markdown("**Advanced**")
        c1, _ = st.columns([1, 3])
        keep = c1.selectbox("Keep checkpoints", KEEP_CHECKPOINTS, index=KEEP_CHECKPOINTS.index(d.keep_checkpoints),
                            format_func=lambda k: {"all": "every round's", "best_and_last": "best and last round's"}[k],
                            help=RUN_HELP["keep_checkpoints"], key="keep_checkpoints")
        submitted = st.form_submit_button("Start run", type="primary")

    if submitted:
        settings = GoldSettings(
            mode=mode, rounds=int(rounds), samples_per_round=int(spr), probe_size=int(probe), seed=int(seed),
            band_lo=float(band[0]), band_hi=float(band[1]), energy_temperature=float(temp),
            feedback_count=int(fb_count), feedback_rate=float(fb_rate), noise_filter=noise, relabel_noise=relabel,
            feedback_needs_agreement=agree, steer_labels=steer, train_on_probes=probes_train, keep_checkpoints=keep,
            teacher=TeacherSpec(backend=backend, engine=engine, model=model, base_url=base_url, max_new_tokens=int(max_new),
                                temperature=float(t_temp), top_p=float(top_p), price_in_per_m=float(price_in),
                                price_out_per_m=float(price_out), budget_usd=float(budget),
                                max_concurrency=int(concurrency)),
            student=StudentSpec(model=s_model, epochs=int(epochs), min_steps=int(min_steps), learning_rate=float(lr),
                                loss=loss, final_fresh=final_fresh, early_stopping=early,
                                final_epochs=int(final_epochs), label_smoothing=float(smoothing),
                                soft_label_weight=float(soft), soft_label_calibration=soft_cal),
            labeler=LabelerSpec(models=[line.strip() for line in labeler_text.splitlines() if line.strip()],
                                pick=pick, votes=int(votes)),
        )
        keyed = backend == "openai" and bool(api_key)
        try:
            ids = start_run(store, task_id, settings, name=name, with_baseline=also_baseline, held=keyed,
                            key_given=keyed)
        except SpecError as e:
            show_problems(e.problems, "The run was not started. Please fix these settings:")
        else:
            with st.spinner("Asking the teacher's server whether it gives log-probabilities…"):
                for sentence in soft_label_check(store, task_id, settings, api_key=api_key or None):
                    st.info(sentence)
            if keyed:
                # The key goes into one worker's environment only: never the database, the logs or `ps`.
                spawn_keyed_worker(store.home, ids, api_key)
            ss["run_id"] = ids[0]
            st.success(f"Queued run {', '.join(map(str, ids))}; the worker starts it in a moment.")

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
st.caption(f"Data folder `{store.home}`: {human_size(tree_bytes(store.home))} on disk. Delete a run you no longer "
           "need (below), or start runs that keep only their best and last checkpoints (Advanced).")
st.selectbox("Run", run_ids, key="run_id",
             format_func=lambda i: next(f"#{r.id} {r.name} · {r.task_name} · {r.mode} · {r.status}" for r in runs if r.id == i))
mirror_url("run", "run_id", ss["run_id"])


def confirm_delete(run: dict) -> None:
    """The second step of *Delete run*: say what goes (rows, checkpoints and their size) and what stays, then a
    yes or a no. On yes, the page reopens on another run and the address bar stops naming the deleted one."""
    run_id = run["id"]
    size = human_size(tree_bytes(store.run_dir(run_id)))
    rounds = len(store.rounds(run_id))
    samples = store.sample_counts(run_id)["generated"]
    st.warning(f"Delete run #{run_id} {md_escape(run['name'])} with its {rounds} round(s), {samples} samples and "
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


@st.fragment(run_every=2.0)
def live(run_id: int) -> None:
    try:
        ov = run_overview(store, run_id)
    except NotFound:
        st.warning("This run was deleted.")
        return
    run = ov.run
    st.subheader(f"#{run['id']} {md_escape(run['name'])}")
    st.caption(f"Task: {md_escape(run['task_name'])} · mode: {run['mode']} · {describe_status(run)}")
    st.progress(ov.progress, text=md_escape(clip(ov.progress_text, 300)))
    c1, c2, c3, c4 = st.columns(4)
    active = run["status"] in ACTIVE_STATUSES
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
        if (run["settings"].get("teacher") or {}).get("backend") == "openai":
            key = c3.text_input("API key to continue with", type="password", key=f"key_{run_id}",
                                help="Needed when the run was started with a typed key: keys are never stored, so "
                                     "a resumed run gets its own worker with this key. " + RUN_HELP["api_key"])

        def hand_over() -> None:  # a typed key: a worker of its own; else the shared one
            if key:
                spawn_keyed_worker(store.home, [run_id], key)
            else:
                ensure_worker(store.home)

        if c1.button("Resume run", key=f"resume_{run_id}", disabled=run["status"] == "done",
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
    if run["error"]:
        st.error(f"The run stopped with an error: {md_escape(run['error'])}")
    counts = ov.counts
    m = st.columns(6)
    for col, key in zip(m, ("generated", "kept", "rejected", "noise", "feedback", "vetoed")):
        col.metric(key, counts.get(key, 0))
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
        left, right = st.columns(2)
        curves = metric_curves(store, run_id)
        curves["run"] = curves["run"].map(html.escape)  # plotly renders HTML tags in legends and hovers
        if len(curves):
            fig = px.line(curves, x="round", y="metric", color="run", line_dash="mode", markers=True,
                          labels={"metric": ov.metric_name or "metric"},
                          title=f"{ov.metric_name or 'metric'} per round (GOLD and baseline runs of this task)")
            fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), yaxis_tickformat=".0%")
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
        st.dataframe(pd.DataFrame([{"labeler": r["labeler"], "few-shot accuracy": r["metric"],
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
        st.download_button("Download settings", data=json.dumps(run["settings"], indent=2, ensure_ascii=False),
                           file_name="run.json", mime="application/json", on_click="ignore",
                           icon=":material/download:", key=f"download_settings_{run_id}",
                           help="These settings as run.json: `python -m gold run --config run.json` repeats the run.")
        st.json(run["settings"])


live(ss["run_id"])

"""Export page: download a round's student as a zip (a plain Hugging Face folder with its model card, or the
int8 ONNX folder), and a run's generated data as JSONL, CSV or a Hugging Face dataset.

One click: the download buttons get a callable, run only when the button is pressed; the zip is built once
per (run, round, content) by gold/downloads.py and kept on disk, so a second click serves the same file. The
callables open their own Store (they run on a thread of their own). User text is shown through st.code,
md_escape or plain dataframes, never as markdown or HTML.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from gold import datasets_export, downloads, export, onnx_export
from gold.checkpoints import best_round
from gold.modelcard import safetensors_parameters
from gold.specs import GoldSettings
from gold.store import NotFound
from views._common import default_run, get_store, md_escape

store = get_store()
ss = st.session_state

st.title("Export")
st.caption("Take the student home: a plain Hugging Face folder that `transformers.pipeline` loads without GOLD "
           "Studio, with a model card and the run's provenance. Or download every generated sample.")

runs = store.list_runs()
if not runs:
    st.info("No run yet. Start one on the Runs page; its students can be exported here once a round is done.")
    st.stop()
run_ids = [r.id for r in runs]
default_run(run_ids, "export_run")
labels = {r.id: f"#{r.id} {r.name} · {r.task_name} · {r.mode} · {r.status}" for r in runs}
run_id = st.selectbox("Run", run_ids, key="export_run", format_func=labels.get)
home = str(store.home)

try:
    run = store.get_run(run_id)
except NotFound:
    st.warning("This run was deleted.")
    st.stop()

# -- the student ----------------------------------------------------------------------------------------------------

st.subheader("Student")
rounds = export.finished_rounds(store, run_id)
if not rounds:
    try:
        export.pick_round(store, run_id)
    except export.ExportError as e:
        st.error(md_escape(str(e)))
else:
    best = best_round(rounds)
    options = [r.n for r in rounds]
    by_n = {r.n: r for r in rounds}

    def round_label(n: int) -> str:
        m = by_n[n].metrics
        score = (f" · {m.metric_name or 'score'} {m.metric:.3f}" if isinstance(m.metric, (int, float)) else "")
        return f"round {n}{score}" + (" (best)" if n == best.n and score else "")

    c1, c2 = st.columns([2, 3])
    round_n = c1.selectbox("Round", options, index=options.index(best.n), key=f"export_round_{run_id}",
                           format_func=round_label, help="Default: the best round by evaluation score, else the last.")
    include_data = c2.checkbox("Include the exact training set (data/train.jsonl)", value=True, key="export_data",
                               help="The seeds and generated samples this round's student trained on.")
    try:
        card, warnings = export.card_preview(store, run_id, round_n, include_data)
    except export.ExportError as e:
        st.error(md_escape(str(e)))
        st.stop()
    for w in warnings:
        st.warning(md_escape(w))

    m = by_n[round_n].metrics
    cols = st.columns(4)
    if isinstance(m.metric, (int, float)):
        cols[0].metric(str(m.metric_name or "score").replace("_", " "), f"{m.metric:.3f}",
                       help=f"On {m.metric_rows} rows of the task's {'evaluation set' if m.metric_on == 'eval' else 'seeds'}.")
    cols[1].metric("train size", m.train_size if m.train_size is not None else "—")
    params = safetensors_parameters(Path(by_n[round_n].checkpoint))
    cols[2].metric("parameters", f"{params / 1e6:.1f} M" if params else "—")
    planned = max(GoldSettings.from_dict(run.settings).rounds, len(store.rounds(run_id)))  # a retrain adds one
    cols[3].metric("round", f"{round_n} of {planned}")

    twin = export.baseline_twin(store, run)
    twin_metrics = {r.n: r.metrics.metric for r in store.rounds(twin)} if twin else {}
    metric_name = str(m.metric_name or "score")
    table = pd.DataFrame([
        {"round": r.n, metric_name: r.metrics.metric,
         **({f"baseline (run {twin})": twin_metrics.get(r.n)} if twin else {}),
         "train size": r.metrics.train_size, "kept": r.metrics.kept,
         "noise": r.metrics.noise, "exported": "✓" if r.n == round_n else ""}
        for r in store.rounds(run_id)
    ])
    st.dataframe(table, hide_index=True, width="stretch", placeholder="–")  # a round that never finished: dashes

    name = export.folder_name(run_id, round_n)
    st.download_button(
        "Download the student (.zip)",
        data=lambda: downloads.zip_bytes(home, run_id, round_n, include_data),
        file_name=f"{name}.zip", mime="application/zip", on_click="ignore", type="primary",
        icon=":material/download:", key="download_student",
        help="Built on the first click (a few seconds), then served from the cache.",
    )
    kind = store.get_task(run.task_id).spec.kind
    pipe = "text-classification" if kind == "classification" else "text-generation"
    st.caption("Unzip it, then:")
    st.code(f'from transformers import pipeline\nmodel = pipeline("{pipe}", model="{name}")', language="python")
    with st.expander("Model card (README.md)"):
        st.code(card, language="markdown")

    if kind == "classification":
        # Built on a button of its own, not in a download callable: tracing, quantizing and checking take a few
        # seconds, and a refusal (the int8 model disagreeing with the student) must reach the page as a message.
        st.markdown("**int8 ONNX** — the same student for `onnxruntime` on a CPU: about a third of the size, 2 to "
                    "3 times as fast, no PyTorch needed. Its README says how often it agreed with this student.")
        problem = onnx_export.onnx_problem()
        ready_key = f"onnx_ready_{run_id}_{round_n}"
        if problem:
            st.caption(md_escape(problem))
        elif not ss.get(ready_key) and st.button("Build the int8 ONNX export", key="build_onnx",
                                                 icon=":material/memory:",
                                                 help="Traces the student, quantizes it to int8 and checks it "
                                                      "against the PyTorch student on the evaluation rows."):
            with st.spinner("Tracing, quantizing to int8, checking against the PyTorch student…"):
                try:
                    downloads.cached_zip(home, run_id, round_n, fmt="onnx")
                    ss[ready_key] = True
                except export.ExportError as e:
                    st.error(md_escape(str(e)))
        if not problem and ss.get(ready_key):
            try:
                with st.spinner("Updating the ONNX export…"):  # instant when built; rebuilt after a veto
                    onnx_zip = downloads.cached_zip(home, run_id, round_n, fmt="onnx")
            except export.ExportError as e:
                ss[ready_key] = False
                st.error(md_escape(str(e)))
            else:
                st.download_button(
                    "Download the int8 ONNX student (.zip)", data=onnx_zip.read_bytes,
                    file_name=f"{onnx_export.onnx_root(run_id, round_n)}.zip", mime="application/zip",
                    on_click="ignore", icon=":material/download:", key="download_onnx",
                    help="model.onnx (int8), config.json, the tokenizer and a usage note (README.md).",
                )

# -- the data --------------------------------------------------------------------------------------------------------

st.subheader("Data")
counts = store.sample_counts(run_id)
if not counts["generated"]:
    st.caption("This run has no generated samples yet.")
else:
    st.caption(f"All {counts['generated']} samples of the run ({counts['kept']} kept, {counts['probe']} "
               f"probes, {counts['rejected']} rejected, {counts['noise']} flagged noise, {counts['vetoed']} vetoed): "
               "input, label or output, round, role, energy, prediction, flag, vetoed, reject reason.")
    c1, c2, c3 = st.columns(3)
    c1.download_button("Samples as JSONL", data=lambda: downloads.dataset_file(home, run_id, "jsonl"),
                       file_name=f"gold-run{run_id}-samples.jsonl", mime="application/jsonl", on_click="ignore",
                       icon=":material/data_object:", key="download_jsonl")
    c2.download_button("Samples as CSV", data=lambda: downloads.dataset_file(home, run_id, "csv"),
                       file_name=f"gold-run{run_id}-samples.csv", mime="text/csv", on_click="ignore",
                       icon=":material/table:", key="download_csv")
    if counts["kept"] + counts["probe"]:
        c3.download_button("Hugging Face dataset (.zip)", data=lambda: downloads.dataset_zip_bytes(home, run_id),
                           file_name=f"{datasets_export.dataset_root(run_id)}.zip", mime="application/zip",
                           on_click="ignore", icon=":material/dataset:", key="download_dataset",
                           help="The kept samples for the `datasets` library: parquet, the save_to_disk layout, "
                                "and a dataset card (label names, soft labels, energy, round, flag, veto).")

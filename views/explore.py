"""Explore page: the generated data on a UMAP map coloured by energy, and vetoes by hand.

The map's coordinates are computed by the worker after each round (gold/maps.py), so this page only reads
them. Selecting points (lasso or box) and pressing "Veto selected" writes vetoes to the store; vetoed samples
leave training and feedback from the next round on, and the Runs page can retrain the student at once.
The address bar names the run shown (`/explore?run=ID`), so a link or a reload reopens it.
All user text is escaped before it reaches plotly's hover labels (which render a subset of HTML), clipped to a
hover's size, and isolated when it holds direction controls; the full text shows verbatim under "Sample details".
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from gold.context import RunError
from gold.maps import compute_map, map_frame
from gold.runs import default_run_id
from gold.specs import GoldSettings
from gold.store import NotFound
from gold.strategies import feedback_strategy
from views._common import (
    clip, default_run, follow_url, get_store, isolate_bidi, md_escape, mirror_url, review_queue, selection_ids,
)

store = get_store()
ss = st.session_state

st.title("Explore")
st.caption("Where the teacher's data lies, and which samples the student finds out-of-distribution "
           "(high energy). Select points on the map to veto the wrong ones: they leave training and feedback.")

runs = [r for r in store.list_runs() if store.mapped_rounds(r.id) or store.rounds(r.id)]
if not runs:
    st.info("No run has finished a round yet. Start one on the Runs page.")
    st.stop()
run_ids = [r.id for r in runs]
url_problem = follow_url("run", "explore_run", run_ids)
if url_problem:
    st.warning(md_escape(url_problem.replace("There is no run", "There is no run with a round to explore")))
default_run(run_ids, "explore_run", fallback=default_run_id(runs))
c1, c2, c3 = st.columns([3, 1, 2])
run_id = c1.selectbox("Run", run_ids, key="explore_run",
                      format_func=lambda i: next(f"#{r.id} {r.name} · {r.task_name} · {r.mode}" for r in runs if r.id == i))
mirror_url("run", "explore_run", run_id)


def map_now(round_n: int, space: str) -> None:
    """Embed and lay out a round's map with a spinner; a round whose student is gone (deleted to save space)
    gets a sentence, not a traceback."""
    with st.spinner("Embedding samples and fitting UMAP…"):
        try:
            compute_map(store, run_id, round_n, space=space)
        except RunError as e:
            st.error(md_escape(str(e)))
            st.stop()

space = c3.radio("Space", ["encoder", "student"], horizontal=True, key="explore_space",
                 help="encoder: sentence embeddings (all-MiniLM-L6-v2), stable across rounds. "
                      "student: the round's student's own representation — how the student sees the data.")
finished = [r.n for r in store.rounds(run_id) if r.status == "done"]
mapped = store.mapped_rounds(run_id, space)
if not mapped:
    st.info("This run's map is not computed yet in this space (the worker draws the encoder map after each round).")
    if finished and st.button("Compute the map now", key="compute_map"):
        map_now(max(finished), space)
        st.rerun()
    st.stop()
round_n = c2.selectbox("Map of round", mapped, index=len(mapped) - 1, key="explore_round")
shown_round = store.round(run_id, round_n)
student_gone = space == "student" and shown_round is not None and bool(shown_round.metrics.checkpoint_deleted)
if student_gone:
    st.caption(f"Round {round_n}'s student was deleted to save space (the run keeps only its best and last rounds' "
               "checkpoints): this map stays, but it cannot be recomputed in the student's space.")
if st.button("Recompute map", key="recompute_map", disabled=student_gone,
             help="Embed new samples and fit UMAP again for this round."):
    map_now(round_n, space)

try:
    df = map_frame(store, run_id, round_n, space)
    run = store.get_run(run_id)
    settings = GoldSettings.from_dict(run.settings)
    kind = store.get_task(run.task_id).spec.kind
except NotFound:
    st.warning("This run was deleted.")
    st.stop()
what = "label" if kind == "classification" else "output"

# -- filters ---------------------------------------------------------------------------------------------------
samples = df[~df["source"].isin(["seed", "eval"])]
with st.sidebar:
    st.subheader("Filters")
    # A seq2seq output is free text, not a label: a filter chip per distinct (possibly very long) output would
    # bury the sidebar, so only classification runs get the label filter and the label colouring.
    labels = sorted(samples["label"].dropna().unique().tolist()) if kind == "classification" else []
    pick_labels = st.multiselect("Label", labels, default=labels, key="f_labels_explore") if labels else None
    flags = ["ok", "feedback", "noise", "vetoed"]
    pick_flags = st.multiselect("Flag", flags, default=flags, key="f_flags")
    rounds = sorted(samples["round"].unique().tolist())
    pick_rounds = st.multiselect("Round", rounds, default=rounds, key="f_rounds")
    roles = st.multiselect("Role", ["train", "probe"], default=["train", "probe"], key="f_roles")
    e = samples["energy"].dropna()
    lo_e, hi_e = (float(e.min()), float(e.max())) if len(e) else (0.0, 0.0)
    if hi_e > lo_e:
        e_range = st.slider("Energy", lo_e, hi_e, (lo_e, hi_e), key=f"f_energy_{run_id}_{round_n}")
    else:
        e_range = (lo_e, hi_e)
    search = st.text_input("Text contains", key="f_search")
    show_refs = st.checkbox("Show seeds and evaluation rows", value=True, key="f_refs")
    colorings = ["energy", "label", "round", "teacher ≠ student"]
    color_by = st.radio("Color by", colorings if labels else [c for c in colorings if c != "label"], key="f_color")

mask = (
    (samples["label"].isin(pick_labels) if pick_labels is not None else True)
    & samples["flag"].isin(pick_flags) & samples["round"].isin(pick_rounds)
    & samples["source"].isin(roles)
    & samples["energy"].between(e_range[0] - 1e-9, e_range[1] + 1e-9)
)
if search:
    mask &= samples["text"].str.contains(search, case=False, regex=False)
view = samples[mask]
refs = df[df["source"].isin(["seed", "eval"])] if show_refs else df.iloc[0:0]

m = st.columns(5)
m[0].metric("shown", len(view))
m[1].metric("of samples", len(samples))
m[2].metric("noise", int((view["flag"] == "noise").sum()))
m[3].metric("feedback", int((view["flag"] == "feedback").sum()))
m[4].metric("vetoed", int(view["vetoed"].sum()))


# -- the map ---------------------------------------------------------------------------------------------------
def hover_text(text: object, limit: int) -> str:
    """User text for a plotly hover: clipped, HTML-escaped, on one line, its direction controls isolated."""
    return isolate_bidi(html.escape(clip(str(text), limit)).replace("\n", " "))


def hover(frame: pd.DataFrame) -> list[str]:
    out = []
    for r in frame.itertuples():
        parts = [hover_text(r.text, 160), f"{what}: {hover_text(r.label, 80)}",
                 f"round {r.round} · {r.source} · {r.flag}"]
        if r.energy is not None and not pd.isna(r.energy):
            parts.append(f"energy {r.energy:.3f}")
        if r.prediction is not None and not pd.isna(r.prediction):
            parts.append(f"student: {hover_text(r.prediction, 80)} ({r.confidence:.0%})")
        out.append("<br>".join(parts))
    return out


SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross", "pentagon", "hexagon", "triangle-down", "star-square"]
OUTLINE = {"ok": "rgba(0,0,0,0)", "feedback": "#1f77b4", "noise": "#d62728", "vetoed": "#000000"}
label_symbol = {label: SYMBOLS[i % len(SYMBOLS)] for i, label in enumerate(labels)}

fig = go.Figure()
if len(view):
    if color_by == "energy":
        marker_color, extra = view["energy"], dict(colorscale="Viridis", showscale=True, colorbar=dict(title="energy"))
    elif color_by == "label":
        codes = {label: i for i, label in enumerate(labels)}
        marker_color, extra = view["label"].map(codes), dict(colorscale="Turbo", cmin=0, cmax=max(1, len(labels) - 1))
    elif color_by == "round":
        marker_color, extra = view["round"], dict(colorscale="Plasma", showscale=True, colorbar=dict(title="round"))
    else:
        marker_color = (view["label"] != view["prediction"]).astype(int)
        extra = dict(colorscale=[[0, "#9ecae1"], [1, "#e6550d"]], cmin=0, cmax=1)
    fig.add_trace(go.Scattergl(
        x=view["x"], y=view["y"], mode="markers", name="samples",
        customdata=np.stack([view["id"]], axis=-1), hovertext=hover(view), hoverinfo="text",
        marker=dict(size=8, color=marker_color, symbol=[label_symbol.get(x, "circle") for x in view["label"]],
                    line=dict(width=2, color=[OUTLINE.get(f, "#000") for f in view["flag"]]), **extra),
    ))
if len(refs):
    fig.add_trace(go.Scattergl(
        x=refs["x"], y=refs["y"], mode="markers", name="seeds / eval", hovertext=hover(refs), hoverinfo="text",
        customdata=np.stack([refs["id"]], axis=-1),
        marker=dict(size=[14 if s == "seed" else 6 for s in refs["source"]],
                    symbol=["star" if s == "seed" else "circle-open" for s in refs["source"]],
                    color=["#f2b705" if s == "seed" else "#999999" for s in refs["source"]]),
    ))
fig.update_layout(height=560, margin=dict(l=10, r=10, t=30, b=10), dragmode="lasso",
                  legend=dict(orientation="h", y=1.05), xaxis=dict(visible=False), yaxis=dict(visible=False))

left, right = st.columns([3, 1])
with left:
    event = st.plotly_chart(fig, key=f"map_{run_id}_{round_n}", on_select="rerun", selection_mode=("lasso", "box", "points"))
# The samples trace is drawn first (curve 0) whenever there are samples in view.
selected = selection_ids(event.selection.points if event else [], view["id"].tolist()) if len(view) else []
with right:
    st.markdown(f"**{len(selected)} selected**")
    if st.button("Veto selected", key="veto_selected", disabled=not selected, type="primary"):
        n = store.set_vetoed(selected, True)
        st.toast(f"Vetoed {n} samples.")
        st.rerun()
    if st.button("Restore selected", key="restore_selected", disabled=not selected):
        n = store.set_vetoed(selected, False)
        st.toast(f"Restored {n} samples.")
        st.rerun()
    st.divider()
    if len(view) and view["energy"].notna().any():
        default = float(view["energy"].quantile(settings.band_hi / 100.0))
        threshold = st.number_input("Veto all shown above energy", value=round(default, 3), step=0.01, format="%.3f",
                                    key=f"veto_threshold_{run_id}_{round_n}")
        above = view[(view["energy"] > threshold) & ~view["vetoed"]]
        if st.button(f"Veto {len(above)} above", key="veto_above", disabled=not len(above)):
            store.set_vetoed(above["id"].astype(int).tolist(), True)
            st.rerun()
    # Energy histogram with the noise threshold marked, and the band the feedback is drawn from when the run's
    # feedback strategy draws from it (coverage and the others choose by other signals, wherever the energy lies).
    if len(view) and view["energy"].notna().any():
        ev = view["energy"].dropna()
        lo_v, hi_v = np.percentile(ev, [settings.band_lo, settings.band_hi])
        hist = go.Figure(go.Histogram(x=ev, nbinsx=30, marker_color="#b8860b"))
        if feedback_strategy(settings.feedback).draws_from_band:
            hist.add_vrect(x0=lo_v, x1=hi_v, fillcolor="#1f77b4", opacity=0.15, line_width=0,
                           annotation_text="feedback band", annotation_position="top left")
        hist.add_vline(x=hi_v, line_color="#d62728", annotation_text="noise →", annotation_position="bottom right")
        hist.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="energy", showlegend=False)
        st.plotly_chart(hist, key=f"hist_{run_id}_{round_n}")

# -- the table ---------------------------------------------------------------------------------------------------
queue = st.toggle("Review queue: samples still in training, least-believed label first", key="review_queue",
                  help="Only samples the next training uses (not flagged as noise, not vetoed, not probes unless "
                       "the run trains on them), ordered "
                       "by how little the student believes the label the teacher gave them. In bench/quality.py's "
                       "simulated review this order found 2–3× more wrong labels per sample looked at than the "
                       "highest-energy order (the top of the energy order is already flagged as noise).")
st.subheader("Review queue" if queue else "Samples by energy")
shown = (review_queue(view, with_probes=settings.train_on_probes) if queue
         else view.sort_values("energy", ascending=False))
table = shown[["id", "vetoed", "energy", "belief", "label", "prediction", "confidence", "flag", "round", "source",
               "text"]].head(2000)
edited = st.data_editor(
    table, key=f"table_{run_id}_{round_n}", hide_index=True, width="stretch", height=420,
    disabled=[c for c in table.columns if c != "vetoed"],
    column_config={"vetoed": st.column_config.CheckboxColumn("veto", help="Tick to keep this sample out of training"),
                   "energy": st.column_config.NumberColumn(format="%.3f"),
                   "belief": st.column_config.NumberColumn(format="%.2f", help="The student's probability of the "
                                                           "given label"),
                   "confidence": st.column_config.ProgressColumn(min_value=0, max_value=1),
                   "text": st.column_config.TextColumn(width="large")},
)
changed = edited[edited["vetoed"] != table["vetoed"]]
if len(changed):
    for vetoed, group in changed.groupby("vetoed"):
        store.set_vetoed(group["id"].astype(int).tolist(), bool(vetoed))
    st.rerun()
if len(table) == 2000:
    st.caption("Showing the first 2,000 rows of the filter; narrow it to see others.")

detail_id = st.selectbox("Sample details", [None] + table["id"].tolist(), key="detail_id",
                         format_func=lambda i: "—" if i is None else f"#{i}")
if detail_id is not None:
    row = view[view["id"] == detail_id].iloc[0]
    st.text(row["text"])  # st.text: shown verbatim, never interpreted as markdown or HTML
    if kind != "classification":
        st.text(row["label"])  # the output in full; the line below shows its start
    confidence = f" ({row['confidence']:.0%})" if pd.notna(row["confidence"]) else ""
    energy = f"{row['energy']:.3f}" if pd.notna(row["energy"]) else "—"
    st.markdown(f"{what} **{md_escape(clip(row['label'], 200))}** · "
                f"student **{md_escape(clip(row['prediction'], 200))}**{confidence} · energy {energy} · "
                f"round {row['round']} · {row['flag']}")

"""Task page: define what to distill — kind, instruction, labels, seed examples and an evaluation set.

Thin by design: every rule lives in gold/ (TaskSpec validation, datafiles parsing, the store). The page keeps
the task being edited in st.session_state as a draft, so uploads and table edits survive reruns, and writes
to the store only on Save, in one transaction. The address bar names the task open (`/task?task=ID`), so a
link or a reload reopens it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gold.datafiles import MAX_UPLOAD_BYTES, DataFileError, guess_mapping, labels_in, read_table, to_examples
from gold.examples import EXAMPLES, example_spec
from gold.specs import KINDS, MAX_EVAL_ROWS, MAX_SEEDS, Example, SpecError, TaskSpec
from gold.store import NotFound
from views._common import follow_url, get_store, md_escape, mirror_url, show_problems

NEW = "+ New task"  # plain text: an emoji such as U+2795 is a missing-glyph box where no emoji font is installed
SPLITS = {"seed": "Seed examples", "eval": "Evaluation set"}
# The most rows a task can hold per split (TaskSpec's limits): a bigger upload is refused before it reaches the
# table editor, which would otherwise receive every row of a file of up to 100,000 rows at once.
SPLIT_LIMITS = {"seed": (MAX_SEEDS, "seed examples"), "eval": (MAX_EVAL_ROWS, "evaluation rows")}
PREVIEW_ROWS = 10

store = get_store()
ss = st.session_state


# -- the draft ----------------------------------------------------------------------------------------------

def load_draft(spec: TaskSpec, task_id: int | None) -> None:
    """Put a spec into the form's widgets and tables (bumping the editor version resets the editors)."""
    ss["draft_task_id"] = task_id
    ss["f_name"] = spec.name
    ss["f_kind"] = spec.kind or "classification"
    ss["f_instruction"] = spec.instruction
    ss["f_labels"] = ", ".join(spec.labels)
    ss["f_fields"] = ", ".join(spec.input_fields)
    ss["f_output_name"] = spec.output_name
    ss["rows_seed"] = examples_frame(spec.seeds, spec.input_fields)
    ss["rows_eval"] = examples_frame(spec.eval_set, spec.input_fields)
    ss["editor_version"] = ss.get("editor_version", 0) + 1
    ss.pop("saved_problems", None)


def examples_frame(examples: list[Example], fields: list[str]) -> pd.DataFrame:
    cols = fields + ["output"]
    return pd.DataFrame([[ex.inputs.get(f, "") for f in fields] + [ex.output] for ex in examples], columns=cols, dtype=str)


def frame_examples(df: pd.DataFrame, fields: list[str]) -> list[Example]:
    out = []
    for _, row in df.fillna("").iterrows():
        inputs = {f: str(row.get(f, "") or "") for f in fields}
        output = str(row.get("output", "") or "")
        if not any(v.strip() for v in inputs.values()) and not output.strip():
            continue  # an empty line added in the editor
        out.append(Example(inputs=inputs, output=output))
    return out


def split_list(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def current_fields() -> list[str]:
    return split_list(ss.get("f_fields", "text")) or ["text"]


def conform(df: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """Keep the table's columns in step with the input fields typed above it."""
    cols = fields + ["output"]
    df = df.copy()
    for c in cols:
        if c not in df.columns:
            df[c] = ""
    return df[cols].astype(str)


if "draft_task_id" not in ss:
    load_draft(TaskSpec(name="", kind="classification", instruction=""), None)

# Changes asked for by the previous run, applied before their widgets are drawn (Streamlit refuses to set a
# widget's value after it exists in the run): select a task just created, fill labels found in an upload.
if "pending_select" in ss:
    ss["task_id"] = ss.pop("pending_select")
if "f_labels_pending" in ss:
    ss["f_labels"] = ss.pop("f_labels_pending")

# -- choose a task --------------------------------------------------------------------------------------------

st.title("Task")
st.caption("Define what the student should learn: a few seed examples are enough; the teacher writes the rest.")

tasks = store.list_tasks()
ids = [None] + [t.id for t in tasks]
names = {t.id: t.name for t in tasks}
url_problem = follow_url("task", "task_id", list(names), what="task")
if url_problem:
    st.warning(md_escape(url_problem.replace("showing another task", "showing a new one")))
if ss.get("task_id") not in ids:
    ss["task_id"] = None

with st.sidebar:
    st.subheader("Example tasks")
    ex_key = st.selectbox("Example", list(EXAMPLES), format_func=lambda k: EXAMPLES[k].title, key="example_key")
    st.caption(f"Source: {EXAMPLES[ex_key].source}")
    if st.button("Load example task", key="load_example", width="stretch"):
        spec = example_spec(ex_key)
        spec.name = store.unused_task_name(spec.name)
        try:
            new_id = store.create_task(spec)
        except SpecError as e:
            show_problems(e.problems)
        else:
            ss["pending_select"] = new_id
            ss["saved_msg"] = f"Loaded the example task “{spec.name}”: {len(spec.seeds)} seeds, {len(spec.eval_set)} evaluation rows."
            st.rerun()

chosen = st.selectbox(
    "Task", ids, key="task_id", format_func=lambda i: NEW if i is None else names.get(i, str(i)),
    help="Pick a task to edit, or start a new one.",
)
mirror_url("task", "task_id", chosen)
if chosen != ss.get("draft_task_id"):
    if chosen is None:
        load_draft(TaskSpec(name="", kind="classification", instruction=""), None)
    else:
        try:
            load_draft(store.get_task(chosen).spec, chosen)
        except NotFound:
            st.warning("That task was deleted in another window.")
            st.stop()

# -- the definition -----------------------------------------------------------------------------------------

left, right = st.columns([2, 1])
with left:
    st.text_input("Name", key="f_name", max_chars=80, placeholder="e.g. Support ticket routing")
    st.text_area(
        "Instruction", key="f_instruction", height=90,
        placeholder="Say in a sentence what the model should do, e.g. 'Classify the sentiment of a movie review.'",
    )
with right:
    st.radio("Kind", KINDS, key="f_kind", horizontal=True,
             help="classification: pick one label per input. seq2seq: write an output text (e.g. an answer).")
    if ss["f_kind"] == "classification":
        st.text_input("Labels (comma-separated)", key="f_labels", placeholder="negative, positive")
    else:
        st.text_input("Output name", key="f_output_name", placeholder="answer")
    st.text_input("Input fields (comma-separated)", key="f_fields",
                  help="Usually just 'text'; several named parts such as 'premise, hypothesis' also work.")

fields = current_fields()


def upload_block(split: str) -> None:
    """Upload a CSV/TSV/JSONL file, preview its first rows, map its columns, and replace the table's rows with it.

    A file with more rows than the split can hold is refused here, with a preview: passing it on would send
    every row (up to 100,000) to the browser's table editor, only for Save to refuse it.
    """
    up = st.file_uploader(
        f"Upload {SPLITS[split].lower()} (CSV, TSV or JSONL, up to {MAX_UPLOAD_BYTES // 2**20} MB)",
        type=["csv", "tsv", "jsonl", "json", "txt"], key=f"upload_{split}_{ss['editor_version']}",
    )
    if up is None:
        return
    try:
        table = read_table(up.getvalue(), up.name)
    except DataFileError as e:
        st.error(md_escape(str(e)))  # the message quotes the file's name and columns: user text
        return
    st.caption(f"Found {len(table.rows):,} rows with the columns: {', '.join(md_escape(c) for c in table.columns)}. "
               f"The first {min(PREVIEW_ROWS, len(table.rows))}:")
    st.dataframe(pd.DataFrame(table.rows[:PREVIEW_ROWS], columns=table.columns, dtype=str), hide_index=True,
                 width="stretch")
    limit, what = SPLIT_LIMITS[split]
    if len(table.rows) > limit:
        as_eval = split == "seed" and len(table.rows) <= MAX_EVAL_ROWS
        hint = "Upload it as the evaluation set, or keep" if as_eval else "Keep"
        st.error(f"The file has {len(table.rows):,} rows, more than the {limit:,} {what} a task can hold. "
                 f"{hint} only the rows you need.")
        return
    guess = guess_mapping(table.columns, fields)
    options = [""] + table.columns
    cols = st.columns(len(fields) + 1)
    mapping = guess
    for i, f in enumerate(fields):
        default = guess.inputs.get(f, "")
        mapping.inputs[f] = cols[i].selectbox(f"Column for '{md_escape(f)}'", options, index=options.index(default),
                                              key=f"map_{split}_{f}_{up.name}")
    out_default = guess.output or ""
    mapping.output = cols[-1].selectbox("Column for the label / output", options, index=options.index(out_default),
                                        key=f"map_{split}_output_{up.name}") or None
    if st.button(f"Use these {len(table.rows):,} rows", key=f"use_{split}", type="primary"):
        try:
            examples = to_examples(table, mapping, fields)
        except DataFileError as e:
            st.error(md_escape(str(e)))
            return
        ss[f"rows_{split}"] = examples_frame(examples, fields)
        if split == "seed" and ss["f_kind"] == "classification" and not split_list(ss.get("f_labels", "")):
            ss["f_labels_pending"] = ", ".join(labels_in(examples))
        ss["editor_version"] += 1
        st.rerun()


edited: dict[str, pd.DataFrame] = {}
tabs = st.tabs([f"{SPLITS[s]} ({len(ss[f'rows_{s}'])})" for s in SPLITS])
for tab, split in zip(tabs, SPLITS):
    with tab:
        if split == "seed":
            st.caption("Classification: at least one seed per label (4 or more works better). Seq2seq: at least 3.")
        else:
            st.caption("Optional labeled rows to measure the student on; without them the seeds are used.")
        labels = split_list(ss.get("f_labels", ""))
        output_col = (
            st.column_config.SelectboxColumn("label", options=labels, required=True)
            if ss["f_kind"] == "classification" and labels
            else st.column_config.TextColumn(ss.get("f_output_name") or "output")
        )
        edited[split] = st.data_editor(
            conform(ss[f"rows_{split}"], fields), num_rows="dynamic", width="stretch",
            column_config={"output": output_col}, key=f"editor_{split}_{ss['editor_version']}",
            height=300 if split == "eval" else "auto",
        )
        upload_block(split)

# -- save, duplicate, delete ------------------------------------------------------------------------------------


def draft_spec() -> TaskSpec:
    kind = ss["f_kind"]
    return TaskSpec(
        name=ss.get("f_name", ""),
        kind=kind,
        instruction=ss.get("f_instruction", ""),
        labels=split_list(ss.get("f_labels", "")) if kind == "classification" else [],
        input_fields=fields,
        output_name=(ss.get("f_output_name") or "") if kind == "seq2seq" else "label",
        seeds=frame_examples(edited["seed"], fields),
        eval_set=frame_examples(edited["eval"], fields),
    )


draft_id = ss.get("draft_task_id")
b1, b2, b3 = st.columns(3)
if b1.button("Save task", type="primary", key="save", width="stretch"):
    spec = draft_spec()
    try:
        if draft_id is None:
            new_id = store.create_task(spec)
            ss["draft_task_id"] = new_id
            ss["pending_select"] = new_id
        else:
            store.update_task(draft_id, spec)
        ss["rows_seed"], ss["rows_eval"] = examples_frame(spec.seeds, fields), examples_frame(spec.eval_set, fields)
        ss["saved_msg"] = (f"Saved “{md_escape(spec.name)}”: {len(spec.seeds)} seeds, "
                           f"{len(spec.eval_set)} evaluation rows.")
        st.rerun()
    except SpecError as e:
        ss["saved_problems"] = e.problems
    except NotFound:
        ss["saved_problems"] = ["This task was deleted in another window; nothing was saved."]

if draft_id is not None:
    if b2.button("Duplicate", key="duplicate", width="stretch"):
        new_id = store.duplicate_task(draft_id, store.unused_task_name(names.get(draft_id, "task") + " copy"))
        ss["pending_select"] = new_id
        st.rerun()
    if b3.button("Delete…", key="delete", width="stretch"):
        ss["confirm_delete"] = draft_id

if ss.get("confirm_delete") is not None and ss["confirm_delete"] == draft_id:
    n_runs = next((t.n_runs for t in tasks if t.id == draft_id), 0)
    st.warning(f"Delete “{md_escape(names.get(draft_id, ''))}” with its examples and {n_runs} run(s)? This cannot be undone.")
    c1, c2 = st.columns(2)
    if c1.button("Yes, delete", key="confirm_delete_yes", type="primary"):
        store.delete_task(draft_id)
        ss.pop("confirm_delete")
        ss["pending_select"] = None
        ss["draft_task_id"] = "deleted"
        st.rerun()
    if c2.button("Keep it", key="confirm_delete_no"):
        ss.pop("confirm_delete")
        st.rerun()

if ss.get("saved_problems"):
    show_problems(ss["saved_problems"], "The task was not saved. Please fix these problems:")
if ss.get("saved_msg"):
    st.success(ss.pop("saved_msg"))

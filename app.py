"""GOLD Studio: the Streamlit entry point. `make run` starts it (streamlit run app.py).

The screens live in `views/`, not `pages/`: Streamlit treats a `pages/` folder beside the entry script as a
legacy multipage app until st.navigation has run once on the server, so a deep link such as /runs opened first
after a (re)start ran the page file alone — without this script, its navigation, or the worker start.

It declares the pages with st.navigation and draws the overview: the tasks with their seed and evaluation
counts, the runs with their status, and the data folder's size. Each task row links to the page that edits it.
The overview answers at / (the default page) and at /overview (a hidden page that switches to it), so a link
written either way works.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from gold.runs import human_size
from gold.store import tree_bytes
from gold.worker import ensure_worker
from views._common import get_store

st.set_page_config(page_title="GOLD Studio", page_icon="assets/logo.png", layout="wide")

task_page = st.Page("views/task.py", title="Task", icon=":material/edit_note:", url_path="task")
runs_page = st.Page("views/runs.py", title="Runs", icon=":material/play_circle:", url_path="runs")
explore_page = st.Page("views/explore.py", title="Explore", icon=":material/scatter_plot:", url_path="explore")
export_page = st.Page("views/export.py", title="Export", icon=":material/download:", url_path="export")

# The background worker runs the GOLD rounds; start one when none is alive (a cheap query on each rerun).
if ensure_worker(get_store().home):
    st.toast("Started the background worker.")


def overview() -> None:
    store = get_store()
    st.image("assets/logo.png", width=64)
    st.title("GOLD Studio")
    st.markdown(
        "Distill a large language model into a small, fast student for one task. The teacher writes labeled "
        "examples from your seeds; the student's **energy score** finds what it has not seen yet, and GOLD asks "
        "the teacher for more of that, round after round."
    )
    tasks = store.list_tasks()
    st.subheader(f"Tasks ({len(tasks)})")
    if not tasks:
        st.info("No task yet. Open **Task** to define one, or load an example task there in one click.")
        st.page_link(task_page, label="Define a task", icon=":material/arrow_forward:")
    else:
        df = pd.DataFrame(
            [
                {
                    "id": t.id, "name": t.name, "kind": t.kind,
                    "labels": ", ".join(t.labels) if t.labels else "—",
                    "seeds": t.n_seeds, "eval rows": t.n_eval, "runs": t.n_runs,
                    "updated": datetime.fromtimestamp(t.updated_at).strftime("%Y-%m-%d %H:%M"),
                }
                for t in tasks
            ]
        )
        picked = st.dataframe(
            df, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
            key="overview_tasks",
        )
        st.caption("Select a row to open the task.")
        rows = picked.selection.rows if picked else []
        if rows:
            st.session_state["task_id"] = int(df.iloc[rows[0]]["id"])
            st.switch_page(task_page)

    runs = store.list_runs()
    st.subheader(f"Runs ({len(runs)})")
    if not runs:
        st.caption("No runs yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {"id": r.id, "task": r.task_name, "name": r.name, "mode": r.mode, "status": r.status,
                     "created": datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M"),
                     "error": r.error or ""}
                    for r in runs
                ]
            ),
            hide_index=True, width="stretch",
        )
    st.caption(f"Data folder: `{store.home}` · {human_size(tree_bytes(store.home))} on disk (checkpoints, database, "
               "exports). The Runs page deletes runs you no longer need.")


def overview_alias() -> None:
    """/overview: the default page answers only at /, so this hidden page sends a link to /overview there."""
    st.switch_page(home_page)


# The default page is served at /, yet still reserves its own url_path: "home" leaves "overview" to the alias.
home_page = st.Page(overview, title="Overview", icon=":material/home:", url_path="home", default=True)
alias_page = st.Page(overview_alias, title="Overview", url_path="overview", visibility="hidden")
st.navigation([home_page, task_page, runs_page, explore_page, export_page, alias_page]).run()

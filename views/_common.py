"""What every page shares: the store of this browser session, and safe display of user text.

Not a page (st.navigation in app.py lists the pages explicitly). The store is opened once per browser
session rather than cached across sessions, because a sqlite3 connection's transactions must not be
interleaved by two sessions' script threads.
"""

from __future__ import annotations

import streamlit as st

from gold.store import Store, StoreError, gold_home


def get_store() -> Store:
    """The session's Store; on a data-folder problem, a clear message and the page stops."""
    home = str(gold_home())
    cached = st.session_state.get("_store")
    if cached is not None and str(cached.home) == home:
        return cached
    try:
        store = Store(home)
    except StoreError as e:
        st.error(str(e))
        st.stop()
    st.session_state["_store"] = store
    return store


_MD_SPECIALS = "\\`*_{}[]()#+-.!|<>~$"


def md_escape(text: str) -> str:
    """User text inside markdown: every markdown special character escaped, so it shows as typed."""
    return "".join("\\" + c if c in _MD_SPECIALS else c for c in str(text))


def show_problems(problems: list[str], title: str = "Please fix these problems first:") -> None:
    st.error(title + "\n\n" + "\n".join(f"- {md_escape(p)}" for p in problems))


def default_run(run_ids: list[int], key: str) -> None:
    """Keep a page's run choice (session key `key`) valid before its selectbox is drawn: the run opened last on
    the Runs page when there is one, else the newest."""
    ss = st.session_state
    if ss.get(key) not in run_ids:
        ss[key] = ss.get("run_id") if ss.get("run_id") in run_ids else run_ids[0]

"""What every page shares: the store of this browser session, safe display of user text, and the Explore
page's reading of a map selection and its review queue.

Not a page (st.navigation in app.py lists the pages explicitly). The store is opened once per browser
session rather than cached across sessions, because a sqlite3 connection's transactions must not be
interleaved by two sessions' script threads.
"""

from __future__ import annotations

import re
from typing import Any, Collection, Sequence

import pandas as pd
import streamlit as st

from gold.store import Store, StoreError, gold_home, training_roles


def get_store() -> Store:
    """The session's Store; on a data-folder problem, a clear message and the page stops. A nearly full disk
    is a warning on every page (reading still works; the worker stops before writing more)."""
    home = str(gold_home())
    store = st.session_state.get("_store")
    if store is None or str(store.home) != home:
        try:
            store = Store(home)
        except StoreError as e:
            st.error(str(e))
            st.stop()
        st.session_state["_store"] = store
    problem = store.free_space_problem()
    if problem:
        st.warning(problem)
    return store


# Escaped wherever they occur: inline Markdown, HTML, LaTeX ($), Streamlit directives (:red[...]), and the dots
# that would let a GFM autolink turn "evil.example" into a link.
_MD_SPECIALS = "\\`*_{}[]()#.!|<>~$"
# Block markers that act only at the start of a line (list items, thematic breaks, setext underlines): escaped
# there, left alone mid-line so that "UTF-8" or "a - b" reads as typed in an error message.
_LINE_START_MARKER = re.compile(r"^([ \t]*)([-+=])", re.MULTILINE)
# Explicit bidirectional formatting characters (embeddings, overrides such as U+202E, isolates).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def isolate_bidi(text: str) -> str:
    """Wrap user text that holds direction controls in a first-strong isolate (U+2068 … U+2069).

    An override left open (a name ending in U+202E, say) would otherwise reverse the app's own words after it on
    the same line; the closing isolate ends every embedding and override opened inside it. One more isolate is
    opened per U+2069 in the text (so a stray one cannot close ours early), and enough U+2069 follow to close
    the text's own isolates too (unmatched ones are ignored by the bidi algorithm). Text without such
    characters (plain Arabic or Hebrew included) is returned unchanged.
    """
    text = str(text)
    if _BIDI_CONTROLS.isdisjoint(text):
        return text
    closers = text.count("\u2069")
    openers = sum(text.count(c) for c in "\u2066\u2067\u2068")
    return "\u2068" * (1 + closers) + text + "\u2069" * (1 + closers + openers)


def md_escape(text: str) -> str:
    """User text inside markdown: every markdown special character escaped (block markers where a line starts)
    and direction controls isolated, so it shows as typed and leaves the text around it alone."""
    escaped = "".join("\\" + c if c in _MD_SPECIALS else c for c in str(text))
    return isolate_bidi(_LINE_START_MARKER.sub(r"\1\\\2", escaped))


def clip(text: str, limit: int) -> str:
    """At most `limit` characters of `text` (an ellipsis marks a cut): for one-line places such as a hover or a
    caption, where a 20,000-character output would bury everything else. The full text is shown elsewhere."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_problems(problems: list[str], title: str = "Please fix these problems first:") -> None:
    st.error(title + "\n\n" + "\n".join(f"- {md_escape(p)}" for p in problems))


def default_run(run_ids: list[int], key: str, fallback: int | None = None) -> None:
    """Keep a page's run choice (session key `key`) valid before its selectbox is drawn: the run opened last on
    the Runs page when there is one, else `fallback` (when it is one of them), else the newest."""
    ss = st.session_state
    if ss.get(key) not in run_ids:
        if ss.get("run_id") in run_ids:
            ss[key] = ss["run_id"]
        else:
            ss[key] = fallback if fallback in run_ids else run_ids[0]


def follow_url(param: str, key: str, valid: Collection[int], what: str = "run") -> str | None:
    """Take `?param=ID` from the address bar into session key `key` when the URL brought a new value (a link, a
    bookmark, a reload, also after the server restarted); from then on the page's own choice rules, and
    `mirror_url` writes it back. Call before the widget with that key is drawn. Returns a sentence (user text,
    not yet escaped) when the URL names nothing that exists."""
    ss = st.session_state
    raw = st.query_params.get(param)
    seen = f"_url_{key}"
    if raw == ss.get(seen):
        return None
    ss[seen] = raw
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return f"The address names {what} '{clip(raw, 40)}', which is not an id; showing another {what}."
    if value not in valid:
        return f"There is no {what} {value} (it may have been deleted); showing another {what}."
    ss[key] = value
    return None


def mirror_url(param: str, key: str, value: int | None) -> None:
    """Write the page's current choice into the address bar (`?param=ID`, removed for None), so the URL always
    links to what is shown and a reload reopens it."""
    text = None if value is None else str(value)
    if st.query_params.get(param) != text:
        if text is None:
            del st.query_params[param]
        else:
            st.query_params[param] = text
    st.session_state[f"_url_{key}"] = text


# -- the Explore page's map selection and review queue ------------------------------------------------------

def selection_ids(points: list[dict[str, Any]], trace_ids: Sequence[int], curve: int = 0) -> list[int]:
    """Sample ids of the points a user lasso/box-selected on the map, from Streamlit's plotly selection event.

    Each selected point names its trace (`curve_number`) and its position in that trace (`point_index`), so the
    ids come from the order the trace was drawn in; points of other traces (seeds, evaluation rows) are
    ignored. (The event's `customdata` shape differs between plotly trace types, so it is not relied on.)"""
    ids = set()
    for p in points or []:
        if int(p.get("curve_number", 0)) != curve:
            continue
        idx = p.get("point_index", p.get("point_number"))
        if idx is not None and 0 <= int(idx) < len(trace_ids):
            ids.add(int(trace_ids[int(idx)]))
    return sorted(ids)


def review_queue(frame: pd.DataFrame, with_probes: bool = False) -> pd.DataFrame:
    """The rows of a `map_frame` a reviewer's veto still changes — training samples (probes too, in a run with
    `train_on_probes`) neither flagged as noise nor vetoed (the store's `trainable_only` rule) — least-believed
    label first, then highest energy. In the simulated review of bench/quality.py this order found 2–3× more
    wrong labels per sample looked at than the energy order, whose top is already flagged as noise."""
    trains = frame["source"].isin(training_roles(with_probes))
    shown = frame[(frame["flag"] != "noise") & ~frame["vetoed"] & trains]
    return shown.sort_values(["belief", "energy"], ascending=[True, False], na_position="last")

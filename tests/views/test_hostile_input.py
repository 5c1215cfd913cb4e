"""Hostile input on every page: user text is shown as text, names never steer paths, uploads are bounded.

The store is filled directly (no models): two tasks (classification and a two-field seq2seq task) whose names,
labels, seeds, evaluation rows, run names, generated samples, events and errors carry HTML, JavaScript,
Markdown, LaTeX, Streamlit colour directives, a 20,000-character line, right-to-left text with U+202E,
zero-width characters and a control character. A fake student checkpoint (config + a tiny safetensors file)
lets the Export page draw its student section and build a real zip without training anything.

"Shown as text" is checked on AppTest's element tree: every field that Streamlit renders as Markdown (bodies of
markdown / caption / headings / alerts / toasts, widget labels and help, radio options, tab and expander labels,
progress text) must hold the hostile strings escaped, and every string in a plotly figure must be HTML-escaped.
Verbatim elements (st.text, st.code, st.json) and data grids (Arrow bytes) show text as typed by construction.
"""

from __future__ import annotations

import json
import random
import re
import struct
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from google.protobuf.json_format import MessageToDict
from streamlit.testing.v1 import AppTest
from support import ROOT

from gold import downloads, export
from gold.layout import TRAIN_IDS, checkpoint_dir
from gold.datafiles import MAX_ROWS, MAX_UPLOAD_BYTES
from gold.runs import start_run
from gold.specs import MAX_EVAL_ROWS, MAX_SEEDS, Example, GoldSettings, SpecError, TaskSpec
from gold.store import Store

PAGES = {"overview": "app.py", "task": "views/task.py", "runs": "views/runs.py", "explore": "views/explore.py",
         "export": "views/export.py"}
TIMEOUT = 60  # AppTest's guard against a frozen page, not a timing assertion

SCRIPT = "<script>window.pwned=1</script>"
IMG = "<img src=x onerror=alert(1)>"
BOLD_HTML = "<b>bold</b>"
MARKDOWN = "**bold** [link](javascript:alert(1)) # heading"
LATEX = "$x^2$"
COLOUR = ":red[colour]"
LONG = "x" * 20_000  # one 20,000-character word: no space to wrap at
RTL = "مرحبا بالعالم שלום עולם \u202etxt.exe"  # Arabic, Hebrew, then RIGHT-TO-LEFT OVERRIDE left open
ZERO_WIDTH = "zero\u200bwidth\ufeffspace"
CONTROL = "bell\x07ring"
HOSTILE = [SCRIPT, IMG, BOLD_HTML, MARKDOWN, LATEX, COLOUR, RTL, ZERO_WIDTH, CONTROL]

# What rendered Markdown / HTML would act on. A hit not preceded by a backslash is user text shown unescaped.
MD_NEEDLES = ["<script>", "<img src", "<b>bold", "**bold**", "[link](", "# heading", "$x^2$", ":red[colour]"]
HTML_NEEDLES = ["<script", "<img", "<b>"]
_UNESCAPED = [re.compile(r"(?<!\\)" + re.escape(n)) for n in MD_NEEDLES]

# Element types whose text is shown verbatim, or whose fields hold data rather than Markdown.
VERBATIM = {"text", "code", "json", "dataframe", "arrow_data_frame", "plotly_chart"}
MARKDOWN_KEYS = {"body", "label", "help", "text"}


# -- the hostile store -------------------------------------------------------------------------------------------

def _safetensors(path: Path) -> None:
    """A valid, tiny safetensors file (one 2x2 float tensor): enough for the export to copy and count."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))


def _fake_student(store: Store, run_id: int, round_n: int, labels: list[str], seeds: int, ids: list[int]) -> None:
    """What a finished round leaves on disk, without training: config, weights, and the training-set ids."""
    ckpt = checkpoint_dir(store.run_dir(run_id), round_n)
    ckpt.mkdir(parents=True)
    config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert",
              "id2label": {str(i): label for i, label in enumerate(labels)}}
    (ckpt / "config.json").write_text(json.dumps(config))
    _safetensors(ckpt / "model.safetensors")
    (ckpt.parent / TRAIN_IDS).write_text(json.dumps({"seeds": seeds, "sample_ids": ids}))
    store.set_round_step(run_id, round_n, "trained", checkpoint=str(ckpt))


def _fill_run(store: Store, run_id: int, task_id: int, rows: list[dict[str, Any]], labels: list[str]) -> list[int]:
    """One finished round of samples with energies, flags, a map (random layout) and a fake student."""
    ids = store.add_samples(run_id, 1, "train", rows)
    rng = random.Random(run_id)
    store.set_scores([{"id": i, "energy": -1.0 + 0.1 * k, "prediction": rows[k]["output"], "confidence": 0.6}
                      for k, i in enumerate(ids)])
    store.set_flags(run_id, {ids[0]: "feedback", ids[-1]: "noise"})
    store.start_round(run_id, 1)
    task = store.get_task(task_id).spec
    _fake_student(store, run_id, 1, labels, len(task.seeds), ids[:-1])
    store.finish_round(run_id, 1, {"metric_name": "accuracy", "metric": 0.5, "metric_rows": 3, "metric_on": "eval",
                                   "train_size": len(ids), "kept": len(ids), "noise": 1})
    points = [("sample", i, rng.random(), rng.random()) for i in ids]
    points += [("seed" if ex["split"] == "seed" else "eval", ex["id"], rng.random(), rng.random())
               for ex in store.examples_with_ids(task_id)]
    store.set_map_points(run_id, 1, points)
    store.add_event(f"Teacher reply: {SCRIPT} {MARKDOWN}", run_id)
    return ids


def hostile_store(home: Path) -> dict[str, int]:
    """Both tasks with a run each (ids by name: cls_task, s2s_task, cls_run, s2s_run)."""
    store = Store(home)
    labels = [IMG, COLOUR, f"{LATEX} {RTL[-8:]}"]
    seeds = [Example({"text": t}, labels[i % 3]) for i, t in enumerate(HOSTILE)]
    cls = TaskSpec(name=f"{SCRIPT} {BOLD_HTML}", kind="classification", instruction=f"Classify. {MARKDOWN} {SCRIPT}",
                   labels=labels, seeds=seeds,
                   eval_set=[Example({"text": f"eval {t}"}, labels[i % 3]) for i, t in enumerate(HOSTILE[:6])])
    s2s = TaskSpec(name=f"**bold** [link](javascript:alert(1)) {LATEX} {COLOUR}", kind="seq2seq",
                   instruction=f"Answer. {IMG}",
                   input_fields=["question", "context"], output_name="answer",
                   seeds=[Example({"question": f"q {t}", "context": f"c {RTL}"}, f"a {t}") for t in HOSTILE],
                   eval_set=[Example({"question": f"eq {t}", "context": ZERO_WIDTH}, f"ea {t}") for t in HOSTILE[:4]])
    ids = {"cls_task": store.create_task(cls), "s2s_task": store.create_task(s2s)}
    settings = GoldSettings(rounds=2).to_dict()
    ids["cls_run"] = store.create_run(ids["cls_task"], settings, name=f"{IMG} # heading")
    ids["s2s_run"] = store.create_run(ids["s2s_task"], settings, name=f"{LATEX} {COLOUR} ../../etc/passwd")
    texts = HOSTILE + [LONG, f"{LONG} {SCRIPT}"]
    _fill_run(store, ids["cls_run"], ids["cls_task"],
              [{"inputs": {"text": t}, "output": labels[i % 3]} for i, t in enumerate(texts)], labels)
    _fill_run(store, ids["s2s_run"], ids["s2s_task"],
              [{"inputs": {"question": t, "context": RTL}, "output": f"{t} {LONG}"} for t in texts], [])
    store.finish_run(ids["s2s_run"], "failed", error=f"The teacher said: {SCRIPT} {MARKDOWN} {LONG}")
    store.close()
    return ids


@pytest.fixture
def hostile(home) -> dict[str, int]:
    return hostile_store(home)


# -- reading the element tree ------------------------------------------------------------------------------------

def _nodes(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _strings(value: Any, keys: set[str] | None, key: str = "") -> Iterator[str]:
    """Strings in a MessageToDict tree, under the given keys (any key when `keys` is None)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, keys, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, keys, key)
    elif isinstance(value, str) and (keys is None or key in keys):
        yield value


def markdown_fields(at: AppTest) -> list[tuple[str, str]]:
    """(element type, text) for every field the browser renders as Markdown."""
    out = []
    for node in _nodes(at._tree):
        kind, proto = getattr(node, "type", ""), getattr(node, "proto", None)
        if proto is None or kind in VERBATIM:
            continue
        d = MessageToDict(proto)
        out += [(kind, s) for s in _strings(d, MARKDOWN_KEYS)]
        if kind == "radio":  # radio options are Markdown too (selectbox / multiselect options are plain text)
            out += [(kind, s) for s in _strings(d.get("options", []), None)]
    return out


def plotly_strings(at: AppTest) -> list[str]:
    return [s for chart in at.get("plotly_chart") for s in _strings(json.loads(chart.proto.spec), None)]


def assert_shown_as_text(at: AppTest) -> None:
    """No exception, no hostile string unescaped in Markdown, none unescaped in a plotly figure (hovers, legends)."""
    assert not at.exception, [e.value for e in at.exception]
    for kind, text in markdown_fields(at):
        hits = [p.pattern for p in _UNESCAPED if p.search(text)]
        assert not hits, f"{kind} shows user text unescaped ({hits}): {text[:300]!r}"
    for text in plotly_strings(at):
        assert not any(n in text for n in HTML_NEEDLES), f"plotly string not HTML-escaped: {text[:300]!r}"


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / PAGES[name]), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# -- every page, every hostile task and run ----------------------------------------------------------------------

# Each driver walks a page through the states that show the hostile tasks and runs, yielding after each one.

def _overview(at: AppTest, ids: dict[str, int], store: Store) -> Iterator[None]:
    tasks, runs = at.dataframe[0].value, at.dataframe[1].value  # grids show the names exactly as typed
    assert set(tasks["name"]) == {store.get_task(ids[k]).spec.name for k in ("cls_task", "s2s_task")}
    assert set(runs["name"]) == {store.get_run(ids[k]).name for k in ("cls_run", "s2s_run")}
    yield


def _task(at: AppTest, ids: dict[str, int], store: Store) -> Iterator[None]:
    for key in ("cls_task", "s2s_task"):
        at.selectbox(key="task_id").set_value(ids[key]).run()
        assert at.text_input(key="f_name").value == store.get_task(ids[key]).spec.name
        yield
        at.button(key="save").click().run()  # saving echoes the name in a success message
        assert at.success and not at.error, [e.value for e in at.error]
        yield
        at.button(key="delete").click().run()  # the confirmation quotes the name
        assert at.warning
        yield
        at.button(key="confirm_delete_no").click().run()


def _runs(at: AppTest, ids: dict[str, int], store: Store) -> Iterator[None]:
    for key in ("cls_run", "s2s_run"):
        at.selectbox(key="run_id").set_value(ids[key]).run()
        # the progress line quotes the last event: for the failed run, an error with a 20,000-character line
        assert all(len(p.proto.text) < 1000 for p in at.get("progress"))
        yield


def _explore(at: AppTest, ids: dict[str, int], store: Store) -> Iterator[None]:
    for key in ("cls_run", "s2s_run"):
        at.selectbox(key="explore_run").set_value(ids[key]).run()
        yield
        for sample_id in at.selectbox(key="detail_id").options[1:4]:  # the first samples: hostile texts and LONG
            at.selectbox(key="detail_id").set_value(int(sample_id.lstrip("#"))).run()
            yield
        at.selectbox(key="detail_id").set_value(None).run()


def _export(at: AppTest, ids: dict[str, int], store: Store) -> Iterator[None]:
    for key in ("cls_run", "s2s_run"):
        at.selectbox(key="export_run").set_value(ids[key]).run()
        assert at.get("download_button"), "the student section is drawn (the fake checkpoint counts as finished)"
        yield


DRIVERS = {"overview": _overview, "task": _task, "runs": _runs, "explore": _explore, "export": _export}


@pytest.mark.parametrize("name", ["overview", "task", "runs", "explore", "export"])
def test_every_page_shows_hostile_text_as_text(hostile, home, name):
    at = page(name)
    steps = 0
    for _ in DRIVERS[name](at, hostile, Store(home)):
        assert_shown_as_text(at)
        steps += 1
    assert steps


def _hovers(at: AppTest) -> list[str]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return [h for trace in spec["data"] for h in (trace.get("hovertext") or [])]


def test_explore_hovers_are_escaped_clipped_and_isolated(hostile):
    at = page("explore")
    for key in ("cls_run", "s2s_run"):
        at.selectbox(key="explore_run").set_value(hostile[key]).run()
        hovers = _hovers(at)
        assert len(hovers) == 11 + 9 + (6 if key == "cls_run" else 4)  # samples + seeds + evaluation rows
        assert max(len(h) for h in hovers) < 600  # a 20,000-character text or output is clipped in its hover
        assert any("&lt;script&gt;window.pwned=1&lt;/script&gt;" in h for h in hovers)
        assert any("&lt;img src=x onerror=alert(1)&gt;" in h for h in hovers)
        assert any(ZERO_WIDTH in h for h in hovers) and any("مرحبا" in h and "שלום" in h for h in hovers)
        for h in hovers:
            for line in h.split("<br>"):  # an override stays inside its isolate, on its own line of the hover
                if "\u202e" in line:
                    assert line.index("\u2068") < line.index("\u202e") < line.rindex("\u2069"), repr(line)


def test_explore_seq2seq_outputs_are_not_offered_as_labels(hostile):
    at = page("explore")
    at.selectbox(key="explore_run").set_value(hostile["s2s_run"]).run()
    assert not [m for m in at.sidebar.multiselect if m.key == "f_labels_explore"]
    assert "label" not in at.sidebar.radio(key="f_color").options
    assert at.metric[0].value == "11"  # every sample shown: no label filter hides any
    at.selectbox(key="explore_run").set_value(hostile["cls_run"]).run()
    labels = at.sidebar.multiselect(key="f_labels_explore")
    assert sorted(labels.options) == sorted([IMG, COLOUR, f"{LATEX} {RTL[-8:]}"])  # plain text: options as typed


def test_explore_details_show_the_full_text_verbatim(hostile, home):
    store = Store(home)
    samples = {s.inputs["question"]: s for s in store.samples(hostile["s2s_run"])}
    at = page("explore")
    at.selectbox(key="explore_run").set_value(hostile["s2s_run"]).run()
    at.selectbox(key="detail_id").set_value(samples[LONG].id).run()
    assert_shown_as_text(at)
    shown = [t.value for t in at.text]
    assert shown[0] == f"question: {LONG}\ncontext: {RTL}" and shown[1] == f"{LONG} {LONG}"  # st.text: as stored
    line = at.markdown[-1].value
    assert len(line) < 600 and line.startswith("output **xxx")  # the Markdown line clips the 40,001 characters
    at.selectbox(key="detail_id").set_value(samples[SCRIPT].id).run()
    assert at.text[0].value == f"question: {SCRIPT}\ncontext: {RTL}"
    assert "\\<script\\>" in at.markdown[-1].value


# -- names never steer paths -----------------------------------------------------------------------------------

PATH_NAMES = ["../../etc/passwd", "/etc/passwd", "..\\..\\windows\\system32", "~/.bashrc", "run-1/../../../x"]
CONTROL_NAMES = ["evil\x00name", "../\x00/etc/passwd", "two\nlines", "tab\there", "bell\x07"]


def _small_spec(name: str) -> TaskSpec:
    return TaskSpec(name=name, kind="classification", instruction="Classify.", labels=["a", "b"],
                    seeds=[Example({"text": "one"}, "a"), Example({"text": "two"}, "b")])


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize("name", PATH_NAMES)
def test_path_like_names_are_only_names(home, tmp_path, name):
    """A task and a run named like a path are stored as typed; every artifact and export lands under GOLD_HOME,
    named by ids only, and the zip's members cannot escape the folder it unpacks into."""
    store = Store(home)
    task_id = store.create_task(_small_spec(name))
    [run_id] = start_run(store, task_id, GoldSettings(rounds=1), name=name)
    assert store.get_task(task_id).spec.name == name and store.get_run(run_id).name == name
    ids = store.add_samples(run_id, 1, "train", [{"inputs": {"text": f"{name} {i}"}, "output": "ab"[i % 2]}
                                                 for i in range(4)])
    store.start_round(run_id, 1)
    _fake_student(store, run_id, 1, ["a", "b"], 2, ids)
    store.finish_round(run_id, 1, {"metric_name": "accuracy", "metric": 1.0})
    before = _files(tmp_path)
    zip_path = downloads.cached_zip(home, run_id)
    data = downloads.dataset_file(home, run_id, "csv") + downloads.dataset_file(home, run_id, "jsonl")
    assert name.encode() in data  # the name's text travels as data, never as a path
    inside = home.resolve()
    for path in [store.run_dir(run_id), zip_path, *(_files(tmp_path) - before)]:
        assert path.resolve().is_relative_to(inside), path
    assert zip_path.resolve().is_relative_to(store.run_dir(run_id).resolve())
    root = export.folder_name(run_id, 1)
    with zipfile.ZipFile(zip_path) as z:
        for member in z.namelist():
            assert member.startswith(root + "/") and ".." not in Path(member).parts and not Path(member).is_absolute()
    store.delete_task(task_id)  # deleting removes the run's folder, and nothing outside it
    assert not store.run_dir(run_id).exists() and (home / "artifacts").is_dir()


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_names_with_control_characters(home, name):
    """A task name with NUL or another control character is refused with a sentence that says why. A run name
    may be refused the same way, or stored as typed, harmlessly (paths use the run id): today gold/runs.py
    stores it."""
    store = Store(home)
    with pytest.raises(SpecError, match="control characters"):
        store.create_task(_small_spec(name))
    assert store.list_tasks() == []
    task_id = store.create_task(_small_spec("plain"))
    try:
        [run_id] = start_run(store, task_id, GoldSettings(rounds=1), name=name)
    except SpecError as e:
        assert "control characters" in str(e) and store.list_runs() == []
        return
    assert store.get_run(run_id).name == name.strip()
    assert store.run_dir(run_id).resolve().is_relative_to(home.resolve())
    at = page("runs")
    at.selectbox(key="run_id").set_value(run_id).run()
    assert not at.exception


def test_task_page_refuses_a_nul_name(home):
    at = page("task")
    at.text_input(key="f_name").input("../\x00/etc/passwd")
    at.text_area(key="f_instruction").input("Classify.")
    at.button(key="save").click().run()
    assert not at.exception
    assert "control characters" in " ".join(e.value for e in at.error)
    assert Store(home).list_tasks() == []


# -- uploads on the Task page ------------------------------------------------------------------------------------

def _csv(rows: int) -> bytes:
    lines = "".join(f"review number {i} of a big upload,{'ab'[i % 2]}\n" for i in range(rows))
    return ("text,label\n" + lines).encode()


def _upload(at: AppTest, split: int, name: str, data: bytes) -> float:
    """Upload into the seed (0) or evaluation (1) tab and rerun; returns the seconds the page took."""
    at.file_uploader[split].set_value((name, data, "text/csv"))
    t0 = time.perf_counter()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return time.perf_counter() - t0


def _errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def _mapping(at: AppTest) -> list[Any]:
    """The column-mapping selectboxes of the upload step."""
    return [s for s in at.selectbox if (s.key or "").startswith("map_")]


def _table_sizes(at: AppTest) -> list[int]:
    """Rows in the seed and evaluation editors (the tab labels carry the counts)."""
    return [int(t.label.rsplit("(", 1)[1].rstrip(")")) for t in at.tabs]


def test_upload_over_the_size_limit_is_refused(home):
    at = page("task")
    data = _csv(1) + b"x" * (MAX_UPLOAD_BYTES - len(_csv(1)) + 1)
    _upload(at, 0, "huge.csv", data)
    assert "the limit is" in _errors(at) and "MB" in _errors(at)
    assert not [b for b in at.button if b.key == "use_seed"] and not _mapping(at)
    assert _table_sizes(at) == [0, 0] and Store(home).list_tasks() == []


@pytest.mark.parametrize("name,data,message", [
    ("latin1.csv", "text,label\ncafé crème,a\nnaïve,b\n".encode("latin-1"), "not UTF-8"),
    ("utf16.csv", "text,label\nhello,a\n".encode("utf-16"), "not UTF-8"),
    ("random.csv", random.Random(8).randbytes(64 * 1024), "not UTF-8"),
    ("nul.jsonl", b'{"text": "a\x00b", "label": "a"}\n' + bytes(range(32)), "NUL bytes"),
    (f"{IMG} {MARKDOWN}.csv", b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_undecodable_uploads_get_a_message_not_a_traceback(home, name, data, message):
    at = page("task")
    _upload(at, 0, name, data)
    assert message in _errors(at)
    assert_shown_as_text(at)  # the file's name is quoted in the message, escaped
    assert _table_sizes(at) == [0, 0] and Store(home).list_tasks() == []


def test_hostile_columns_and_field_names_in_the_mapping_step(home):
    at = page("task")
    at.text_input(key="f_fields").input(f"text, {BOLD_HTML}").run()  # not a valid field name: refused on Save
    header = ",".join(f'"{c}"' for c in [SCRIPT, MARKDOWN, "label"])
    _upload(at, 0, "cols.csv", f"{header}\n{IMG},{COLOUR},a\n".encode())
    assert_shown_as_text(at)
    labels = [s.label for s in _mapping(at)]
    assert "Column for '\\<b\\>bold\\</b\\>'" in labels
    assert SCRIPT in at.selectbox(key="map_seed_text_cols.csv").options  # options are plain text, as typed
    _upload(at, 0, "twice.csv", f'"{SCRIPT}","{SCRIPT}"\nx,y\n'.encode())
    assert "names a column twice" in _errors(at)
    assert_shown_as_text(at)


def test_upload_of_100000_rows_is_previewed_and_100001_refused(home, capsys):
    at = page("task")
    seconds = _upload(at, 0, "rows100k.csv", _csv(MAX_ROWS))
    assert "Found 100,000 rows" in " ".join(c.value for c in at.caption)
    shown = sorted(len(d.value) for d in at.dataframe)  # the two (empty) editors and the preview
    assert shown == [0, 0, 10], shown  # nothing on the page holds more than the 10 preview rows
    preview = next(d.value for d in at.dataframe if len(d.value))
    assert preview.iloc[0]["text"] == "review number 0 of a big upload"
    assert f"more than the {MAX_SEEDS:,} seed examples" in _errors(at)
    assert not [b for b in at.button if b.key == "use_seed"] and _table_sizes(at) == [0, 0]
    seconds_eval = _upload(at, 1, "rows100k.csv", _csv(MAX_ROWS))
    assert f"more than the {MAX_EVAL_ROWS:,} evaluation rows" in _errors(at)
    assert _table_sizes(at) == [0, 0]

    fresh = page("task")
    seconds_over = _upload(fresh, 0, "rows100001.csv", _csv(MAX_ROWS + 1))
    assert "has 100,001 rows; the limit is 100,000" in _errors(fresh)
    assert not fresh.caption or "Found" not in " ".join(c.value for c in fresh.caption)
    with capsys.disabled():
        print(f"\n100,000-row upload: seed tab {seconds:.2f} s, evaluation tab {seconds_eval:.2f} s; "
              f"100,001 rows refused in {seconds_over:.2f} s")


def test_upload_within_the_eval_limit_reaches_the_editor(home):
    at = page("task")
    _upload(at, 1, "eval.csv", _csv(MAX_EVAL_ROWS))
    at.button(key="use_eval").click().run()
    assert not at.exception and not at.error
    assert _table_sizes(at) == [0, MAX_EVAL_ROWS]

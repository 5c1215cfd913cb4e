"""The overview (app.py) lists tasks with their counts."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from support import ROOT

from gold.examples import example_spec
from gold.store import Store


def test_overview_lists_tasks_and_runs(home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("No task yet" in i.value for i in at.info)
    store = Store(home)
    store.create_task(example_spec("sms_spam"))
    at.run()
    assert not at.exception
    df = at.dataframe[0].value
    row = df[df["name"] == "SMS spam"].iloc[0]
    assert (row["seeds"], row["eval rows"], row["runs"]) == (8, 300, 0)
    assert any("Runs (0)" in s.value for s in at.subheader)


def test_overview_shows_the_data_folder_size(home):
    store = Store(home)
    (store.run_dir(1)).mkdir(parents=True)
    (store.run_dir(1) / "checkpoint.bin").write_bytes(b"\0" * 12_000_000)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert any(f"`{store.home}`" in c and "12 MB on disk" in c for c in captions), captions

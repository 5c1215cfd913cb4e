"""The Task page through Streamlit's AppTest, against a real store."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from support import FIXTURES, ROOT

from gold.store import Store

PAGE = str(ROOT / "views" / "task.py")


@pytest.fixture
def page(home):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def errors(at) -> str:
    return "\n".join(e.value for e in at.error)


def test_load_example_task(page, home):
    page.sidebar.selectbox(key="example_key").set_value("trec")
    page.sidebar.button(key="load_example").click().run()
    assert not page.exception
    [task] = Store(home).list_tasks()
    assert (task.name, task.n_seeds, task.n_eval) == ("Question type (TREC)", 24, 300)
    assert page.selectbox(key="task_id").value == task.id
    assert page.text_input(key="f_name").value == "Question type (TREC)"
    assert "Loaded the example task" in page.success[0].value
    # a second click makes a second task with a fresh name, never an error
    page.sidebar.button(key="load_example").click().run()
    assert sorted(t.name for t in Store(home).list_tasks()) == ["Question type (TREC)", "Question type (TREC) (2)"]


def test_create_task_from_uploaded_file(page, home):
    page.text_input(key="f_name").input("My reviews")
    page.text_area(key="f_instruction").input("Classify the sentiment of a movie review.")
    page.file_uploader[0].upload("reviews.csv", (FIXTURES / "seeds_ok.csv").read_bytes(), "text/csv")
    page.run()
    assert not page.exception
    assert "Found 4 rows" in "".join(c.value for c in page.caption)
    # the mapping step guessed the differently named columns
    assert page.selectbox(key="map_seed_text_reviews.csv").value == "sentence"
    assert page.selectbox(key="map_seed_output_reviews.csv").value == "sentiment"
    page.button(key="use_seed").click().run()
    assert not page.exception
    assert page.text_input(key="f_labels").value == "positive, negative"
    page.button(key="save").click().run()
    assert not page.exception, page.exception
    assert errors(page) == ""
    task = Store(home).get_task("My reviews")
    assert len(task.spec.seeds) == 4 and task.spec.labels == ["positive", "negative"]
    assert task.spec.seeds[0].inputs == {"text": "a gorgeous, witty, seductive movie ."}
    assert page.selectbox(key="task_id").value == task.id


def test_validation_problems_are_shown_inline_and_nothing_is_stored(page, home):
    page.text_input(key="f_labels").input("negative, positive")
    page.button(key="save").click().run()
    shown = errors(page)
    assert "name is empty" in shown and "instruction is empty" in shown and "'negative' has no seed" in shown
    assert Store(home).list_tasks() == []


def test_bad_upload_shows_the_line_and_keeps_the_task(page, home):
    page.sidebar.button(key="load_example").click().run()  # SST-2
    page.file_uploader[0].upload("bad.csv", (FIXTURES / "bad_quote.csv").read_bytes(), "text/csv")
    page.run()
    assert "line 3 is not valid CSV" in errors(page)
    page.file_uploader[0].upload("latin1.csv", (FIXTURES / "latin1.csv").read_bytes(), "text/csv")
    page.run()
    assert "not UTF-8" in errors(page)
    [task] = Store(home).list_tasks()
    assert task.n_seeds == 8


def test_edit_duplicate_and_delete(page, home):
    page.sidebar.button(key="load_example").click().run()
    store = Store(home)
    [task] = store.list_tasks()
    page.text_area(key="f_instruction").input("Is this movie review positive or negative?")
    page.button(key="save").click().run()
    assert store.get_task(task.id).spec.instruction == "Is this movie review positive or negative?"
    page.button(key="duplicate").click().run()
    assert not page.exception
    copy = store.get_task("Movie review sentiment (SST-2) copy")
    assert page.selectbox(key="task_id").value == copy.id
    page.button(key="delete").click().run()
    page.button(key="confirm_delete_yes").click().run()
    assert not page.exception
    assert [t.name for t in store.list_tasks()] == ["Movie review sentiment (SST-2)"]
    assert page.selectbox(key="task_id").value is None


def test_the_url_opens_a_task_and_follows_the_pick(home):
    from gold.examples import example_spec

    store = Store(home)
    sst2, trec = store.create_task(example_spec("sst2")), store.create_task(example_spec("trec"))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["task"] = str(trec)
    at.run()
    assert not at.exception
    assert at.selectbox(key="task_id").value == trec and at.text_input(key="f_name").value == "Question type (TREC)"
    at.selectbox(key="task_id").set_value(sst2).run()
    assert at.query_params["task"] == str(sst2) and at.text_input(key="f_name").value.startswith("Movie review")
    at.selectbox(key="task_id").set_value(None).run()
    assert "task" not in at.query_params  # a new task has no id to link to yet
    gone = AppTest.from_file(PAGE, default_timeout=60)
    gone.query_params["task"] = "12345"
    gone.run()
    assert any("There is no task 12345" in w.value for w in gone.warning)
    assert gone.selectbox(key="task_id").value is None


def test_the_new_task_choice_is_plain_text(page):
    # An emoji here (it was U+2795) shows as a missing-glyph box in a browser without an emoji font.
    [new] = [o for o in page.selectbox(key="task_id").options if "New task" in o]
    assert new.isascii()

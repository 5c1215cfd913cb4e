"""The app in a real browser: Debian's Chromium driven by Playwright against a freshly started server."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from gold.store import ACTIVE_STATUSES, Store
from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, free_port, start_app


def task_labels(store: Store, task_id: int) -> list[str]:
    return store.get_task(task_id).spec.labels

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)", allow_module_level=True)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def served(finished_run, tmp_path):
    """A fresh app server on a copy of the finished run's data folder (the copy may be changed)."""
    home = tmp_path / "home"
    shutil.copytree(finished_run[0], home, ignore=shutil.ignore_patterns("artifacts", "*.log"))
    port = free_port()
    app = start_app(home, port)
    yield home, f"http://127.0.0.1:{port}", finished_run[1]
    stop(app)


def test_a_deep_link_on_a_fresh_server_gets_the_app_navigation(served, browser):
    home, base, _ = served
    page = browser.new_page()
    page.goto(base + "/runs", wait_until="networkidle")
    page.get_by_text("Per round", exact=True).wait_for(timeout=60_000)
    nav = " ".join(page.locator("[data-testid=stSidebarNav]").all_inner_texts())
    assert all(name in nav for name in ("Overview", "Task", "Runs", "Explore", "Export")), nav


def test_lasso_on_the_map_then_veto(served, browser):
    home, base, run_id = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(base + "/explore", wait_until="networkidle")
    page.get_by_text("Samples by energy", exact=True).wait_for(timeout=60_000)
    page.locator("[data-testid='stSelectbox']").filter(has_text=re.compile(r"^Run")).first.click()
    page.get_by_role("option", name=re.compile(rf"^#{run_id} ")).first.click()
    time.sleep(3)
    lasso_then_veto(page, Store(home), run_id)


def stop(proc) -> None:
    """SIGTERM, then SIGKILL if it has not exited in 10 s: a loaded Streamlit server can take longer than that
    to close its sessions, and for the restart test a hard stop is the harsher case anyway."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def lasso_most_of_the_map(page) -> None:
    box = page.locator(".js-plotly-plot").first.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    path = [(0.05, 0.12), (0.85, 0.12), (0.85, 0.98), (0.05, 0.98), (0.05, 0.13)]  # most of the plot area
    page.mouse.move(x0 + w * path[0][0], y0 + h * path[0][1])
    page.mouse.down()
    for fx, fy in path[1:]:
        page.mouse.move(x0 + w * fx, y0 + h * fy, steps=12)
    page.mouse.up()


def lasso_then_veto(page, store: Store, run_id: int, before_veto=None) -> int:
    """Lasso most of the map, wait for the page to count the selection, veto it; returns how many were vetoed."""
    lasso_most_of_the_map(page)
    selected = page.get_by_text(re.compile(r"^\d+ selected$"))
    selected.wait_for(timeout=30_000)
    deadline = time.time() + 30
    while selected.inner_text().startswith("0 ") and time.time() < deadline:
        time.sleep(0.5)
    n = int(selected.inner_text().split()[0])
    assert n > 0, "the lasso selected nothing"
    no_exception(page)
    if before_veto:
        before_veto()
    page.get_by_role("button", name="Veto selected").click()
    deadline = time.time() + 30
    while time.time() < deadline and sum(r.vetoed for r in store.samples(run_id)) < n:
        time.sleep(0.5)
    assert sum(r.vetoed for r in store.samples(run_id)) == n
    return n


def shoot(page, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def no_exception(page) -> None:
    assert not page.locator("[data-testid=stException]").count(), page.locator("[data-testid=stException]").first.inner_text()


def test_whole_flow_in_the_browser_with_a_server_restart_mid_run(browser, tmp_path):
    """A user's whole path on a fresh data folder: load the example task → start a tiny GOLD run → the Streamlit
    server restarts while it runs (history intact after reload) → progress reaches done → lasso points on the map
    and veto them → download the student zip → plain transformers loads it and classifies.
    Screenshots go to $GOLD_SCREENSHOTS (e.g. assets/) when set, else to the test's temp folder."""
    import os
    import zipfile

    from support import start_worker

    home = tmp_path / "home"
    shots = Path(os.environ.get("GOLD_SCREENSHOTS") or tmp_path / "shots")
    worker = start_worker(home)
    port = free_port()
    app = start_app(home, port)
    base = f"http://127.0.0.1:{port}"
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base + "/task", wait_until="networkidle")
        page.get_by_role("button", name="Load example task").click()
        page.get_by_text(re.compile("Loaded the example task")).wait_for(timeout=60_000)
        no_exception(page)
        shoot(page, shots, "e2e_task")
        store = Store(home)
        [task] = store.list_tasks()

        page.goto(base + "/runs", wait_until="networkidle")
        page.get_by_role("button", name="Start run").wait_for(timeout=60_000)
        page.get_by_text("Advanced settings", exact=True).click()  # Probe size, Epochs, … are advanced settings
        for label, value in (("Rounds", "2"), ("Samples per round", "4"), ("Probe size", "2"), ("Epochs", "1"),
                             ("Min steps", "4"), ("Max new tokens", "24"), ("Run name", "browser run")):
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Tab")
        page.get_by_role("button", name="Start run").click()
        page.get_by_text(re.compile(r"^Queued run \d+")).wait_for(timeout=60_000)
        [run] = store.list_runs()
        settings = store.get_run(run.id).settings
        assert (settings["rounds"], settings["samples_per_round"], settings["student"]["min_steps"]) == (2, 4, 4)

        # The server restarts while the worker runs round 1: the run goes on, the page shows its history.
        deadline = time.time() + 300
        while store.get_run(run.id).status != "running" and time.time() < deadline:
            time.sleep(0.5)
        stop(app)
        assert store.get_run(run.id).status in ("running", "done")
        app = start_app(home, port)
        page.goto(base + "/runs", wait_until="networkidle")
        page.get_by_text(f"#{run.id} browser run").first.wait_for(timeout=60_000)
        page.get_by_role("progressbar").first.wait_for(timeout=60_000)  # the live progress is back

        deadline = time.time() + 900
        while store.get_run(run.id).status in ACTIVE_STATUSES and time.time() < deadline:
            time.sleep(1)
        assert store.get_run(run.id).status == "done", store.get_run(run.id).error
        page.get_by_text(re.compile(r"mode: gold · done")).first.wait_for(timeout=60_000)  # the fragment caught up
        page.get_by_text("Per round", exact=True).wait_for(timeout=60_000)  # with both rounds' history
        no_exception(page)
        shoot(page, shots, "e2e_runs")

        page.goto(base + "/explore", wait_until="networkidle")
        page.get_by_text("Samples by energy", exact=True).wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
        time.sleep(2)
        lasso_then_veto(page, store, run.id, before_veto=lambda: shoot(page, shots, "e2e_explore"))
        no_exception(page)

        page.goto(base + "/export", wait_until="networkidle")
        button = page.get_by_role("button", name=re.compile("Download the student"))
        button.wait_for(timeout=60_000)
        shoot(page, shots, "e2e_export")
        with page.expect_download(timeout=120_000) as download:
            button.click()
        zip_path = tmp_path / "student.zip"
        download.value.save_as(zip_path)
    finally:
        stop(app)
        stop(worker)

    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(folder)
    [model_dir] = [p.parent for p in folder.rglob("config.json")]
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(model_dir))
    out = clf(["a warm, funny and moving film", "a dull, lifeless mess"])
    assert {o["label"] for o in out} <= set(task_labels(store, task.id))


@pytest.fixture
def fresh_app(tmp_path):
    """A fresh app server on an empty data folder that holds one example task: (home, base URL, task id, restart)."""
    from support import tiny_task

    home = tmp_path / "home"
    store = Store(home)
    task_id = tiny_task(store)
    store.close()
    port = free_port()
    app = {"proc": start_app(home, port)}

    def restart() -> None:
        stop(app["proc"])
        app["proc"] = start_app(home, port)

    yield home, f"http://127.0.0.1:{port}", task_id, restart
    stop(app["proc"])


def test_overview_answers_at_its_name_and_enter_in_a_number_box_starts_nothing(fresh_app, browser):
    home, base, _, _ = fresh_app
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(base + "/overview", wait_until="networkidle")
    page.get_by_role("heading", name="GOLD Studio").wait_for(timeout=60_000)
    assert "Page not found" not in page.content()
    assert page.url.rstrip("/") == base  # the alias hands over to the default page

    page.goto(base + "/task", wait_until="networkidle")
    task_box = page.get_by_role("combobox", name="Task", exact=True)
    task_box.wait_for(timeout=60_000)
    assert task_box.input_value() == "+ New task"  # plain text: no emoji, which shows as a missing-glyph box

    page.goto(base + "/runs", wait_until="networkidle")
    rounds = page.get_by_label("Rounds", exact=True)
    rounds.wait_for(timeout=60_000)
    for _ in range(2):  # a newcomer pressed Enter twice: that queued two runs
        rounds.fill("3")
        rounds.press("Enter")
    time.sleep(4)
    no_exception(page)
    assert Store(home).list_runs() == []
    assert rounds.input_value() == "3"  # the typing reached the box: the test would have caught a submit
    page.get_by_role("button", name="Start run").click()
    page.get_by_text(re.compile(r"^Queued run \d+")).wait_for(timeout=60_000)  # the button still starts one
    [run] = Store(home).list_runs()
    assert Store(home).get_run(run.id).settings["rounds"] == 3


def finished_rows(store: Store, task_id: int, name: str) -> int:
    """A run the worker ended, with one finished round (rows only: this test is about which run a URL opens)."""
    from gold.specs import GoldSettings

    run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name=name)
    store.start_round(run_id, 1)
    store.finish_round(run_id, 1, {"metric_name": "accuracy", "metric": 0.75, "kept": 60})
    store.finish_run(run_id, "done")
    return run_id


def shown_run(page) -> str:
    return page.locator("[data-testid=stHeading]").filter(has_text=re.compile(r"^#\d+ ")).first.inner_text()


def test_a_link_to_a_run_reopens_it_after_a_server_restart(fresh_app, browser):
    import json

    home, base, task_id, restart = fresh_app
    store = Store(home)
    older, newer = finished_rows(store, task_id, "older"), finished_rows(store, task_id, "newer")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/runs?run={older}", wait_until="networkidle")
    page.get_by_text(f"#{older} older", exact=True).wait_for(timeout=60_000)
    assert shown_run(page) == f"#{older} older"  # not the newest run, which opens without a link

    page.get_by_text("Settings (frozen for this run)").click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download settings").click()
    assert download.value.suggested_filename == "run.json"
    assert json.loads(Path(download.value.path()).read_text()) == store.get_run(older).settings

    restart()
    page.goto(f"{base}/runs?run={older}", wait_until="networkidle")  # the bookmark, on the new server
    page.get_by_text(f"#{older} older", exact=True).wait_for(timeout=60_000)
    assert shown_run(page) == f"#{older} older"
    no_exception(page)

    page.locator("[data-testid='stSelectbox']").filter(has_text=re.compile(r"^Run")).first.click()
    page.get_by_role("option", name=re.compile(rf"^#{newer} ")).first.click()
    page.get_by_text(f"#{newer} newer", exact=True).wait_for(timeout=60_000)
    deadline = time.time() + 30
    while f"run={newer}" not in page.url and time.time() < deadline:
        time.sleep(0.5)
    assert page.url.endswith(f"/runs?run={newer}")  # the address bar follows the pick


def test_the_bar_moves_within_a_round_of_a_real_run(fresh_app, browser):
    """A real worker runs a one-round run whose teacher is asked one prompt at a time: the bar must move while
    the round generates, not sit empty until the round's step is recorded; and the runs table above, drawn while
    the run was queued, says "running" once the worker has it (a newcomer saw "queued" beside a moving bar)."""
    from support import start_worker, tiny_settings

    from gold.runs import start_run

    home, base, task_id, _ = fresh_app
    store = Store(home)
    settings = tiny_settings(rounds=1, samples_per_round=8, probe_size=0)
    settings.teacher.batch_size = 1
    [run_id] = start_run(store, task_id, settings, name="watched")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/runs?run={run_id}", wait_until="networkidle")
    bar = page.get_by_role("progressbar").first
    bar.wait_for(timeout=60_000)
    worker = start_worker(home, "--once", "--no-maps")  # the bar is watched, not the map
    seen: list[tuple[int, str | None]] = []  # (bar value, the round's last finished step) while round 1 runs
    cells = page.locator("[data-testid=stDataFrame]").first.locator("[role=gridcell]")  # the runs table, as text

    def listed_status() -> str:
        return cells.nth(4).inner_text()  # id, name, task, mode, status, rounds done, created

    assert listed_status() == "queued"
    said_running = False
    try:
        deadline = time.time() + 900
        while time.time() < deadline:
            r = store.round(run_id, 1)
            if r and r.status == "done":
                break
            value = bar.get_attribute("aria-valuenow")
            if r and value is not None:
                seen.append((int(float(value)), r.step))
            said_running = said_running or listed_status() == "running"
            time.sleep(0.3)
        worker.communicate(timeout=600)
    finally:
        if worker.poll() is None:
            stop(worker)
    assert store.get_run(run_id).status == "done", store.get_run(run_id).error
    while_generating = [v for v, step in seen if step is None]
    assert while_generating and max(while_generating) > 0, seen  # the bar moved before the step was recorded
    assert len({v for v, _ in seen if v > 0}) >= 2, seen  # and more than once within the round
    assert said_running, listed_status()
    no_exception(page)


def test_delete_run_removes_that_runs_rows_and_artifacts_only(fresh_app, browser):
    """*Delete run…* then *Yes, delete run*: the run's rows and its artifacts folder go; the other run, its
    folder and the task stay, and the page opens the remaining run."""
    from gold.specs import GoldSettings

    home, base, task_id, _ = fresh_app
    store = Store(home)
    ids = []
    for name in ("kept", "doomed"):
        run_id = store.create_run(task_id, GoldSettings(rounds=1).to_dict(), name=name)
        store.add_samples(run_id, 1, "train", [{"inputs": {"text": f"{name} sample"}, "output": "positive"}])
        store.start_round(run_id, 1)
        store.finish_round(run_id, 1, {"metric": 0.5, "metric_name": "accuracy"})
        store.finish_run(run_id, "done")
        (store.run_dir(run_id) / "round-1" / "student").mkdir(parents=True)
        (store.run_dir(run_id) / "round-1" / "student" / "weights.bin").write_bytes(b"x" * 1000)
        ids.append(run_id)
    kept, doomed = ids
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/runs?run={doomed}", wait_until="networkidle")
    page.get_by_role("button", name="Delete run…").click()
    page.get_by_text("This cannot be undone").wait_for(timeout=30_000)
    page.get_by_role("button", name="Yes, delete run").click()
    page.get_by_text(f"Deleted run #{doomed}").wait_for(timeout=30_000)
    assert [r.id for r in store.list_runs()] == [kept]
    assert store.samples(doomed) == [] and store.rounds(doomed) == [] and not store.run_dir(doomed).exists()
    assert len(store.samples(kept)) == 1 and (store.run_dir(kept) / "round-1" / "student" / "weights.bin").is_file()
    assert store.get_task(task_id).spec.name
    assert f"run={doomed}" not in page.url
    no_exception(page)

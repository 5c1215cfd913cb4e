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
    while time.time() < deadline and sum(r["vetoed"] for r in store.samples(run_id)) < n:
        time.sleep(0.5)
    assert sum(r["vetoed"] for r in store.samples(run_id)) == n
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
        for label, value in (("Rounds", "2"), ("Samples per round", "4"), ("Probe size", "2"), ("Epochs", "1"),
                             ("Min steps", "4"), ("Max new tokens", "24"), ("Run name", "browser run")):
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Tab")
        page.get_by_role("button", name="Start run").click()
        page.get_by_text(re.compile(r"^Queued run \d+")).wait_for(timeout=60_000)
        [run] = store.list_runs()
        settings = store.get_run(run.id)["settings"]
        assert (settings["rounds"], settings["samples_per_round"], settings["student"]["min_steps"]) == (2, 4, 4)

        # The server restarts while the worker runs round 1: the run goes on, the page shows its history.
        deadline = time.time() + 300
        while store.get_run(run.id)["status"] != "running" and time.time() < deadline:
            time.sleep(0.5)
        stop(app)
        assert store.get_run(run.id)["status"] in ("running", "done")
        app = start_app(home, port)
        page.goto(base + "/runs", wait_until="networkidle")
        page.get_by_text(f"#{run.id} browser run").first.wait_for(timeout=60_000)
        page.get_by_role("progressbar").first.wait_for(timeout=60_000)  # the live progress is back

        deadline = time.time() + 900
        while store.get_run(run.id)["status"] in ACTIVE_STATUSES and time.time() < deadline:
            time.sleep(1)
        assert store.get_run(run.id)["status"] == "done", store.get_run(run.id)["error"]
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

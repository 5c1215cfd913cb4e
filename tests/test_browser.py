"""The app in a real browser: Debian's Chromium driven by Playwright against a freshly started server."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS, free_port, start_app

from gold.store import Store

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
    app.terminate()
    app.wait(timeout=20)


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
    box = page.locator(".js-plotly-plot").first.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    path = [(0.05, 0.12), (0.85, 0.12), (0.85, 0.98), (0.05, 0.98), (0.05, 0.13)]  # most of the plot area
    page.mouse.move(x0 + w * path[0][0], y0 + h * path[0][1])
    page.mouse.down()
    for fx, fy in path[1:]:
        page.mouse.move(x0 + w * fx, y0 + h * fy, steps=12)
    page.mouse.up()
    selected = page.get_by_text(re.compile(r"^\d+ selected$"))
    selected.wait_for(timeout=30_000)
    deadline = time.time() + 30
    while selected.inner_text().startswith("0 ") and time.time() < deadline:
        time.sleep(0.5)
    n = int(selected.inner_text().split()[0])
    assert n > 0, "the lasso selected nothing"
    assert not page.locator("[data-testid=stException]").count()
    page.get_by_role("button", name="Veto selected").click()
    deadline = time.time() + 30
    while time.time() < deadline and sum(r["vetoed"] for r in Store(home).samples(run_id)) < n:
        time.sleep(0.5)
    assert sum(r["vetoed"] for r in Store(home).samples(run_id)) == n

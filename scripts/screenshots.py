"""Take the README's screenshots with a real headless Chromium (Debian's, driven by Playwright).

    .venv/bin/python scripts/screenshots.py                      # task page and overview, example tasks only
    .venv/bin/python scripts/screenshots.py --home DATA_FOLDER   # also Runs and Explore, from a folder holding
                                                                 # a finished run (copied, never modified)

It starts the app on a free loopback port (worker autostart off) with a throw-away GOLD_HOME, opens each
page, and saves a PNG. Playwright cannot download a browser here, so it drives /usr/bin/chromium.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("GOLD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GOLD_HOME": str(home), "HF_HUB_OFFLINE": "1", "GOLD_AUTOSTART_WORKER": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the app did not start within 60 s")


def main() -> None:
    import argparse
    import shutil

    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--home", help="a data folder with a finished run, for the Runs and Explore screenshots")
    args = ap.parse_args()
    shots = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        if args.home:
            shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("artifacts", "*.log"))
        else:
            for key in ("sst2", "trec", "svamp"):
                subprocess.run([sys.executable, "-m", "gold", "--home", str(home), "task", "example", key], cwd=ROOT,
                               check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        app = start_app(home, port)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(base + "/", wait_until="networkidle")
                page.get_by_text("GOLD Studio").first.wait_for(timeout=30_000)
                time.sleep(1.5)
                shots.append(_shot(page, "overview.png"))
                page.goto(base + "/task", wait_until="networkidle")
                page.get_by_text("Load example task").wait_for(timeout=30_000)
                page.locator("[data-testid='stSelectbox']").nth(1).click()
                page.get_by_role("option").nth(1).click()
                page.get_by_role("tab", name="Seed examples").wait_for(timeout=30_000)
                time.sleep(2)
                shots.append(_shot(page, "task_page.png"))
                if args.home:
                    page.goto(base + "/runs", wait_until="networkidle")
                    page.get_by_text("Per round", exact=True).wait_for(timeout=60_000)
                    _pick_first_run(page)
                    page.get_by_text("Per round", exact=True).wait_for(timeout=60_000)
                    time.sleep(3)
                    shots.append(_shot(page, "runs_page.png"))
                    page.goto(base + "/explore", wait_until="networkidle")
                    page.get_by_text("Samples by energy", exact=True).wait_for(timeout=60_000)
                    _pick_first_run(page)
                    page.get_by_text("Samples by energy", exact=True).wait_for(timeout=60_000)
                    time.sleep(4)
                    shots.append(_shot(page, "explore_page.png", full_page=False))
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=20)
    print("wrote " + ", ".join(shots))


def _pick_first_run(page) -> None:
    """Show run #1 (the GOLD run of a GOLD + baseline pair) rather than the newest, the baseline."""
    import re

    page.locator("[data-testid='stSelectbox']").filter(has_text=re.compile(r"^Run")).first.click()
    page.get_by_role("option", name=re.compile(r"^#1 ")).first.click()
    time.sleep(3)


def _shot(page, name: str, full_page: bool = True) -> str:
    page.screenshot(path=str(ROOT / "assets" / name), full_page=full_page)
    return f"assets/{name}"


if __name__ == "__main__":
    main()

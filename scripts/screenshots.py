"""Take the README's screenshots with a real headless Chromium (Debian's, driven by Playwright).

    .venv/bin/python scripts/screenshots.py            # writes assets/*.png

It starts the app on a free loopback port with a throw-away GOLD_HOME holding the example tasks, opens each
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
    env = {**os.environ, "GOLD_HOME": str(home), "HF_HUB_OFFLINE": "1"}
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
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        for key in ("sst2", "trec", "svamp"):
            subprocess.run([sys.executable, "-m", "gold", "--home", str(home), "task", "example", key], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
        port = free_port()
        app = start_app(home, port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
                page.get_by_text("Tasks (3)").wait_for(timeout=30_000)
                page.screenshot(path=str(ROOT / "assets" / "overview.png"), full_page=True)
                page.goto(f"http://127.0.0.1:{port}/task", wait_until="networkidle")
                page.get_by_text("Load example task").wait_for(timeout=30_000)
                page.get_by_role("combobox", name="Task").first.wait_for(timeout=30_000)
                page.locator("[data-testid='stSelectbox']").nth(1).click()
                page.get_by_role("option", name="Movie review sentiment (SST-2)").click()
                page.get_by_text("Seed examples (8)").wait_for(timeout=30_000)
                time.sleep(2)
                page.screenshot(path=str(ROOT / "assets" / "task_page.png"), full_page=True)
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=20)
    print("wrote assets/overview.png and assets/task_page.png")


if __name__ == "__main__":
    main()

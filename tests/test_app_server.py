"""The app as `make run` serves it: loopback only unless the user says otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request

import pytest
from support import PYTHON, ROOT

from scripts.screenshots import free_port

pytestmark = pytest.mark.slow


def outward_address() -> str | None:
    """This machine's address on its outward interface (no packet is sent: UDP connect only picks a route)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_app_listens_on_loopback_only_by_default(home):
    ip = outward_address()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to probe")
    port = free_port()
    env = {**os.environ, "GOLD_HOME": str(home), "GOLD_AUTOSTART_WORKER": "0"}
    # No --server.address: what the repository's .streamlit/config.toml says is what a user gets.
    app = subprocess.Popen([PYTHON, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                            "--server.headless", "true"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        with pytest.raises(OSError):  # refused: nothing listens on the outward interface
            socket.create_connection((ip, port), timeout=3).close()
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded server can be slow to close: stop it hard
            app.kill()
            app.wait(timeout=30)

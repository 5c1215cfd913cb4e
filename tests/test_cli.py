"""`python -m gold task …` in a real subprocess against a real store."""

from __future__ import annotations

import subprocess

from support import FIXTURES, PYTHON, ROOT

from gold.models import embedded_encoder
from gold.store import Store
from gold.teachers import llamacpp


def gold(*args: str, home) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "gold", "--home", str(home), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_import_list_and_example(home):
    r = gold("task", "import", str(FIXTURES / "seeds_ok.csv"), "--name", "reviews", "--kind", "classification",
             "--instruction", "Classify the review.", "--eval", str(FIXTURES / "seeds_ok.csv"), home=home)
    assert r.returncode == 0, r.stderr
    assert "4 seeds, 4 evaluation rows, labels positive, negative" in r.stdout
    r = gold("task", "example", "trec", home=home)
    assert r.returncode == 0 and "24 seeds, 300 evaluation rows" in r.stdout
    r = gold("task", "list", home=home)
    assert "reviews" in r.stdout and "Question type (TREC)" in r.stdout
    assert len(Store(home).list_tasks()) == 2


def test_bad_input_is_a_clear_message_and_stores_nothing(home, tmp_path):
    gold("task", "example", "sst2", "--name", "taken", home=home)
    cases = [
        (["task", "import", str(FIXTURES / "bad_quote.csv"), "--name", "a", "--kind", "classification",
          "--instruction", "i"], "line 3 is not valid CSV"),
        (["task", "import", str(FIXTURES / "latin1.csv"), "--name", "a", "--kind", "classification",
          "--instruction", "i"], "not UTF-8"),
        (["task", "import", str(FIXTURES / "seeds_ok.csv"), "--name", "taken", "--kind", "classification",
          "--instruction", "i"], "already exists"),
        (["task", "import", str(FIXTURES / "seeds_ok.csv"), "--name", "b", "--kind", "classification",
          "--instruction", ""], "instruction is empty"),
        (["task", "import", str(FIXTURES / "seeds_ok.csv"), "--name", "c", "--kind", "classification",
          "--instruction", "i", "--labels", "positive,negative,neutral"], "'neutral' has no seed"),
        (["task", "import", str(FIXTURES / "seeds_ok.csv"), "--name", "d", "--kind", "classification",
          "--instruction", "i", "--labels", "positive,neutral"], "not one of the task's labels"),
        (["task", "import", str(FIXTURES / "no_label.csv"), "--name", "e", "--kind", "classification",
          "--instruction", "i"], "Choose which column holds the label"),
        (["task", "import", str(tmp_path / "nope.csv"), "--name", "f", "--kind", "classification",
          "--instruction", "i"], "There is no file"),
        (["task", "example", "agnews"], "no example task 'agnews'"),
        (["run", "taken", "--engine", "llama.cpp", "--model", str(embedded_encoder().folder), "--detach"],
         "runs GGUF files only" if llamacpp.available() else "llama.cpp engine is not installed"),
    ]
    for args, message in cases:
        r = gold(*args, home=home)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert [t.name for t in Store(home).list_tasks()] == ["taken"]


def test_bad_home_is_a_clear_message(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = gold("task", "list", home=blocker / "sub")
    assert r.returncode == 2 and "cannot use its data folder" in r.stderr and "Traceback" not in r.stderr


def test_run_queue_list_cancel(home):
    gold("task", "example", "sst2", "--name", "s", home=home)
    r = gold("run", "s", "--rounds", "2", "--per-round", "8", "--with-baseline", "--detach", home=home)
    assert r.returncode == 0 and "Queued run 1 and 2" in r.stdout, r.stderr
    r = gold("runs", home=home)
    assert "gold" in r.stdout and "baseline" in r.stdout and "queued" in r.stdout
    r = gold("cancel", "1", home=home)
    assert r.returncode == 0
    assert Store(home).get_run(1)["status"] == "cancelled"
    bad = gold("run", "s", "--teacher", "openai", "--detach", home=home)
    assert bad.returncode == 2 and "--model" in bad.stderr
    missing = gold("run", "s", "--model", "/nope/model.gguf", "--detach", home=home)
    assert missing.returncode == 2 and "not a model GOLD Studio can load offline" in missing.stderr
    assert gold("run", "nope", "--detach", home=home).stderr.startswith("error: There is no task")


def test_worker_detach_starts_one_worker_per_data_folder(home):
    import os
    import re
    import signal
    import time

    first = gold("worker", "--detach", home=home)
    assert first.returncode == 0, first.stderr
    pid = int(re.search(r"pid (\d+)", first.stdout).group(1))
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(w["pid"] == pid for w in Store(home).live_workers()):
            time.sleep(0.5)
        assert any(w["pid"] == pid for w in Store(home).live_workers())
        second = gold("worker", "--detach", home=home)
        assert "already running" in second.stdout
    finally:
        os.kill(pid, signal.SIGTERM)

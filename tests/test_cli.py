"""`python -m gold task …` in a real subprocess against a real store."""

from __future__ import annotations

import os
import subprocess

from support import FIXTURES, PYTHON, ROOT, as_queued

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
        (["task", "example", "imdb"], "no example task 'imdb'"),
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
    assert Store(home).get_run(1).status == "cancelled"
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


def test_delete_asks_first_and_removes_only_that_run(home):
    from gold.examples import example_spec
    from gold.specs import GoldSettings

    store = Store(home)
    task_id = store.create_task(example_spec("sst2"))
    doomed, sibling = (store.create_run(task_id, GoldSettings().to_dict(), name=n) for n in ("doomed", "sibling"))
    for run_id in (doomed, sibling):
        store.add_samples(run_id, 1, "train", [{"inputs": {"text": f"text of {run_id}"}, "output": "positive"}])
        store.request_cancel(run_id)  # queued → cancelled: ended, so deletable
        (store.run_dir(run_id) / "round-1" / "student").mkdir(parents=True)
        (store.run_dir(run_id) / "round-1" / "student" / "model.safetensors").write_bytes(b"\0" * 2_000_000)

    def delete(*args: str, answer: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "-m", "gold", "--home", str(home), "delete", *args], cwd=ROOT, input=answer,
                              capture_output=True, text=True, timeout=120)

    no = delete(str(doomed), answer="n\n")
    assert no.returncode == 1 and "This cannot be undone. [y/N]" in no.stdout and "Nothing was deleted" in no.stdout
    silent = delete(str(doomed))  # no answer at all (stdin closed): nothing deleted, and the way out is named
    assert silent.returncode == 1 and "--yes" in silent.stdout
    assert store.get_run(doomed).name == "doomed" and store.run_dir(doomed).exists()

    yes = delete(str(doomed), answer="y\n")
    assert yes.returncode == 0, yes.stderr
    assert f"Deleted run {doomed} 'doomed'" in yes.stdout and "2.0 MB on disk" in yes.stdout
    assert [r.id for r in store.list_runs()] == [sibling] and not store.run_dir(doomed).exists()
    assert store.samples(sibling) and store.run_dir(sibling).exists()

    unknown = delete(str(doomed), "--yes")
    assert unknown.returncode == 2 and unknown.stderr.strip() == f"error: There is no run {doomed}."
    store.resume_run(sibling)  # queued again: not ended
    running = delete(str(sibling), "--yes")
    assert running.returncode == 2 and "has not ended (it is queued)" in running.stderr
    assert "Traceback" not in unknown.stderr + running.stderr and store.get_run(sibling)
    store.request_cancel(sibling)
    assert delete(str(sibling), "--yes").returncode == 0 and store.list_runs() == []


# -- gold run --config ----------------------------------------------------------------------------------------------

def _settings_file_dict():
    """A run's settings as the Runs page downloads them (GoldSettings.to_dict), every section changed a little."""
    from gold.specs import GoldSettings

    s = GoldSettings(rounds=3, samples_per_round=12, probe_size=4, seed=7, noise="keep", feedback_rate=0.25)
    s.teacher.temperature = 0.7
    s.teacher.max_new_tokens = 32
    s.teacher.engine = "transformers"  # a named engine is stored as named ("auto" is resolved: the next test)
    s.student.epochs = 2
    s.student.loss = "ce"
    s.student.soft_label_weight = 0.5
    s.labeler.votes = 3
    return s.to_dict()


def test_run_from_a_config_file_has_exactly_those_settings(home, tmp_path):
    import json

    import yaml

    from gold.specs import GoldSettings

    gold("task", "example", "sst2", "--name", "s", home=home)
    wanted = _settings_file_dict()
    (tmp_path / "run.json").write_text(json.dumps(wanted, indent=2))
    r = gold("run", "s", "--config", str(tmp_path / "run.json"), "--detach", home=home)
    assert r.returncode == 0 and "Queued run 1 " in r.stdout, r.stderr
    store = Store(home)
    assert store.get_run(1).settings == wanted  # the stored settings are the file, key for key

    # YAML, a partial file (missing keys: today's defaults), and flags: only the ones typed override the file.
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"rounds": 2, "seed": 5, "student": {"epochs": 3}}))
    r = gold("run", "s", "--config", str(tmp_path / "run.yaml"), "--per-round", "9", "--loss", "ce",
             "--baseline", "--detach", home=home)
    assert r.returncode == 0, r.stderr
    expected = GoldSettings(rounds=2, seed=5, samples_per_round=9, mode="baseline")
    expected.student.epochs, expected.student.loss = 3, "ce"
    from gold.teachers import resolved_engine

    # the default engine, resolved (and on llama.cpp the weights "auto" chose)
    assert store.get_run(2).settings == as_queued(expected).to_dict()
    r = gold("run", "s", "--config", str(tmp_path / "run.json"), "--rounds", "5", "--detach", home=home)
    assert r.returncode == 0, r.stderr
    assert store.get_run(3).settings == {**wanted, "rounds": 5}
    wanted_auto = {**wanted, "teacher": {**wanted["teacher"], "engine": "auto"}}
    (tmp_path / "auto.json").write_text(json.dumps(wanted_auto))
    r = gold("run", "s", "--config", str(tmp_path / "auto.json"), "--detach", home=home)
    assert r.returncode == 0, r.stderr
    from gold.teachers.llamacpp import available

    engine = Store(home).get_run(4).settings["teacher"]["engine"]
    assert engine == resolved_engine("auto", wanted["teacher"]["model"]) != "auto"  # the run names what it ran on
    assert (engine == "llama.cpp") is (available() and not os.path.exists("/proc/driver/nvidia/version"))


def test_a_bad_config_file_is_a_clear_error_and_queues_nothing(home, tmp_path):
    import json

    gold("task", "example", "sst2", "--name", "s", home=home)

    def write(name: str, text: str) -> str:
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    good = _settings_file_dict()
    (tmp_path / "latin1.json").write_bytes('{"rounds": 2, "name": "caf\xe9"}'.encode("latin-1"))
    cases = [
        (str(tmp_path / "missing.json"), "There is no file"),
        (str(tmp_path), "--config takes a .json, .yaml or .yml file"),
        (write("run.txt", "{}"), "--config takes a .json, .yaml or .yml file"),
        (str(tmp_path / "latin1.json"), "is not UTF-8 text"),
        (write("broken.json", '{"rounds": 2,\n "seed": }'), "is not valid JSON: Expecting value at line 2"),
        (write("broken.yaml", "rounds: 2\nstudent: [epochs: 3\n"), "is not valid YAML at line"),
        (write("list.json", "[1, 2]"), "must hold one object of settings"),
        (write("typo.json", json.dumps({**good, "roundz": 3})), "'roundz' is not a setting (did you mean 'rounds'?)"),
        (write("nested.json", json.dumps({"student": {"epoch": 3}})),
         "'student.epoch' is not a setting (did you mean 'student.epochs'?)"),
        (write("type.json", json.dumps({"rounds": "four"})), "'rounds' must be a whole number, not the string 'four'"),
        (write("bool.yaml", "noise_filter: 1\n"), "'noise_filter' must be true or false"),
        (write("section.json", json.dumps({"teacher": "openai"})), "'teacher' must be an object of settings"),
        (write("value.json", json.dumps({**good, "rounds": 0})), "Rounds must be between 1 and 100"),
        (write("openai.json", json.dumps({"teacher": {"backend": "openai"}})), "name the server's model"),
    ]
    for path, message in cases:
        r = gold("run", "s", "--config", path, "--detach", home=home)
        assert r.returncode == 2, (path, r.stdout, r.stderr)
        assert message in r.stderr and r.stderr.startswith("error: "), (path, r.stderr)
        assert "Traceback" not in r.stderr
    # A good file with a bad flag on top: the flag's problem, still nothing queued.
    r = gold("run", "s", "--config", write("ok.json", json.dumps(good)), "--rounds", "0", "--detach", home=home)
    assert r.returncode == 2 and "Rounds must be between 1 and 100" in r.stderr
    assert Store(home).list_runs() == []


def test_a_run_json_stored_before_the_noise_strategies_still_starts_the_run_it_describes(home, tmp_path):
    """A run.json downloaded when noise handling was two booleans (and the map a setting) means the same run."""
    import json

    from gold.specs import GoldSettings

    gold("task", "example", "sst2", "--name", "s", home=home)
    old = GoldSettings(rounds=2, seed=3).to_dict()
    del old["noise"], old["feedback"]
    old["teacher"]["engine"] = "transformers"  # what such a file names
    for n, (flags, noise) in enumerate([({"noise_filter": False, "relabel_noise": False}, "keep"),
                                        ({"noise_filter": True, "relabel_noise": True}, "relabel"),
                                        ({"noise_filter": True}, "drop")], start=1):
        (tmp_path / f"old{n}.json").write_text(json.dumps({**old, **flags, "map_after_round": False}))
        r = gold("run", "s", "--config", str(tmp_path / f"old{n}.json"), "--detach", home=home)
        assert r.returncode == 0, r.stderr
        expected = GoldSettings(rounds=2, seed=3, noise=noise)  # keys a config leaves out take the defaults
        expected.teacher.engine = "transformers"
        assert Store(home).get_run(n).settings == expected.to_dict()


def test_every_setting_has_a_run_flag_and_the_old_flag_names_still_work():
    from gold import settings as registry
    from gold.cli import build_parser, run_settings
    from gold.specs import GoldSettings

    parser = build_parser()
    [run] = [a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "run"]
    flags = {opt for action in run[1]._actions for opt in action.option_strings}
    for s in registry.settings():
        assert s.cli in flags, s.path
    assert len({s.cli for s in registry.settings()}) == len(registry.settings())
    for old in ("--rounds", "--per-round", "--probe", "--baseline", "--seed", "--teacher", "--engine", "--base-url",
                "--model", "--student-model", "--epochs", "--min-steps", "--loss", "--labeler", "--pick-labeler",
                "--label-votes", "--with-baseline", "--config", "--name", "--inline", "--detach"):
        assert old in flags, old
    args = parser.parse_args(["run", "t", "--student-learning-rate", "1e-4", "--per-round", "9", "--probe", "2",
                              "--noise", "keep", "--no-student-warm-start", "--steer-labels", "--teacher-top-p",
                              "0.5", "--labeler", "teacher", "--labeler", "teacher", "--pick-labeler", "ensemble",
                              "--baseline", "--keep-checkpoints", "best_and_last"])
    s = run_settings(args)
    expected = GoldSettings(samples_per_round=9, probe_size=2, noise="keep", steer_labels=True, mode="baseline",
                            keep_checkpoints="best_and_last")
    expected.student.learning_rate, expected.student.warm_start, expected.teacher.top_p = 1e-4, False, 0.5
    expected.labeler.models, expected.labeler.pick = ["teacher", "teacher"], "ensemble"
    assert s == expected
    assert run_settings(parser.parse_args(["run", "t"])) == GoldSettings()  # no flag typed: the defaults

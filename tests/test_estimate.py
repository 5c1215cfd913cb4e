"""The estimate a Runs page shows before a run starts: calls and tokens from the prompts the run would send, cost
from the prices, time from this machine's own finished rounds (and none without them)."""

from __future__ import annotations

import pytest
from support import tiny_task

from gold import prompts
from gold.estimate import estimate_run
from gold.specs import GoldSettings


def test_calls_and_tokens_come_from_the_prompts_the_run_would_send(store):
    task = store.get_task(tiny_task(store)).spec
    s = GoldSettings(rounds=3, samples_per_round=10, probe_size=4)
    e = estimate_run(store, task, s)
    assert e.samples == 3 * (10 + 4) and e.generation_calls == 3 * 14  # completion form: one call per sample
    one = prompts.plan_requests(task, 1)[0].prompt
    assert e.prompt_tokens >= 42 * len(one) / 8  # every call carries a real few-shot prompt
    assert e.completion_tokens == 42 * s.teacher.max_new_tokens
    assert e.label_reads == 3 * 10  # soft labels (the default): each training sample read back once
    assert e.remote_label_calls == 0 and e.cost_usd is None and e.seconds is None
    assert "42 teacher calls" in e.sentence() and "once the first round has finished" in e.sentence()


def test_a_priced_remote_teacher_shows_its_ceiling_cost_and_its_label_requests(store):
    task = store.get_task(tiny_task(store)).spec
    s = GoldSettings(rounds=2, samples_per_round=10, probe_size=0, mode="baseline")
    s.teacher.backend, s.teacher.model, s.teacher.base_url = "openai", "m", "http://127.0.0.1:9/v1"
    s.teacher.price_in_per_m, s.teacher.price_out_per_m = 1.0, 2.0
    e = estimate_run(store, task, s)
    assert e.generation_calls == 2 * 2 * 1  # chat form: 5 samples a request, per label (2 labels × 5 samples)
    assert e.cost_usd == pytest.approx((e.prompt_tokens * 1.0 + e.completion_tokens * 2.0) / 1e6)
    assert e.remote_label_calls == e.label_reads == 20  # the teacher itself reads labels back over HTTP
    assert "at most $" in e.sentence()


def test_time_comes_from_this_machines_finished_rounds_with_the_same_teacher(store):
    task_id = tiny_task(store)
    task = store.get_task(task_id).spec
    s = GoldSettings(rounds=2, samples_per_round=10, probe_size=0, mode="baseline")
    done = store.create_run(task_id, s.to_dict())
    store.start_round(done, 1)
    store.finish_round(done, 1, {"gen_prompts": 10, "generate_seconds": 20.0, "train_size": 20, "train_seconds": 10.0})
    other = GoldSettings()
    other.teacher.model = "another-model"
    elsewhere = store.create_run(task_id, other.to_dict())
    store.start_round(elsewhere, 1)
    store.finish_round(elsewhere, 1, {"gen_prompts": 1, "generate_seconds": 999.0, "train_size": 1,
                                      "train_seconds": 999.0})
    e = estimate_run(store, task, s)
    seeds = len(task.seeds)
    assert e.seconds_from_rounds == 1  # the other teacher's round says nothing about this one
    assert e.seconds == pytest.approx(20 * 2.0 + ((seeds + 10) + (seeds + 20)) * 0.5)
    assert "on this machine" in e.sentence()


def test_gold_run_estimate_prints_the_line_and_queues_nothing(store, home, capsys):
    from gold.cli import main

    tiny_task(store)
    assert main(["--home", str(home), "run", "1", "--rounds", "2", "--per-round", "8", "--probe", "2",
                 "--estimate"]) == 0
    assert "20 teacher calls for 20 samples" in capsys.readouterr().out
    assert store.list_runs() == []
    assert main(["--home", str(home), "run", "1", "--rounds", "0", "--estimate"]) == 2  # bad input: a message
    assert "Rounds must be between 1 and 100" in capsys.readouterr().err
    assert store.list_runs() == []

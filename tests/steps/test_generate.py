"""The generate step's teacher calls: a teacher that decodes replies together gets a step's prompts in one call, and
a cancel stops it inside that call (the real llama.cpp teacher)."""

from __future__ import annotations

import threading
import time

import pytest
from support import tiny_settings, tiny_task

from gold.context import Cancelled, RunContext
from gold.records import RoundMetrics
from gold.steps import RoundState
from gold.steps import generate as generate_step
from gold.store import Store

pytestmark = pytest.mark.slow  # loads a real model


@pytest.fixture(scope="module")
def teacher():
    pytest.importorskip("llama_cpp", reason="the optional llama.cpp engine is not installed (`make llama`)")
    from gold.teachers.llamacpp import LlamaCppTeacher

    return LlamaCppTeacher.cached(threads=1, sequences=4)


def test_a_teacher_that_decodes_together_gets_the_whole_step_and_a_cancel_stops_it_mid_call(store, home, teacher,
                                                                                            monkeypatch):
    task_id = tiny_task(store)
    settings = tiny_settings()
    settings.teacher.engine = "llama.cpp"
    run_id = store.create_run(task_id, settings.to_dict())
    assert store.claim_run("test") == run_id
    state = RoundState(task=store.get_task(task_id).spec, settings=settings, n=1, run_dir=store.run_dir(run_id),
                       metrics=RoundMetrics(), load_teacher=lambda: teacher)
    ctx = RunContext(store, run_id, "test")
    calls: list[int] = []
    generate = teacher.generate

    def counted(prompts, *args, **kwargs):
        calls.append(len(prompts))
        return generate(prompts, *args, **kwargs)

    monkeypatch.setattr(teacher, "generate", counted)
    assert teacher.decodes_together and settings.teacher.batch_size == 6
    written = generate_step.write_samples(ctx, state, 18, role="train", feedback={})
    assert calls == [18] and written.prompts == 18  # one call, not three batches of 6
    stored = len(store.samples(run_id))
    assert stored == written.kept + written.rejected > 0

    # A cancel requested while the teacher decodes 48 prompts stops it before that call's end: nothing of it is
    # stored, and the teacher's slots are clean for the next call.
    other = Store(home)
    started = teacher.decoder.steps

    def cancel_once_decoding() -> None:
        while teacher.decoder.steps < started + 8:
            time.sleep(0.005)
        other.request_cancel(run_id)

    threading.Thread(target=cancel_once_decoding, daemon=True).start()
    with pytest.raises(Cancelled):
        generate_step.write_samples(ctx, state, 48, role="train", feedback={})
    assert len(store.samples(run_id)) == stored
    assert len(generate(["Review: a fine film\nLabel:"], state.settings.teacher.generation_settings(seed=3))) == 1

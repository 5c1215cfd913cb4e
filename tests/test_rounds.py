"""The round loop in-process (the worker's path without the process): the reviewer hook between rounds."""

from __future__ import annotations

import json

from support import tiny_settings, tiny_task


def test_vetoes_made_between_rounds_leave_the_next_training_set(store, home):
    """`execute_run(after_round=...)` is where a reviewer (the simulated one of bench/quality.py) vetoes samples;
    the next round must train without them, and the final data keeps them marked, not deleted."""
    from gold.rounds import TRAIN_IDS, execute_run
    from gold.worker import RunContext

    task_id = tiny_task(store)
    run_id = store.create_run(task_id, tiny_settings(map_after_round=False, noise_filter=False).to_dict())
    assert store.claim_run("test", only=[run_id]) == run_id
    vetoed: list[int] = []

    def reviewer(n: int) -> None:
        if n == 1:
            ids = [r["id"] for r in store.samples(run_id, round_n=1, role="train", kept_only=True)][:2]
            store.set_vetoed(ids)
            vetoed.extend(ids)

    assert execute_run(RunContext(store, run_id, "test"), after_round=reviewer) == "done"
    assert vetoed, "round 1 kept no sample to veto"
    round1 = json.loads((store.run_dir(run_id) / "round-1" / TRAIN_IDS).read_text())["sample_ids"]
    round2 = json.loads((store.run_dir(run_id) / "round-2" / TRAIN_IDS).read_text())["sample_ids"]
    assert set(vetoed) <= set(round1)  # trained on before the veto…
    assert not set(vetoed) & set(round2)  # …and not after it
    assert {r["id"] for r in store.samples(run_id) if r["vetoed"]} == set(vetoed)

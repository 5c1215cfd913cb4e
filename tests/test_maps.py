"""The map's review queue: which samples a reviewer's veto still changes."""

from __future__ import annotations

import pandas as pd


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4, 5],
        "source": ["train", "probe", "train", "train", "seed"],
        "flag": ["ok", "ok", "noise", "ok", "ok"],
        "vetoed": [False, False, False, True, False],
        "belief": [0.9, 0.1, 0.2, 0.3, None],
        "energy": [-3.0, -1.0, -0.5, -2.0, None],
    })


def test_review_queue_holds_training_samples_not_noise_not_vetoed():
    from gold.maps import review_queue

    assert review_queue(frame())["id"].tolist() == [1]


def test_review_queue_holds_probes_when_the_run_trains_on_them_least_believed_first():
    from gold.maps import review_queue

    assert review_queue(frame(), with_probes=True)["id"].tolist() == [2, 1]

"""bench/quality.py caches each finished cell under a key that hashes everything its result depends on. Adding a
setting must not silently throw away hours of measured cells: a new setting at the value that does what the engine
did before belongs in quality.NEUTRAL. These keys are those of the cells behind the README's tables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

quality = pytest.importorskip("quality")

MEASURED = {  # (task, method, seed, budget, engine) -> the key its cached cell has
    ("sst2", "gold", 0, 256, "transformers"): "sst2-gold-s0-b256-6fa98ddf5997",
    ("sst2", "baseline", 0, 256, "transformers"): "sst2-baseline-s0-b256-ca0d30233670",
    ("trec", "gold", 0, 256, "transformers"): "trec-gold-s0-b256-d1b015699845",
    ("sst2", "gold", 0, 2048, "llama.cpp"): "sst2-gold-s0-b2048-6a0568fbb4c7",
    ("trec", "baseline", 1, 2048, "llama.cpp"): "trec-baseline-s1-b2048-159cec785a67",
}


@pytest.mark.parametrize("cell", list(MEASURED), ids=lambda c: "-".join(map(str, c)))
def test_measured_cells_keep_their_keys(cell):
    task_key, name, seed, budget, engine = cell
    method = quality.Method(name, "run", name)
    if engine != "transformers":
        method.overrides["teacher.engine"] = engine
    task = quality.example_task(task_key, 200)
    assert quality.cell_key(task, method, seed, budget, 4, 0.2) == MEASURED[cell], (
        "a cached cell's identity changed: if a new setting's default does what the engine did before, add it to "
        "quality.NEUTRAL; if the defaults really changed, the cells must be measured again (update this table)")


def test_a_setting_away_from_its_neutral_value_is_part_of_the_key():
    task = quality.example_task("sst2", 200)
    plain = quality.Method("gold", "run", "gold")
    batch = quality.Method("gold", "run", "gold", overrides={"student.soft_label_weight": 1.0,
                                                             "student.soft_label_calibration": "batch"})
    assert quality.cell_key(task, plain, 0, 256, 4, 0.2) != quality.cell_key(task, batch, 0, 256, 4, 0.2)

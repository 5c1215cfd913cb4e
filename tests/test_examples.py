"""The bundled example tasks load offline and are valid tasks."""

from __future__ import annotations

import pytest

from gold.examples import DATA_DIR, EXAMPLES, example_spec


@pytest.mark.parametrize("key", list(EXAMPLES))
def test_example_is_valid_and_complete(key, store):
    spec = example_spec(key)
    assert spec.problems() == []
    assert spec.eval_set, "every example ships an evaluation set"
    task_id = store.create_task(spec)
    assert store.get_task(task_id).spec == spec


def test_expected_examples_each_with_its_source():
    assert set(EXAMPLES) == {"sst2", "trec", "agnews", "sms_spam", "svamp"}
    sources = (DATA_DIR / "SOURCES.md").read_text()
    for credit in ("Socher", "Li and Roth", "Zhang, Zhao, LeCun", "Almeida", "Patel"):
        assert credit in sources
    assert "non-commercial" in EXAMPLES["agnews"].source  # its licence travels with the task
    trec = example_spec("trec")
    assert len(trec.labels) == 6 and len(trec.seeds) == 24
    agnews = example_spec("agnews")
    assert len(agnews.labels) == 4 and len(agnews.seeds) == 16 and len(agnews.eval_set) == 300
    svamp = example_spec("svamp")
    assert svamp.kind == "seq2seq" and svamp.input_fields == ["question"] and svamp.seeds[0].output.isdigit()

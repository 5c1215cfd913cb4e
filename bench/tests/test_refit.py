"""bench/refit.py's recipes: what a recipe text asks for, and a clear error for what it cannot."""

from __future__ import annotations

import pytest

refit = pytest.importorskip("refit")


def test_a_noise_recipe_names_a_registered_strategy_and_keeps_the_student_settings_apart():
    rows, overrides = refit.parse_recipe("trainable:noise=disagreement,loss=ce")
    assert rows == "trainable" and overrides == {"noise": "disagreement", "loss": "ce"}
    assert refit.parse_recipe(refit.RECIPES["reflag_drop"]) == ("trainable", {"noise": "drop"})
    with pytest.raises(SystemExit, match="noise must be one of"):
        refit.parse_recipe("trainable:noise=nope")
    with pytest.raises(SystemExit, match="not a student setting"):
        refit.parse_recipe("all:noise=drop")  # flags anew only what the last round trained on


def test_a_soup_recipe_is_greedy_or_refused():
    assert refit.parse_recipe(refit.RECIPES["greedy_soup"]) == ("average", {"soup": "greedy"})
    with pytest.raises(SystemExit, match="soup must be greedy"):
        refit.parse_recipe("average:soup=uniform")
    with pytest.raises(SystemExit, match="not a student setting"):
        refit.parse_recipe("trainable:soup=greedy")  # a soup trains nothing

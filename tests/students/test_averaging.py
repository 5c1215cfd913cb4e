"""The weight average of a run's students (`gold.students.averaging`): every floating-point weight is the mean,
integer buffers stay the last student's, and students of different shapes are refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gold.students.averaging import average_students


class Tiny(torch.nn.Module):
    def __init__(self, width: int = 3):
        super().__init__()
        self.linear = torch.nn.Linear(width, 2)
        self.register_buffer("position_ids", torch.arange(width))


def student(seed: int, width: int = 3) -> SimpleNamespace:
    torch.manual_seed(seed)
    return SimpleNamespace(model=Tiny(width))


def test_each_weight_is_the_mean_and_integer_buffers_stay_the_last_students():
    a, b, c = student(0), student(1), student(2)
    expected = (a.model.linear.weight + b.model.linear.weight + c.model.linear.weight).detach() / 3
    c.model.position_ids += 5  # a buffer that is not a weight: kept as the last student has it
    out = average_students([a, b, c])
    assert out is c
    assert torch.allclose(out.model.linear.weight, expected, atol=1e-6)
    assert torch.equal(out.model.position_ids, torch.arange(3) + 5)
    assert not torch.allclose(a.model.linear.weight, expected)  # the others are left as they were


def test_one_student_is_itself_and_different_models_are_refused():
    only = student(0)
    before = only.model.linear.weight.detach().clone()
    assert average_students([only]) is only and torch.equal(only.model.linear.weight, before)
    with pytest.raises(ValueError, match="cannot be averaged"):
        average_students([student(0, width=4), student(1)])
    with pytest.raises(ValueError, match="no students"):
        average_students([])

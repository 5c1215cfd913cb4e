"""gold.energy against values computed by hand."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gold.energy import (
    RCE_CLAMP,
    ce_loss,
    classification_loss,
    energy_from_logits,
    select_band,
    sce_loss,
    sequence_energy,
    shift_for_causal,
)

LN2 = math.log(2)
LOG_CLAMP = -math.log(RCE_CLAMP)  # 9.2103…


# --- energy_from_logits -----------------------------------------------------------------------------------
def test_energy_hand_values():
    e = energy_from_logits(np.array([[0.0, 0.0], [1.0, 2.0], [5.0, 5.0]]))
    assert isinstance(e, np.ndarray) and e.shape == (3,)
    assert e[0] == pytest.approx(-LN2)
    assert e[1] == pytest.approx(-math.log(math.e + math.e**2))
    assert e[2] == pytest.approx(-5 - LN2)
    assert energy_from_logits([1.0, 2.0, 3.0]) == pytest.approx(-math.log(math.e + math.e**2 + math.e**3))  # a single row


def test_energy_confident_is_lower_than_uncertain():
    confident, uncertain = energy_from_logits(np.array([[8.0, -8.0], [0.1, -0.1]]))
    assert confident < uncertain


def test_energy_temperature():
    # -2·logsumexp([2, 4] / 2) = -2·(2 + log(1 + e^-1))
    assert energy_from_logits(np.array([[2.0, 4.0]]), temperature=2.0)[0] == pytest.approx(-2 * (2 + math.log1p(math.exp(-1))))
    # T → 0: E → -max(logits)
    assert energy_from_logits(np.array([[1.0, 2.0, 3.0]]), temperature=1e-3)[0] == pytest.approx(-3.0, abs=1e-6)
    with pytest.raises(ValueError):
        energy_from_logits(np.zeros((1, 2)), temperature=0)


def test_energy_stable_for_huge_logits_and_keeps_gradients():
    e = energy_from_logits(np.array([[1000.0, 1000.0]]))
    assert e[0] == pytest.approx(-1000 - LN2)
    logits = torch.tensor([[1.0, 2.0]], requires_grad=True)
    out = energy_from_logits(logits)
    assert isinstance(out, torch.Tensor)
    out.sum().backward()
    assert torch.allclose(logits.grad, -torch.softmax(logits.detach(), -1))  # dE/dlogits = -softmax


# --- sequence_energy ---------------------------------------------------------------------------------------
def _token_logits() -> torch.Tensor:
    # row 0: position energies -ln2, -ln4, then a "padding" position with absurd logits
    # row 1: one target token (-ln2) and two prompt positions
    nan = float("nan")
    return torch.tensor(
        [
            [[0.0, 0.0], [math.log(3), 0.0], [nan, float("inf")]],
            [[9.0, 1.0], [0.0, 0.0], [7.0, 7.0]],
        ]
    )


def test_sequence_energy_masks_padding_and_prompt():
    logits = _token_logits()
    mask = torch.tensor([[True, True, False], [False, True, False]])
    e = sequence_energy(logits, mask)
    assert e[0].item() == pytest.approx(-(LN2 + 2 * LN2) / 2)  # mean of -ln2 and -ln4; pad ignored even when NaN
    assert e[1].item() == pytest.approx(-LN2)


def test_sequence_energy_accepts_labels_with_ignore_index_and_numpy():
    labels = torch.tensor([[5, 0, -100], [-100, 1, -100]])  # token ids 0 and 1 are real targets here
    e_labels = sequence_energy(_token_logits(), labels)
    e_mask = sequence_energy(_token_logits(), torch.tensor([[1, 1, 0], [0, 1, 0]]))
    assert torch.allclose(e_labels, e_mask)
    e_np = sequence_energy(_token_logits().numpy(), labels.numpy())
    assert isinstance(e_np, np.ndarray) and np.allclose(e_np, e_mask.numpy())


def test_sequence_energy_temperature_and_empty_rows():
    logits = torch.tensor([[[2.0, 4.0], [0.0, 0.0]]])
    e = sequence_energy(logits, torch.tensor([[True, False]]), temperature=2.0)
    assert e[0].item() == pytest.approx(-2 * (2 + math.log1p(math.exp(-1))))
    empty = sequence_energy(logits, torch.tensor([[False, False]]))
    assert math.isnan(empty[0].item())  # no target: no score, not a fake 0
    with pytest.raises(ValueError):
        sequence_energy(logits, torch.tensor([[True, False, True]]))


def test_shift_for_causal():
    logits, labels = torch.zeros(2, 5, 7), torch.arange(10).reshape(2, 5)
    lg, lb = shift_for_causal(logits, labels)
    assert lg.shape == (2, 4, 7) and lb.tolist() == [[1, 2, 3, 4], [6, 7, 8, 9]]


# --- select_band -------------------------------------------------------------------------------------------
def _values(energies, idx):
    return sorted(np.asarray(energies)[idx].tolist())


def test_band_eight_samples_matches_paper_three_of_eight():
    rng = np.random.default_rng(0)
    energies = rng.permutation(np.arange(8.0))
    band = select_band(energies)
    assert _values(energies, band.feedback) == [4.0, 5.0, 6.0]
    assert _values(energies, band.noise) == [7.0]
    assert (band.lo_value, band.hi_value) == (4.0, 6.0)
    assert list(band.feedback) == sorted(band.feedback)  # indices in ascending order


def test_band_ten_samples_and_custom_percentiles():
    e = np.arange(10.0)[::-1].copy()
    band = select_band(e)
    assert _values(e, band.feedback) == [5.0, 6.0, 7.0] and _values(e, band.noise) == [8.0, 9.0]
    assert len(select_band(e, lo=0, hi=100).feedback) == 10 and len(select_band(e, lo=0, hi=100).noise) == 0
    assert _values(e, select_band(e, lo=80, hi=80).noise) == [8.0, 9.0]  # zero-width band: no feedback, still noise
    assert len(select_band(e, lo=80, hi=80).feedback) == 0
    with pytest.raises(ValueError):
        select_band(e, lo=80, hi=50)


def test_band_tiny_sets():
    empty = select_band([])
    assert len(empty.feedback) == 0 and len(empty.noise) == 0 and math.isnan(empty.lo_value)
    one = select_band([3.0])
    assert one.feedback.tolist() == [0] and one.noise.tolist() == []  # one sample is never noise
    two = select_band([5.0, 1.0])
    assert two.feedback.tolist() == [0] and two.noise.tolist() == []
    assert select_band([1.0, 2.0, 3.0, 4.0, 5.0]).noise.tolist() == [4]  # from 5 samples on, the top one is noise


def test_band_ties_share_a_fate():
    flat = select_band([0.5] * 10)
    assert flat.feedback.tolist() == list(range(10)) and flat.noise.tolist() == []  # no spread: nothing is noise
    e = [0, 1, 2, 3, 4, 5, 6, 6]  # the 80% bound falls between two equal energies
    band = select_band(e)
    assert band.noise.tolist() == [] and _values(e, band.feedback) == [4, 5, 6, 6]


def test_band_skips_non_finite_energies():
    e = [float("nan")] + list(range(8))
    band = select_band(e)
    assert 0 not in band.feedback and 0 not in band.noise
    assert _values(e, band.feedback) == [4, 5, 6] and _values(e, band.noise) == [7]


def test_band_per_group_gives_every_label_feedback():
    e = [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
    labels = ["neg"] * 5 + ["pos"] * 5
    pooled = select_band(e)
    assert all(labels[i] == "pos" for i in pooled.feedback)  # without groups one label takes the whole band
    band = select_band(e, groups=labels)
    assert _values(e, band.feedback) == [3, 13] and _values(e, band.noise) == [4, 14]
    assert band.by_group == {"neg": (3.0, 3.0), "pos": (13.0, 13.0)}
    assert (band.lo_value, band.hi_value) == (pooled.lo_value, pooled.hi_value)
    single = select_band([1.0, 2.0, 3.0], groups=["a", "b", "b"])
    assert single.feedback.tolist() == [0, 2] and single.noise.tolist() == []
    with pytest.raises(ValueError):
        select_band([1.0, 2.0], groups=["a"])


# --- losses -------------------------------------------------------------------------------------------------
def test_sce_hand_value_and_clamp():
    logits, target = torch.zeros(1, 2), torch.tensor([0])
    # CE = ln2; RCE = -(0.5·log 1 + 0.5·log 1e-4) = 0.5·9.21
    assert sce_loss(logits, target).item() == pytest.approx(0.1 * LN2 + 0.5 * LOG_CLAMP, rel=1e-6)
    assert sce_loss(logits, target, alpha=0, beta=1).item() == pytest.approx(0.5 * LOG_CLAMP, rel=1e-6)
    logits = torch.log(torch.tensor([[0.25, 0.75]]))
    assert sce_loss(logits, target, alpha=0, beta=1).item() == pytest.approx(0.75 * LOG_CLAMP, rel=1e-5)


def test_sce_reduces_to_ce_and_is_bounded_where_ce_is_not():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    assert sce_loss(logits, targets, alpha=1, beta=0).item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-6)
    assert ce_loss(logits, targets).item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-6)
    wrong = torch.tensor([[30.0, -30.0]], requires_grad=True)  # confidently wrong about a (possibly mislabeled) sample
    ce = ce_loss(wrong, torch.tensor([1]))
    rce = sce_loss(wrong, torch.tensor([1]), alpha=0, beta=1)
    assert ce.item() > 50 and rce.item() <= LOG_CLAMP + 1e-6
    (g_ce,) = torch.autograd.grad(ce, wrong)
    (g_rce,) = torch.autograd.grad(rce, wrong)
    assert g_rce.abs().max() < 1e-6 < g_ce.abs().max()  # a saturated wrong sample no longer pulls the model


def test_soft_targets_match_one_hot_and_hand_value():
    logits, idx = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1])
    one_hot = F.one_hot(idx, 2).float()
    assert ce_loss(logits, one_hot).item() == pytest.approx(ce_loss(logits, idx).item(), rel=1e-6)
    assert sce_loss(logits, one_hot).item() == pytest.approx(sce_loss(logits, idx).item(), rel=1e-6)
    q = torch.tensor([[0.7, 0.3]])
    logp = F.log_softmax(torch.tensor([[1.0, 0.0]]), -1)[0]
    assert ce_loss(torch.tensor([[1.0, 0.0]]), q).item() == pytest.approx(-(0.7 * logp[0] + 0.3 * logp[1]).item(), rel=1e-6)
    with pytest.raises(ValueError):
        ce_loss(logits, torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]))


def test_example_weights():
    logits, targets = torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0])
    only_first = ce_loss(logits, targets, weights=torch.tensor([1.0, 0.0]))
    assert only_first.item() == pytest.approx(F.cross_entropy(logits[:1], targets[:1]).item(), rel=1e-6)
    assert sce_loss(logits, targets, weights=torch.tensor([2.0, 2.0])).item() == pytest.approx(sce_loss(logits, targets).item(), rel=1e-6)


def test_classification_loss_dispatch():
    logits, targets = torch.zeros(2, 2), torch.tensor([0, 1])
    assert classification_loss(logits, targets, "ce").item() == pytest.approx(LN2)
    assert classification_loss(logits, targets, "sce", 0.1, 1.0).item() == pytest.approx(0.1 * LN2 + 0.5 * LOG_CLAMP, rel=1e-6)
    with pytest.raises(ValueError):
        classification_loss(logits, targets, "focal")


def test_label_smoothing_spreads_the_target_and_bounds_the_pull_of_a_wrong_label():
    import torch

    from gold.energy import ce_loss, classification_loss

    logits = torch.tensor([[4.0, -4.0, 0.0], [0.0, 2.0, 1.0]])
    targets = torch.tensor([0, 2])
    smoothed = torch.tensor([[0.8 + 0.2 / 3, 0.2 / 3, 0.2 / 3], [0.2 / 3, 0.2 / 3, 0.8 + 0.2 / 3]])
    assert classification_loss(logits, targets, "ce", label_smoothing=0.2) == pytest.approx(
        float(ce_loss(logits, smoothed)), rel=1e-6)
    assert classification_loss(logits, targets, "ce", label_smoothing=0.0) == pytest.approx(
        float(ce_loss(logits, targets)), rel=1e-6)
    # A confident, correct prediction is no longer a zero loss: the student is kept from certainty.
    sure = torch.tensor([[30.0, -30.0, -30.0]])
    assert float(classification_loss(sure, torch.tensor([0]), "ce")) < 1e-6
    assert float(classification_loss(sure, torch.tensor([0]), "ce", label_smoothing=0.1)) > 1.0


def test_steering_shares_favour_the_label_whose_real_rows_look_out_of_distribution():
    from gold.energy import steering_shares

    shares = steering_shares({"a": [-3.0, -3.2, -2.8], "b": [-1.0, -1.2, -0.8], "c": [-2.0, -2.1, -1.9]})
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["b"] > shares["c"] > shares["a"]  # higher energy (less covered) → more samples
    assert max(shares.values()) / min(shares.values()) <= 4 + 1e-9  # clipped to [0.5, 2] × the even share
    flat = steering_shares({"a": [-1.0, -1.0], "b": [-1.0, -1.0]})
    assert flat == {"a": 0.5, "b": 0.5}  # no signal: even
    partial = steering_shares({"a": [-3.0, -1.0], "b": []})  # b has no rows: the even share before normalising
    assert set(partial) == {"a", "b"} and sum(partial.values()) == pytest.approx(1.0)
    assert steering_shares({}) == {}

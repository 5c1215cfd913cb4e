"""Energy scores, percentile band selection and the symmetric cross-entropy loss.

GOLD's out-of-distribution signal is the free energy of the student's logits, `E(x) = -T·logsumexp(f(x)/T)`
(Liu et al., 2020): a confident student gives a large logsumexp and a low energy, so **higher = more OOD**.
Samples in the middle-high band of the energy distribution (50th–80th percentile by default) are unusual yet
not garbage: they become the next round's feedback. Samples above the band are flagged as noise.

Everything here is a pure function, with no model and no I/O, so the numerics can be tested by hand. The
torch functions keep gradients (the loss needs them); the energy functions also accept numpy arrays and
then return numpy, because scores from a finished forward pass are usually stored as numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # the label value that marks prompt and padding positions (HF convention)
RCE_CLAMP = 1e-4  # log(0) in the reverse CE is replaced by log(1e-4) ≈ -9.21, as in Wang et al. (2019)


# --- energy -----------------------------------------------------------------------------------------------
def _as_tensor(x: Any) -> tuple[torch.Tensor, bool]:
    """(tensor, was_numpy): lets each function return the type it was given."""
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.asarray(x, dtype=np.float64)), True


def energy_from_logits(logits: Any, temperature: float = 1.0) -> Any:
    """E = -T·logsumexp(logits/T) over the last axis; one energy per row. Higher = more out-of-distribution.

    Computed with logsumexp, so huge logits do not overflow. Returns a tensor for a tensor (gradients kept),
    a numpy array for anything else.
    """
    if temperature <= 0:
        raise ValueError(f"The energy temperature must be positive, not {temperature}.")
    t, was_numpy = _as_tensor(logits)
    e = -temperature * torch.logsumexp(t / temperature, dim=-1)
    return e.numpy() if was_numpy else e


def sequence_energy(token_logits: Any, target_mask: Any, temperature: float = 1.0) -> Any:
    """Mean per-token energy over the target tokens of each sequence: shape [B, L, V] → [B].

    `target_mask` is [B, L]: True (or 1) where position t holds a target token. It may also be the label
    tensor itself, in which case positions equal to -100 (prompt and padding, the HF convention) are masked
    out. Padding must never count: the official GOLD code padded labels with the pad id and so averaged the
    energy of pad tokens into every score. `token_logits[:, t]` must be the logits that *predict* target
    token t; for a causal LM shift first (`shift_for_causal`). A row with no target token gets NaN, which
    `select_band` skips, rather than a made-up 0.
    """
    logits, was_numpy = _as_tensor(token_logits)
    mask_t = target_mask if isinstance(target_mask, torch.Tensor) else torch.as_tensor(np.asarray(target_mask))
    mask = _target_positions(mask_t).to(logits.device)
    if logits.dim() != 3 or mask.shape != logits.shape[:2]:
        raise ValueError(f"Expected token logits [B, L, V] and a mask [B, L]; got {tuple(logits.shape)} and {tuple(mask.shape)}.")
    per_token = energy_from_logits(logits, temperature)  # [B, L]
    count = mask.sum(dim=-1).to(per_token.dtype)
    # where, not multiply: a masked position contributes exactly 0 even if its logits are inf or NaN
    total = torch.where(mask, per_token, torch.zeros_like(per_token)).sum(dim=-1)
    e = torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
    return e.numpy() if was_numpy else e


def _target_positions(mask: torch.Tensor) -> torch.Tensor:
    """A boolean mask from a bool or 0/1 mask, or from labels (-100 at ignored positions).

    Numbers other than 0/1, or any -100, mean labels. The one ambiguous case, labels made only of the token
    ids 0 and 1 with no -100 anywhere, does not arise from a real collator: pass a bool mask to be explicit.
    """
    if mask.dtype == torch.bool:
        return mask
    if bool((mask == IGNORE_INDEX).any()) or not bool(((mask == 0) | (mask == 1)).all()):
        return mask != IGNORE_INDEX  # these are labels (token ids): every id but -100 is a target
    return mask != 0


def shift_for_causal(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align a causal LM's outputs with its targets: logits at t predict token t+1."""
    return logits[:, :-1, :], labels[:, 1:]


# --- band selection ---------------------------------------------------------------------------------------
@dataclass
class Band:
    """The outcome of `select_band`: indices into the scored list, in ascending index order.

    feedback: samples inside the [lo, hi] percentile band (the next round's feedback candidates).
    noise: samples above the hi percentile (kept out of training, still shown and restorable).
    lo_value, hi_value: the band's energy bounds over all samples pooled (NaN when nothing is scored); with
        `groups`, the selection used each group's own bounds, listed in `by_group` — the pooled ones are for
        drawing on a histogram.
    """

    feedback: np.ndarray
    noise: np.ndarray
    lo_value: float
    hi_value: float
    by_group: dict[Any, tuple[float, float]] = field(default_factory=dict)


def _band_bounds(sorted_e: np.ndarray, lo: float, hi: float) -> tuple[float, float, bool]:
    """(lo_value, hi_value, band_nonempty) for energies sorted ascending.

    Bounds come from ranks, so 8 samples give the paper's 3 feedback + 1 noise (ranks 4–6 and 7); membership
    is then decided by value, so equal energies always share a fate. Consequences, on purpose: a flat
    distribution flags no noise and puts everything in the band (it carries no signal to act on); ties at
    the upper bound stay in the band rather than being called noise, because dropping rows costs accuracy
    (docs/architecture.md); one sample is feedback, never noise.
    """
    n = len(sorted_e)
    k_lo = min(math.ceil(round(n * lo / 100.0, 9)), n - 1)  # first rank inside the band
    k_hi = max(min(math.ceil(round(n * hi / 100.0, 9)), n), k_lo)  # first rank above it
    lo_value = float(sorted_e[k_lo])
    hi_value = float(sorted_e[k_hi - 1]) if k_hi >= 1 else -math.inf
    return lo_value, hi_value, k_hi > k_lo


def select_band(energies: Sequence[float] | np.ndarray, lo: float = 50, hi: float = 80, groups: Sequence[Any] | None = None) -> Band:
    """Split scored samples into the feedback band (lo–hi percentile) and noise (above hi).

    With `groups` (e.g. each sample's label) the percentiles are taken within each group, so every label
    gets feedback even when one label's samples all score higher than another's. Non-finite energies
    (a sequence without target tokens) are neither feedback nor noise.
    """
    if not 0 <= lo <= hi <= 100:
        raise ValueError(f"The energy band needs 0 ≤ lo ≤ hi ≤ 100; got lo={lo}, hi={hi}.")
    e = np.asarray(energies, dtype=np.float64).reshape(-1)
    if groups is not None and len(groups) != len(e):
        raise ValueError(f"Got {len(e)} energies but {len(groups)} group labels.")
    finite = np.isfinite(e)

    def bounds_of(idx: np.ndarray) -> tuple[float, float, bool]:
        vals = np.sort(e[idx])
        return _band_bounds(vals, lo, hi) if len(vals) else (math.nan, math.nan, False)

    all_idx = np.flatnonzero(finite)
    lo_value, hi_value, _ = bounds_of(all_idx)
    if groups is None:
        parts = {None: all_idx}
    else:
        keys = list(groups)
        parts = {}
        for i in all_idx:
            parts.setdefault(keys[i], []).append(i)
        parts = {k: np.asarray(v, dtype=np.int64) for k, v in parts.items()}

    feedback = np.zeros(len(e), dtype=bool)
    noise = np.zeros(len(e), dtype=bool)
    by_group: dict[Any, tuple[float, float]] = {}
    for key, idx in parts.items():
        g_lo, g_hi, nonempty = bounds_of(idx)
        if groups is not None:
            by_group[key] = (g_lo, g_hi)
        if not len(idx):
            continue
        vals = e[idx]
        noise[idx[vals > g_hi]] = True
        if nonempty:
            feedback[idx[(vals >= g_lo) & (vals <= g_hi)]] = True
    return Band(np.flatnonzero(feedback), np.flatnonzero(noise), lo_value, hi_value, by_group)


def steering_shares(energy_by_label: dict[str, Sequence[float]], clip: tuple[float, float] = (0.5, 2.0)) -> dict[str, float]:
    """Shares of the next round's samples per label, from the student's energy on labeled rows of each label.

    Why: energy is high where the student's training data does not reach. A label whose real rows the student
    finds out-of-distribution (higher mean energy) is under-covered by what the teacher wrote so far, so it gets
    more of the next round's samples — energy steering *what to ask for* rather than only which examples to
    show. weight_l = exp((mean_l − mean of the means) / std of all energies), clipped to [clip[0], clip[1]] ×
    the even share so no label is starved or flooded, then normalised. Labels with no rows keep the even share.
    """
    labels = list(energy_by_label)
    if not labels:
        return {}
    values = np.concatenate([np.asarray(v, dtype=float) for v in energy_by_label.values() if len(v)] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.std() <= 1e-9:
        return {label: 1 / len(labels) for label in labels}
    means = {label: float(np.mean([x for x in v if math.isfinite(x)])) for label, v in energy_by_label.items()
             if any(math.isfinite(x) for x in v)}
    centre = float(np.mean(list(means.values())))
    raw = {label: float(np.clip(math.exp((means[label] - centre) / values.std()), *clip)) if label in means else 1.0
           for label in labels}
    total = sum(raw.values())
    return {label: w / total for label, w in raw.items()}


# --- losses -----------------------------------------------------------------------------------------------
def _per_example(loss: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Weighted mean over the batch (a weight-0 row contributes nothing; all-zero weights give 0)."""
    if weights is None:
        return loss.mean()
    w = weights.to(loss.dtype).to(loss.device)
    return (loss * w).sum() / w.sum().clamp(min=1e-12)


def _target_probs(targets: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot rows for class indices, or the given rows when targets are already probabilities."""
    if targets.is_floating_point() and targets.dim() == 2:
        if targets.shape[1] != num_classes:
            raise ValueError(f"Soft targets have {targets.shape[1]} columns but the logits have {num_classes}.")
        return targets.to(dtype)
    return F.one_hot(targets.long(), num_classes).to(dtype)


def ce_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy for class indices [B] or soft targets [B, K] (probability rows, e.g. a teacher's)."""
    if targets.is_floating_point() and targets.dim() == 2:
        q = _target_probs(targets, logits.shape[-1], logits.dtype)
        per = -(q * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    else:
        per = F.cross_entropy(logits, targets.long(), reduction="none")
    return _per_example(per, weights)


def sce_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.1,
    beta: float = 1.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric cross-entropy (Wang et al., 2019): alpha·CE(q, p) + beta·RCE, RCE = -Σ p·log(clamp(q, 1e-4, 1)).

    Why: the reverse term's gradient is bounded, so a sample whose generated label is wrong pulls the student
    less than under plain CE — GOLD uses it against the teacher's label noise. With a one-hot target RCE is
    -log(1e-4)·(1 - p_y) ≈ 9.21·(1 - p_y). Targets may be class indices [B] or probability rows [B, K].
    """
    q = _target_probs(targets, logits.shape[-1], logits.dtype)
    ce = -(q * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    p = F.softmax(logits, dim=-1)
    rce = -(p * torch.log(q.clamp(min=RCE_CLAMP, max=1.0))).sum(dim=-1)
    return _per_example(alpha * ce + beta * rce, weights)


def classification_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    loss: str = "ce",
    alpha: float = 0.1,
    beta: float = 1.0,
    weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The loss `TrainingArgs.loss` names: "ce" or "sce", on targets smoothed by `label_smoothing` (a share
    of each one-hot target spread evenly over the K labels; soft targets are smoothed the same way)."""
    if label_smoothing > 0:
        k = logits.shape[-1]
        targets = _target_probs(targets, k, logits.dtype) * (1 - label_smoothing) + label_smoothing / k
    if loss == "ce":
        return ce_loss(logits, targets, weights)
    if loss == "sce":
        return sce_loss(logits, targets, alpha, beta, weights)
    raise ValueError(f"Unknown loss '{loss}': use 'ce' or 'sce'.")

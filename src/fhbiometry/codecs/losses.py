"""Training losses: coordinate regression (optionally pair-order invariant) and weighted
heatmap MSE. Each codec picks its own (``codec.make_loss``); the elementwise losses are the
registry ``core.choices.LOSSES`` (meta ``kinds``: the model kinds that may use each)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fhbiometry.core.choices import LOSSES
from fhbiometry.core.geometry import BPD, OFD

SMOOTH_L1_BETA = 0.02     # quadratic below 2% of the input (x input_size for pixel targets)
FOREGROUND_LEVEL = 0.1    # heatmap target pixels above this fraction of the peak get foreground_weight


def squared_error(pred, target, beta):
    return (pred - target) ** 2


def absolute_error(pred, target, beta):
    return (pred - target).abs()


def smooth_l1_error(pred, target, beta):
    return F.smooth_l1_loss(pred, target, reduction="none", beta=beta)


def regression_loss(pred, target, loss="smooth_l1", pair_invariant=True, beta=SMOOTH_L1_BETA):
    """Mean loss over (B, 8) coordinates. With ``pair_invariant``, each pair (OFD, BPD) of each
    sample takes the better of its two end assignments. ``beta``: smooth L1's quadratic zone, in
    the units of the targets."""
    if loss not in LOSSES.names(kinds="regression"):
        raise ValueError(f"loss {loss!r}: choose one of {list(LOSSES.names(kinds='regression'))}")
    elementwise = LOSSES.get(loss)
    p = pred.reshape(len(pred), -1, 2)
    t = target.reshape(len(target), -1, 2)
    if not pair_invariant:
        return elementwise(p, t, beta).mean()
    total = 0.0
    for i, j in (OFD, BPD):
        same = elementwise(p[:, [i, j]], t[:, [i, j]], beta).sum(dim=(1, 2))
        swapped = elementwise(p[:, [j, i]], t[:, [i, j]], beta).sum(dim=(1, 2))
        total = total + torch.minimum(same, swapped)
    return (total / (p.shape[1] * 2)).mean()


def heatmap_loss(pred, target, peak=1.0, foreground_weight=10.0, weight=1.0, channel_weights=None):
    """Pixel-wise MSE with ``foreground_weight`` on target pixels above 0.1 * peak, times ``weight``;
    ``channel_weights`` (one number per channel) scales each channel's pixels (0: no gradient)."""
    w = torch.where(target > FOREGROUND_LEVEL * peak, float(foreground_weight), 1.0)
    if channel_weights is not None:
        w = w * torch.as_tensor(channel_weights, dtype=w.dtype, device=w.device).view(1, -1, 1, 1)
    return weight * (w * (pred - target) ** 2).mean()

"""Training losses: coordinate regression (optionally pair-order invariant) and weighted
heatmap MSE. Each codec picks its own (``codec.make_loss``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fhbiometry.core.geometry import BPD, OFD

REGRESSION_LOSSES = ("mse", "l1", "smooth_l1")
HEATMAP_LOSSES = ("mse",)
SMOOTH_L1_BETA = 0.02     # quadratic below 2% of the input (x input_size for pixel targets)
FOREGROUND_LEVEL = 0.1    # heatmap target pixels above this fraction of the peak get foreground_weight


def _elementwise(pred, target, loss, beta=SMOOTH_L1_BETA):
    if loss == "mse":
        return (pred - target) ** 2
    if loss == "l1":
        return (pred - target).abs()
    return F.smooth_l1_loss(pred, target, reduction="none", beta=beta)


def regression_loss(pred, target, loss="smooth_l1", pair_invariant=True, beta=SMOOTH_L1_BETA):
    """Mean loss over (B, 8) coordinates. With ``pair_invariant``, each pair (OFD, BPD) of each
    sample takes the better of its two end assignments. ``beta``: smooth L1's quadratic zone, in
    the units of the targets."""
    if loss not in REGRESSION_LOSSES:
        raise ValueError(f"loss {loss!r}: choose one of {list(REGRESSION_LOSSES)}")
    p = pred.reshape(len(pred), -1, 2)
    t = target.reshape(len(target), -1, 2)
    if not pair_invariant:
        return _elementwise(p, t, loss, beta).mean()
    total = 0.0
    for i, j in (OFD, BPD):
        same = _elementwise(p[:, [i, j]], t[:, [i, j]], loss, beta).sum(dim=(1, 2))
        swapped = _elementwise(p[:, [j, i]], t[:, [i, j]], loss, beta).sum(dim=(1, 2))
        total = total + torch.minimum(same, swapped)
    return (total / (p.shape[1] * 2)).mean()


def heatmap_loss(pred, target, peak=1.0, foreground_weight=10.0, weight=1.0):
    """Pixel-wise MSE with ``foreground_weight`` on target pixels above 0.1 * peak, times ``weight``."""
    w = torch.where(target > FOREGROUND_LEVEL * peak, float(foreground_weight), 1.0)
    return weight * (w * (pred - target) ** 2).mean()

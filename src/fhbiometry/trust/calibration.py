"""Size calibration: one scale factor per diameter, estimated on the validation frames.

A heatmap model trained from scratch on HC18 measures every head slightly too small: on its own
training frames, on the validation frames and on the test frames alike (about 1 to 1.5 % of each
diameter; docs/hc18.md, "Beyond the training range"). The encoding and decoding round trip is
unbiased and the augmentation moves image and points together (both measured there), so the
shrinkage is learned, not a coordinate bug. ``decode.size_calibration: validation`` removes it the
way a threshold is set: from held-out frames, never from the test frames. The evaluate stage
estimates ``factors`` on the validation split (the median over frames of true / predicted length,
per diameter), applies them to the test predictions and writes them to its metrics
(``size_calibration``), where ``fhbiometry predict`` finds them for new scans.

A factor scales the two ends of its diameter about their midpoint: the centre and the direction
of each axis stay, only its length changes.
"""
from __future__ import annotations

import numpy as np

from fhbiometry.core.choices import SIZE_CALIBRATIONS
from fhbiometry.core.geometry import diameters

METHODS = SIZE_CALIBRATIONS      # params decode.size_calibration (written once, in core.choices)
DIAMETERS = ("ofd", "bpd")   # pairs (0, 1) and (2, 3) of the canonical order


def estimate_factors(pred, true, min_frames: int = 5) -> dict:
    """{"ofd", "bpd": median of true / predicted length, "n": frames used} over the frames whose
    points are all finite and whose predicted lengths are positive (``pred``, ``true``: (N, 4, 2),
    any one pixel space). Fewer than ``min_frames`` usable frames: ValueError naming the count."""
    d_pred, d_true = diameters(np.asarray(pred, np.float64)), diameters(np.asarray(true, np.float64))
    ok = np.isfinite(d_pred).all(axis=1) & np.isfinite(d_true).all(axis=1) & (d_pred > 0).all(axis=1)
    if ok.sum() < min_frames:
        raise ValueError(f"size calibration needs at least {min_frames} validation frames with labels, "
                         f"got {int(ok.sum())}: set decode.size_calibration: none")
    ratio = d_true[ok] / d_pred[ok]
    return {"ofd": float(np.median(ratio[:, 0])), "bpd": float(np.median(ratio[:, 1])), "n": int(ok.sum())}


def apply_factors(points, factors: dict | None) -> np.ndarray:
    """(..., 4, 2) points with each diameter scaled by its factor about its midpoint (a copy);
    ``factors`` None: unchanged."""
    p = np.array(points, dtype=np.float64, copy=True)
    if factors is None:
        return p
    for k, name in enumerate(DIAMETERS):
        ends = p[..., 2 * k:2 * k + 2, :]
        mid = ends.mean(axis=-2, keepdims=True)
        p[..., 2 * k:2 * k + 2, :] = mid + float(factors[name]) * (ends - mid)
    return p

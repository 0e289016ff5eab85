"""How well a per-frame score separates bad frames: the AUC and the figures at a threshold.

Used for the confidence (``trust.confidence``): a frame is bad when its worst-diameter error
(``errors.worst_diameter_error``, mm) exceeds a limit, and rejected when its score is under the
threshold.
"""
from __future__ import annotations

import numpy as np


def share_among(hit, among) -> float:
    """Share of ``hit`` among the rows ``among``; NaN when there are none."""
    return float(hit[among].mean()) if among.any() else float("nan")


def plain_mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def rejection_metrics(conf, error_mm, threshold: float, bad_mm: float) -> dict:
    """How well ``conf`` separates frames whose diameter error ``error_mm`` exceeds ``bad_mm``:
    the AUC of "error > bad_mm" against 1 - confidence, and at ``threshold`` (rejected where
    conf < threshold) the share rejected, the share of bad frames removed, the mean error of the
    kept and of the rejected frames."""
    from sklearn.metrics import roc_auc_score  # lazy: scikit-learn loads slowly: only where an AUC is asked

    conf, err = np.asarray(conf, np.float64), np.asarray(error_mm, np.float64)
    bad, rejected = err > bad_mm, conf < threshold
    both = bool(bad.any() and (~bad).any())
    return {"threshold": float(threshold), "bad_error_mm": float(bad_mm), "n": int(len(err)),
            "n_bad": int(bad.sum()), "auc_bad": float(roc_auc_score(bad, -conf)) if both else float("nan"),
            "rejected_share": share_among(rejected, np.ones_like(rejected)),
            "bad_removed_share": share_among(rejected, bad),
            "kept_mean_error_mm": plain_mean(err[~rejected]), "rejected_mean_error_mm": plain_mean(err[rejected])}

"""Intervals over subjects: figures of a predictions table with percentile intervals from
resampling the test subjects (every frame of a drawn subject comes along), and paired changes
between two evaluations of the same frames (``fhbiometry accuracy-report``)."""
from __future__ import annotations

import numpy as np

from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.metrics.breakdown import frame_figures
from fhbiometry.metrics.errors import finite_mean

def table_figures(table, hc_ref=None) -> dict:
    """``frame_figures`` of the evaluated rows of a predictions table (results/<model>/predictions.csv:
    true_* / pred_* points in original pixels, spacing_mm), with ``subject`` and ``frame`` added.
    ``hc_ref``: {frame_id: reference HC in mm} (e.g. HC18's own values), missing frames NaN."""
    rows = table[table["evaluated"].astype(bool)]
    pred = rows[[f"pred_{c}" for c in COORD_COLUMNS]].to_numpy(np.float64).reshape(-1, 4, 2)
    true = rows[[f"true_{c}" for c in COORD_COLUMNS]].to_numpy(np.float64).reshape(-1, 4, 2)
    ref = None if hc_ref is None else [hc_ref.get(str(f), np.nan) for f in rows["frame_id"]]
    f = frame_figures(pred, true, rows["spacing_mm"].to_numpy(np.float64), ref)
    f["subject"] = rows["subject_id"].astype(str).to_numpy()
    f["frame"] = rows["frame_id"].astype(str).to_numpy()
    return f


HEADLINE = {   # name -> figure of the frames ``i`` of frame_figures output
    "bpd_mae_mm": lambda f, i: np.abs(f["bpd_err"][i]).mean(),
    "ofd_mae_mm": lambda f, i: np.abs(f["ofd_err"][i]).mean(),
    "bpd_p95_mm": lambda f, i: np.percentile(np.abs(f["bpd_err"][i]), 95),
    "ofd_p95_mm": lambda f, i: np.percentile(np.abs(f["ofd_err"][i]), 95),
    "large_share": lambda f, i: f["large"][i].mean(),
    "hc_ref_mae_mm": lambda f, i: finite_mean(np.abs(f["hc_pred"][i] - f["hc_ref"][i])),
    "hc_ref_bias_mm": lambda f, i: finite_mean(f["hc_pred"][i] - f["hc_ref"][i]),
    "normalised_error": lambda f, i: finite_mean(f["norm"][i]),
}


def subject_bootstrap(f: dict, figures: dict = HEADLINE, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> dict:
    """Each figure of ``figures`` on all frames of ``f`` (``table_figures`` output), with a
    percentile interval from ``n_boot`` resamples of the subjects with replacement (every frame of
    a drawn subject comes along: frames of one subject are not independent). Deterministic for
    a seed. Returns {name: {"value", "low", "high"}}; a figure undefined on the frames is None."""
    subjects, inverse = np.unique(f["subject"], return_inverse=True)
    groups = [np.flatnonzero(inverse == k) for k in range(len(subjects))]
    everything = np.arange(len(inverse))
    rng = np.random.default_rng(seed)
    draws = [np.concatenate([groups[k] for k in rng.integers(0, len(groups), len(groups))])
             for _ in range(n_boot)] if groups else []
    tail = 100 * (1 - level) / 2
    out = {}
    for name, fn in figures.items():
        value = fn(f, everything) if len(everything) else None
        if value is None or not np.isfinite(value):
            out[name] = None
            continue
        samples = np.array([fn(f, d) for d in draws], np.float64)
        samples = samples[np.isfinite(samples)]
        low, high = np.percentile(samples, [tail, 100 - tail])
        out[name] = {"value": float(value), "low": float(low), "high": float(high)}
    return out


def paired_bootstrap(before: dict, after: dict, keys=("bpd_mae_mm", "ofd_mae_mm", "hc_ref_mae_mm"),
                     n_boot: int = 2000, seed: int = 0, level: float = 0.95, figures: dict = HEADLINE) -> dict:
    """The change ``after - before`` of the ``HEADLINE`` figures ``keys`` between two evaluations of
    the same test frames (``table_figures`` output of, e.g., two rows of an ablation), with a
    percentile interval from resampling subjects, the same draw for both: the test set's sampling
    noise cancels, so an interval that excludes 0 is a change on these frames, not luck of the
    draw (training-seed noise is not in it). ``figures``: where the ``keys`` are defined."""
    if list(before["frame"]) != list(after["frame"]):
        raise ValueError("paired_bootstrap: the two evaluations cover different frames")
    pair = {"subject": before["subject"], "before": before, "after": after}
    changes = {k: (lambda f, i, k=k: figures[k](f["after"], i) - figures[k](f["before"], i)) for k in keys}
    return subject_bootstrap(pair, changes, n_boot=n_boot, seed=seed, level=level)

"""Where the failures live: head circumference, normalised error, large diameter errors, by bin.

Added to the evaluation metrics (``evaluate.evaluate_model``) as the sections ``hc``,
``normalised_error``, ``large_errors`` and ``bins``; every other metric is unchanged. Figures
use the evaluated test frames (``prepare.accepted_rows``) in the original image, in mm:

* HC: ``geometry.head_circumference`` (Ramanujan) of the predicted OFD and BPD, against the HC
  of the labels and, where the test arrays carry one (``hc_ref_mm``, from
  ``data.pixel_size_columns.hc``, e.g. HC18's own values), against the reference HC;
* normalised error: each landmark's radial error divided by the true length of its diameter;
  per diameter the mean of its two ends, overall the mean of the four (the multi-centre
  landmark benchmark's figure);
* large errors: frames whose BPD or OFD is off by more than ``LARGE_ERROR_MM``;
* bins: head size (tertiles of the test set's label HC), BPD/OFD ratio (``RATIO_EDGES``:
  near-circular heads make the axis direction ambiguous), and heads cut by the image edge (a
  true landmark within ``EDGE_MARGIN`` of the smaller image side from the border, or outside).
"""
from __future__ import annotations

import numpy as np

from fhbiometry.core.geometry import COORD_COLUMNS, diameters, head_circumference, pair_invariant_errors, to_mm

LARGE_ERROR_MM = 4.0
RATIO_EDGES = (0.75, 0.85)
EDGE_MARGIN = 0.02


def frame_figures(pred, true, spacing, hc_ref=None) -> dict:
    """Per-frame arrays (N,): diameter errors (pred - true, mm), HC predicted / label / reference
    (mm), normalised errors per diameter and overall, and the large-error flag."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    spacing = np.asarray(spacing, np.float64)
    d_pred, d_true = to_mm(diameters(pred), spacing), to_mm(diameters(true), spacing)
    err = pair_invariant_errors(pred, true)
    length = np.repeat(diameters(true), 2, axis=-1)            # (N, 4): OFD, OFD, BPD, BPD
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.where(length > 0, err / length, np.nan)
    ofd_err, bpd_err = d_pred[:, 0] - d_true[:, 0], d_pred[:, 1] - d_true[:, 1]
    return {
        "ofd_err": ofd_err, "bpd_err": bpd_err,
        "radial_mm": to_mm(err, spacing).mean(axis=1),
        "hc_pred": to_mm(head_circumference(pred), spacing),
        "hc_true": to_mm(head_circumference(true), spacing),
        "hc_ref": (np.full(len(pred), np.nan) if hc_ref is None else np.asarray(hc_ref, np.float64)),
        "norm_ofd": norm[:, :2].mean(axis=1), "norm_bpd": norm[:, 2:].mean(axis=1),
        "norm": norm.mean(axis=1),
        "large": (np.abs(ofd_err) > LARGE_ERROR_MM) | (np.abs(bpd_err) > LARGE_ERROR_MM),
    }


def _mean(values) -> float | None:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None


def hc_agreement(pred, ref) -> dict:
    """Mean absolute difference, bias (pred - ref), p95 of |diff| and n, where ``ref`` is finite."""
    d = np.asarray(pred, np.float64) - np.asarray(ref, np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return {"n": 0, "mae_mm": None, "bias_mm": None, "p95_mm": None}
    return {"n": int(len(d)), "mae_mm": float(np.abs(d).mean()), "bias_mm": float(d.mean()),
            "p95_mm": float(np.percentile(np.abs(d), 95))}


def summary(f: dict, mask=None) -> dict:
    """The figures of the frames ``mask`` (all when None) of ``frame_figures`` output."""
    mask = np.ones(len(f["norm"]), bool) if mask is None else np.asarray(mask, bool)
    n = int(mask.sum())
    return {"n": n, "bpd_mae_mm": _mean(np.abs(f["bpd_err"][mask])), "ofd_mae_mm": _mean(np.abs(f["ofd_err"][mask])),
            "mre_mm": _mean(f["radial_mm"][mask]),
            "hc_mae_mm": hc_agreement(f["hc_pred"][mask], f["hc_true"][mask])["mae_mm"],
            "hc_ref_mae_mm": hc_agreement(f["hc_pred"][mask], f["hc_ref"][mask])["mae_mm"],
            "normalised_error": _mean(f["norm"][mask]),
            "large_errors": int(f["large"][mask].sum()),
            "large_share": float(f["large"][mask].mean()) if n else None}


def edge_cut(true, width, height, margin: float = EDGE_MARGIN) -> np.ndarray:
    """(N,) whether a true landmark lies within ``margin`` x the smaller image side of the border
    of its original image, or outside it."""
    p = np.asarray(true, np.float64)
    w = np.asarray(width, np.float64)[:, None]
    h = np.asarray(height, np.float64)[:, None]
    m = margin * np.minimum(w, h)
    x, y = p[..., 0], p[..., 1]
    near = (x < m) | (x > w - 1 - m) | (y < m) | (y > h - 1 - m)
    return near.any(axis=1)


def bins(f: dict, true, width, height) -> dict:
    """``summary`` per bin: head size (label HC tertiles of these frames), BPD/OFD ratio, edge cut.
    Each bin names its range; the edge-cut bins need the image sizes (``width`` None: left out)."""
    hc = f["hc_true"]
    lo, hi = (np.quantile(hc[np.isfinite(hc)], [1 / 3, 2 / 3]) if np.isfinite(hc).any() else (np.nan, np.nan))
    d = diameters(true)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d[:, 1] / d[:, 0]
    r1, r2 = RATIO_EDGES
    head = {"small": (hc <= lo, [None, float(lo)]), "medium": ((hc > lo) & (hc <= hi), [float(lo), float(hi)]),
            "large": (hc > hi, [float(hi), None])}
    ratios = {f"below_{r1:g}": ratio < r1, f"{r1:g}_to_{r2:g}": (ratio >= r1) & (ratio <= r2),
              f"above_{r2:g}": ratio > r2}
    out = {"head_size": {name: {"hc_range_mm": rng, **summary(f, m)} for name, (m, rng) in head.items()},
           "ratio": {name: summary(f, m) for name, m in ratios.items()}}
    if width is not None:
        cut = edge_cut(true, width, height)
        out["edge_cut"] = {"cut": summary(f, cut), "inside": summary(f, ~cut)}
    return out


def report_sections(data: dict, pred_orig, mask) -> dict:
    """The added evaluation sections for the frames ``mask`` of the test arrays ``data`` and the
    predictions ``pred_orig`` (N, 4, 2 original pixels)."""
    mask = np.asarray(mask, bool)
    true = np.asarray(data["points_orig"], np.float64)[mask]
    spacing = np.asarray(data["spacing_mm"], np.float64)[mask]
    hc_ref = np.asarray(data["hc_ref_mm"], np.float64)[mask] if "hc_ref_mm" in data else None
    f = frame_figures(np.asarray(pred_orig, np.float64)[mask], true, spacing, hc_ref)
    hc = {"vs_labels": hc_agreement(f["hc_pred"], f["hc_true"])}
    if hc_ref is not None:
        hc["vs_reference"] = hc_agreement(f["hc_pred"], f["hc_ref"])
        hc["labels_vs_reference"] = hc_agreement(f["hc_true"], f["hc_ref"])
    n = len(true)
    sizes = ((np.asarray(data["width"])[mask], np.asarray(data["height"])[mask])
             if "width" in data and "height" in data else (None, None))
    return {"hc": hc,
            "normalised_error": {"ofd": _mean(f["norm_ofd"]), "bpd": _mean(f["norm_bpd"]), "overall": _mean(f["norm"])},
            "large_errors": {"threshold_mm": LARGE_ERROR_MM, "frames": int(f["large"].sum()),
                             "share": float(f["large"].mean()) if n else None},
            "bins": bins(f, true, *sizes)}


# ---- intervals over subjects -------------------------------------------------------------------
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


def _finite_mean(values) -> float:
    m = _mean(values)
    return np.nan if m is None else m


HEADLINE = {   # name -> figure of the frames ``i`` of frame_figures output
    "bpd_mae_mm": lambda f, i: np.abs(f["bpd_err"][i]).mean(),
    "ofd_mae_mm": lambda f, i: np.abs(f["ofd_err"][i]).mean(),
    "bpd_p95_mm": lambda f, i: np.percentile(np.abs(f["bpd_err"][i]), 95),
    "ofd_p95_mm": lambda f, i: np.percentile(np.abs(f["ofd_err"][i]), 95),
    "large_share": lambda f, i: f["large"][i].mean(),
    "hc_ref_mae_mm": lambda f, i: _finite_mean(np.abs(f["hc_pred"][i] - f["hc_ref"][i])),
    "hc_ref_bias_mm": lambda f, i: _finite_mean(f["hc_pred"][i] - f["hc_ref"][i]),
    "normalised_error": lambda f, i: _finite_mean(f["norm"][i]),
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
                     n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """The change ``after - before`` of the ``HEADLINE`` figures ``keys`` between two evaluations of
    the same test frames (``table_figures`` output of, e.g., two rows of an ablation), with a
    percentile interval from resampling subjects, the same draw for both: the test set's sampling
    noise cancels, so an interval that excludes 0 is a change on these frames, not luck of the
    draw (training-seed noise is not in it)."""
    if list(before["frame"]) != list(after["frame"]):
        raise ValueError("paired_bootstrap: the two evaluations cover different frames")
    pair = {"subject": before["subject"], "before": before, "after": after}
    figures = {k: (lambda f, i, k=k: HEADLINE[k](f["after"], i) - HEADLINE[k](f["before"], i)) for k in keys}
    return subject_bootstrap(pair, figures, n_boot=n_boot, seed=seed, level=level)

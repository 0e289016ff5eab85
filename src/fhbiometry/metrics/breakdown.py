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
  true landmark within ``EDGE_MARGIN`` of the smaller image side from the border, or outside),
  and pixel size (tertiles of the test set's ``spacing_mm``: an error of a few pixels is more
  millimetres on coarse pixels);
* errors where they show (``errors.pixel_and_relative_errors``): the worst-diameter error in
  original and in input pixels, the relative error of each diameter (% of its true length) and
  the share of frames off by more than ``errors.RELATIVE_LIMIT_PCT``: the sections
  ``worst_diameter_error`` and ``relative_error``, and the same figures in every bin.
"""
from __future__ import annotations

import numpy as np

from fhbiometry.core.geometry import diameters, head_circumference, pair_invariant_errors, to_mm
from fhbiometry.metrics.errors import pixel_and_relative_errors, pixel_and_relative_sections, share, summary_stats

LARGE_ERROR_MM = 4.0
RATIO_EDGES = (0.75, 0.85)
EDGE_MARGIN = 0.02


def frame_figures(pred, true, spacing, hc_ref=None, transform=None) -> dict:
    """Per-frame arrays (N,): diameter errors (pred - true, mm), HC predicted / label / reference
    (mm), normalised errors per diameter and overall, the large-error flag, the pixel size and
    ``errors.pixel_and_relative_errors`` (input pixels need the letterbox ``transform``)."""
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
        "spacing": spacing, **pixel_and_relative_errors(pred, true, transform),
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
            "large_share": float(f["large"][mask].mean()) if n else None,
            **pixel_and_relative_summary(f, mask)}


def pixel_and_relative_summary(f: dict, mask) -> dict:
    """The pixel and relative figures of the frames ``mask``, flat keys for a bin: worst-diameter
    error in original px (``worst_px_*``) and input px (``worst_input_px_*``): mean, median, p95,
    max; mean relative error per diameter (%); share of frames over the relative limit. None
    where there is no frame (or no input pixels)."""
    out = {}
    for key in ("worst_px", "worst_input_px"):
        stats = summary_stats(f[key][mask])
        out.update({f"{key}_{s}": (float(stats[s]) if np.isfinite(stats[s]) else None)
                    for s in ("mean", "median", "p95", "max")})
    out["ofd_rel_pct"] = _mean(f["ofd_rel_pct"][mask])
    out["bpd_rel_pct"] = _mean(f["bpd_rel_pct"][mask])
    out["over_limit_share"] = share(f["over_limit"][mask])
    return out


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


def tertile_bins(values, range_key: str) -> dict:
    """{"small", "medium", "large"}: (mask, {range_key: [low, high]}) of the tertiles of ``values``
    (NaN in no bin; the ends of the outer bins open, written None)."""
    v = np.asarray(values, np.float64)
    lo, hi = (np.quantile(v[np.isfinite(v)], [1 / 3, 2 / 3]) if np.isfinite(v).any() else (np.nan, np.nan))
    return {"small": (v <= lo, {range_key: [None, float(lo)]}),
            "medium": ((v > lo) & (v <= hi), {range_key: [float(lo), float(hi)]}),
            "large": (v > hi, {range_key: [float(hi), None]})}


def bins(f: dict, true, width, height) -> dict:
    """``summary`` per bin: head size (label HC tertiles of these frames), BPD/OFD ratio, pixel size
    (spacing tertiles), edge cut. Each size bin names its range; the edge-cut bins need the image
    sizes (``width`` None: left out)."""
    d = diameters(true)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d[:, 1] / d[:, 0]
    r1, r2 = RATIO_EDGES
    ratios = {f"below_{r1:g}": ratio < r1, f"{r1:g}_to_{r2:g}": (ratio >= r1) & (ratio <= r2),
              f"above_{r2:g}": ratio > r2}
    out = {"head_size": {name: {**rng, **summary(f, m)}
                         for name, (m, rng) in tertile_bins(f["hc_true"], "hc_range_mm").items()},
           "ratio": {name: summary(f, m) for name, m in ratios.items()},
           "pixel_size": {name: {**rng, **summary(f, m)}
                          for name, (m, rng) in tertile_bins(f["spacing"], "spacing_range_mm").items()}}
    if width is not None:
        cut = edge_cut(true, width, height)
        out["edge_cut"] = {"cut": summary(f, cut), "inside": summary(f, ~cut)}
    return out


def breakdown_sections(data: dict, pred_orig, mask) -> dict:
    """The evaluation sections ``hc``, ``normalised_error``, ``large_errors``, ``bins``,
    ``worst_diameter_error`` and ``relative_error`` for the frames ``mask`` of the test arrays
    ``data`` and the predictions ``pred_orig`` (N, 4, 2 original pixels)."""
    mask = np.asarray(mask, bool)
    true = np.asarray(data["points_orig"], np.float64)[mask]
    spacing = np.asarray(data["spacing_mm"], np.float64)[mask]
    hc_ref = np.asarray(data["hc_ref_mm"], np.float64)[mask] if "hc_ref_mm" in data else None
    transform = np.asarray(data["transform"], np.float64)[mask] if "transform" in data else None
    f = frame_figures(np.asarray(pred_orig, np.float64)[mask], true, spacing, hc_ref, transform)
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
            "bins": bins(f, true, *sizes), **pixel_and_relative_sections(f)}

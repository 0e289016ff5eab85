"""How far off a predicted frame is likely to be: a confidence in [0, 1], its evaluation, and
the per-cine (per-subject) aggregation that uses it.

The rule (params ``evaluate.confidence``; docs/predict.md) adds three kinds of evidence that
the prediction is off, each a dimensionless number that is 0 for a perfect prediction:

* ``flip``: the mean distance between the frame's four points and those predicted on its
  mirror image (unmirrored, pair ends matched), as a fraction of the predicted OFD, divided by
  ``flip_scale``: a model that is sure of a point finds it again in the mirrored frame;
* ``geometry``: how far the four points are from one ellipse: perpendicularity deviation /
  ``qc.max_perpendicular_deviation_deg`` + midpoint distance / (``qc.max_midpoint_offset`` x
  OFD) + distance of BPD/OFD outside ``qc.ratio_range`` / the range's width, times
  ``geometry_weight``;
* ``peak`` (heatmap models only): 1 - the mean heatmap peak height / the codec's target peak
  (clipped to [0, 1]), times ``peak_weight``.

``confidence = 1 / (1 + flip + geometry + peak)``: 1 when every term is 0, 0.5 when the evidence
adds up to one unit, 0 for a degenerate prediction (a term is NaN or infinite, e.g. a zero-length
diameter). The map is monotonic, so it ranks frames exactly as the sum does, and it does not
underflow for very wrong frames as an exponential would. The default threshold is not a
constant: the evaluate stage sets it to the ``reject_share`` quantile of the validation frames'
confidences (``threshold_from_validation``); ``DEFAULT_THRESHOLD`` (0.5) is used only where no
such figure exists.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fhbiometry.core.geometry import anatomical_naming, diameters, midpoint_distance, perpendicularity_deg
from fhbiometry.core.letterbox import to_original
from fhbiometry.metrics.errors import worst_diameter_error
from fhbiometry.metrics.rejection import plain_mean, rejection_metrics

DEFAULT_THRESHOLD = 0.5


def flip_term(points, flip_points) -> np.ndarray:
    """(N,) mean point distance between the prediction and the mirror's, / the OFD length."""
    if flip_points is None:
        return np.zeros(len(points))
    dist = np.linalg.norm(np.asarray(points, np.float64) - np.asarray(flip_points, np.float64), axis=-1)
    ofd = anatomical_diameters(points)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return dist.mean(axis=1) / ofd


def anatomical_diameters(points) -> np.ndarray:
    """(N, 2) OFD (the longer pair) and BPD lengths."""
    return diameters(anatomical_naming(np.asarray(points, np.float64))[0])


def geometry_term(points, qc: dict) -> np.ndarray:
    """(N,) distance of the four points from one ellipse, in units of the QC limits."""
    d = anatomical_diameters(points)
    lo, hi = qc["ratio_range"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = d[:, 1] / d[:, 0]
        outside = np.maximum(lo - ratio, 0.0) + np.maximum(ratio - hi, 0.0)
        return (perpendicularity_deg(points) / qc["max_perpendicular_deviation_deg"]
                + midpoint_distance(points) / (qc["max_midpoint_offset"] * d[:, 0])
                + outside / (hi - lo))


def peak_term(peak, target: float = 1.0) -> np.ndarray | None:
    """(N,) 1 - mean peak height / target, in [0, 1]; None when the model gives no peaks."""
    if peak is None:
        return None
    return 1.0 - np.clip(np.asarray(peak, np.float64).mean(axis=1) / float(target), 0.0, 1.0)


def confidence(points, flip_points, peak, qc: dict, cfg: dict, peak_target: float = 1.0) -> pd.DataFrame:
    """One row per frame: the three terms and ``confidence`` (module docstring). ``points`` in
    any pixel space (the terms are ratios); ``cfg`` = params ``evaluate.confidence``."""
    terms = {"conf_flip": flip_term(points, flip_points) / float(cfg["flip_scale"]),
             "conf_geometry": float(cfg["geometry_weight"]) * geometry_term(points, qc)}
    peaks = peak_term(peak, peak_target)
    terms["conf_peak"] = np.zeros(len(points)) if peaks is None else float(cfg["peak_weight"]) * peaks
    table = pd.DataFrame(terms)
    total = table.sum(axis=1, skipna=False).to_numpy()
    table["confidence"] = 1.0 / (1.0 + np.nan_to_num(total, nan=np.inf))
    return table


def threshold_from_validation(confidences, reject_share: float) -> float:
    """The ``reject_share`` quantile of the validation confidences: at this threshold that share
    of validation frames is rejected. NaN without validation frames."""
    c = np.asarray(confidences, np.float64)
    c = c[np.isfinite(c)]
    return float(np.quantile(c, reject_share)) if len(c) else float("nan")


def _quartiles(v: np.ndarray):
    """Column-wise 25th, 50th, 75th percentiles ignoring NaN (NaN for an all-NaN column)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns: pixels-only inputs
        return np.nanpercentile(v, [25, 50, 75], axis=0)


def group_medians(values, groups, use) -> pd.DataFrame:
    """Per group (in order of first appearance): the median of ``values`` (N, K) over the rows
    where ``use``, or over all its rows when none is used (``fallback`` True), with ``n_used``,
    ``n_rejected`` and the IQR of each column. Columns: group, median_<k>, iqr_<k>, ..."""
    values = np.asarray(values, np.float64).reshape(len(groups), -1)
    groups, use = np.asarray(groups).astype(str), np.asarray(use, bool)
    rows = []
    for g in pd.unique(groups):
        rows_g = groups == g
        chosen = rows_g & use
        fallback = not chosen.any()
        q1, med, q3 = _quartiles(values[rows_g if fallback else chosen])
        rows.append({"group": g, "n_frames": int(rows_g.sum()), "n_used": int(0 if fallback else chosen.sum()),
                     "n_rejected": int(rows_g.sum() - chosen.sum()), "fallback": fallback,
                     **{f"median_{k}": med[k] for k in range(values.shape[1])},
                     **{f"iqr_{k}": q3[k] - q1[k] for k in range(values.shape[1])}})
    return pd.DataFrame(rows)


def frame_confidence(frames, transform, qc: dict, cfg: dict, peak_target: float = 1.0) -> pd.DataFrame:
    """``confidence`` of an ``inference.FramePrediction``, its points mapped to original pixels
    with the frames' letterbox ``transform`` (so the geometry is that of the image)."""
    flipped = None if frames.flip_points is None else to_original(frames.flip_points, transform)
    return confidence(to_original(frames.points, transform), flipped, frames.peak, qc, cfg, peak_target)


def per_subject_metrics(subjects, pred_mm, true_mm, keep) -> dict:
    """Errors of the per-subject aggregate: the median of the subject's kept frames' (N, 2)
    predicted OFD, BPD (all its frames when none is kept) against the median of its true ones."""
    pred = group_medians(pred_mm, subjects, keep)
    true = group_medians(true_mm, subjects, np.ones(len(subjects), bool))
    err = np.abs(pred[["median_0", "median_1"]].to_numpy() - true[["median_0", "median_1"]].to_numpy())
    return {"n_subjects": int(len(pred)), "ofd_mae_mm": plain_mean(err[:, 0]), "bpd_mae_mm": plain_mean(err[:, 1]),
            "n_fallback": int(pred["fallback"].sum())}


def evaluation_sections(conf, conf_val, subjects, pred_mm, true_mm, cfg: dict) -> dict:
    """Sections ``confidence`` and ``per_subject`` of metrics/eval/<model>.json for the evaluated
    test frames (``conf``, ``subjects``, (N, 2) OFD/BPD in mm) and the validation confidences
    ``conf_val`` (None when there is no validation split: the threshold is then 0.5)."""
    threshold = DEFAULT_THRESHOLD if conf_val is None else threshold_from_validation(conf_val, cfg["reject_share"])
    source = "default 0.5 (no validation frames)" if conf_val is None else \
        f"validation quantile {cfg['reject_share']:g} ({len(conf_val)} frames)"
    conf = np.asarray(conf, np.float64)
    worst = worst_diameter_error(np.asarray(pred_mm, np.float64) - np.asarray(true_mm, np.float64))
    section = {**rejection_metrics(conf, worst, threshold, cfg["bad_error_mm"]),
               "threshold_source": source}
    frame_err = np.abs(np.asarray(pred_mm) - np.asarray(true_mm))
    per_subject = {"per_frame": {"n_frames": int(len(conf)), "ofd_mae_mm": plain_mean(frame_err[:, 0]),
                                 "bpd_mae_mm": plain_mean(frame_err[:, 1])},
                   "all_frames": per_subject_metrics(subjects, pred_mm, true_mm, np.ones(len(conf), bool)),
                   "confident_frames": per_subject_metrics(subjects, pred_mm, true_mm, conf >= threshold)}
    return {"confidence": section, "per_subject": per_subject}

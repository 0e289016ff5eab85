"""Section ``intervals`` of metrics/eval/<model>.json: calibrated intervals (trust/intervals.py)
fitted on the validation frames and measured on the test frames.

The evaluate stage calls ``interval_section`` with the frames it has already predicted (the test
frames and the validation frames, each with its mirrored pass), so intervals cost no extra
forward pass. Everything is measured on the frames ``prepare.accepted_rows`` keeps, in the
original image, with the size calibration applied as for the headline metrics. Written:

* ``level``, ``method`` (score and scale), ``calibration`` (what ``fhbiometry predict`` needs:
  quantiles, floors, fitted coefficients, the cine quantiles);
* on the test frames: ``coverage`` and ``median_half_width_mm`` per target (bpd, ofd, hc),
  coverage by head-size tertile and BPD/OFD-ratio bin, ``auc_error_over_2mm`` (how the larger of
  the BPD and OFD half-widths ranks frames whose larger diameter error exceeds 2 mm),
  ``rejection`` (frames whose BPD half-width exceeds ``reject_half_width_mm``: the share
  rejected and the share of the frames off by > 4 mm that it removes), and ``per_cine``;
* ``candidates``: every score x scale, measured by two-fold cross-validation over the
  validation subjects (calibrate on one half, measure on the other: the figures the default is
  chosen on) and on the test frames (for the record).
"""
from __future__ import annotations

import numpy as np

from fhbiometry.core.letterbox import to_original
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.metrics.breakdown import LARGE_ERROR_MM, RATIO_EDGES
from fhbiometry.trust.calibration import apply_factors
from fhbiometry.trust.confidence import frame_confidence, threshold_from_validation
from fhbiometry.trust.intervals import (SCALES, SCORES, TARGETS, calibrate, calibrate_cines, cine_half_widths,
                                        cine_spread, frame_features, half_widths, halves, take, target_values)

AUC_ERROR_MM = 2.0


def frame_targets(frames, transform, factors, qc: dict, peak_target: float) -> tuple[np.ndarray, dict]:
    """((N, 3) predicted BPD, OFD, HC in original px, ``frame_features``) of an
    ``inference.FramePrediction`` (size factors applied to both passes)."""
    transform = np.asarray(transform, np.float64)
    points = apply_factors(to_original(frames.points, transform), factors)
    flip = None if frames.flip_points is None else apply_factors(to_original(frames.flip_points, transform), factors)
    tta = None if frames.tta_points is None else np.stack(
        [apply_factors(to_original(p, transform), factors) for p in frames.tta_points])
    return target_values(points), frame_features(points, flip, frames.peak, qc, peak_target, tta)


class Split:
    """The accepted frames of one split: predicted and true targets (px), spacing, features,
    subjects and confidences."""

    def __init__(self, arrays: dict, frames, factors, qc: dict, peak_target: float, conf_cfg: dict):
        use = accepted_rows(arrays)
        values, features = frame_targets(frames, arrays["transform"], factors, qc, peak_target)
        conf = frame_confidence(frames, arrays["transform"], qc, conf_cfg, peak_target)["confidence"].to_numpy()
        self.values, self.features = values[use], take(features, use)
        self.truth = target_values(np.asarray(arrays["points_orig"], np.float64))[use]
        self.spacing = np.asarray(arrays["spacing_mm"], np.float64)[use]
        self.groups = np.asarray(arrays["subject_id"]).astype(str)[use]
        self.conf = conf[use]

    def subset(self, mask) -> "Split":
        out = object.__new__(Split)
        out.values, out.features, out.truth = self.values[mask], take(self.features, mask), self.truth[mask]
        out.spacing, out.groups, out.conf = self.spacing[mask], self.groups[mask], self.conf[mask]
        return out

    def calibrate(self, level: float, score: str, scale: str) -> dict:
        return calibrate(self.values, self.truth, self.spacing, self.features, self.groups, level, score, scale)

    def widths(self, calibration: dict) -> np.ndarray:
        return half_widths(self.values, self.spacing, self.features, calibration)[0]

    def errors_mm(self) -> np.ndarray:
        return np.abs(self.values - self.truth) * self.spacing[:, None]


def per_target(fn) -> dict:
    return {t: fn(k) for k, t in enumerate(TARGETS)}


def _share(hit) -> float | None:
    hit = np.asarray(hit, bool)
    return float(hit.mean()) if len(hit) else None


def _median(values) -> float | None:
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if len(v) else None


def auc(positive, score) -> float | None:
    """ROC AUC of ``score`` for ``positive`` (None unless both classes are present)."""
    from sklearn.metrics import roc_auc_score  # lazy: scikit-learn loads slowly: only where an AUC is asked

    positive, score = np.asarray(positive, bool), np.nan_to_num(np.asarray(score, np.float64), posinf=1e300)
    return float(roc_auc_score(positive, score)) if positive.any() and (~positive).any() else None


def core_figures(err_mm, widths_mm) -> dict:
    """Coverage, median half-width per target and the AUC of the larger diameter half-width."""
    inside = err_mm <= widths_mm
    return {"n": int(len(err_mm)), "coverage": per_target(lambda k: _share(inside[:, k])),
            "median_half_width_mm": per_target(lambda k: _median(widths_mm[:, k])),
            "auc_error_over_2mm": auc(err_mm[:, :2].max(axis=1) > AUC_ERROR_MM, widths_mm[:, :2].max(axis=1))}


def bins(split: Split, inside) -> dict:
    """Coverage per target by head-size tertile (true HC of these frames) and BPD/OFD-ratio bin."""
    hc, ratio = split.truth[:, 2], split.truth[:, 0] / split.truth[:, 1]
    lo, hi = np.quantile(hc, [1 / 3, 2 / 3]) if len(hc) else (np.nan, np.nan)
    r1, r2 = RATIO_EDGES
    masks = {"head_size": {"small": hc <= lo, "medium": (hc > lo) & (hc <= hi), "large": hc > hi},
             "ratio": {f"below_{r1:g}": ratio < r1, f"{r1:g}_to_{r2:g}": (ratio >= r1) & (ratio <= r2),
                       f"above_{r2:g}": ratio > r2}}
    return {kind: {name: {"n": int(m.sum()), **per_target(lambda k, m=m: _share(inside[m, k]))}
                   for name, m in entries.items()} for kind, entries in masks.items()}


def rejection(err_mm, widths_mm, tolerance_mm: float) -> dict:
    """Frames whose BPD half-width exceeds ``tolerance_mm`` rejected: shares rejected and kept,
    and the share of the frames with a diameter error > LARGE_ERROR_MM that it removes."""
    rejected = ~(widths_mm[:, 0] <= tolerance_mm)
    large = err_mm[:, :2].max(axis=1) > LARGE_ERROR_MM
    return {"bpd_half_width_over_mm": float(tolerance_mm), "rejected_share": _share(rejected),
            "kept_share": _share(~rejected), "large_error_mm": LARGE_ERROR_MM, "n_large": int(large.sum()),
            "large_removed_share": _share(rejected[large]),
            "kept_large_share": _share(large[~rejected])}


def accepted(split: Split, threshold: float) -> np.ndarray:
    return split.conf >= threshold


def cine_figures(split: Split, widths_mm, threshold: float, cine_quantile: dict) -> dict:
    """Per test subject (its frames with confidence >= threshold): coverage and median half-width
    of the cine interval (median +- cine quantile x base width), in mm."""
    use = accepted(split, threshold)
    values_mm = split.values * split.spacing[:, None]
    names, med, base = cine_spread(values_mm, widths_mm, split.groups, use)
    _, truth, _ = cine_spread(split.truth * split.spacing[:, None], widths_mm, split.groups, use)
    hw = cine_half_widths(base, cine_quantile)
    figures = core_figures(np.abs(med - truth), hw)
    return {"n_cines": int(len(names)), **{k: v for k, v in figures.items() if k != "n"}}


def fit_cines(split: Split, calibration: dict, threshold: float) -> dict:
    """The cine quantiles from the validation subjects (their accepted frames)."""
    widths = split.widths(calibration)
    use = accepted(split, threshold)
    _, med, base = cine_spread(split.values * split.spacing[:, None], widths, split.groups, use)
    _, truth, _ = cine_spread(split.truth * split.spacing[:, None], widths, split.groups, use)
    return calibrate_cines(med, base, truth, calibration["level"])


def cross_validated(val: Split, level: float, score: str, scale: str) -> dict:
    """``core_figures`` of one candidate on the validation frames, each half of the subjects
    measured with the intervals calibrated on the other half."""
    first = halves(val.groups)
    err, widths = np.full(val.values.shape, np.nan), np.full(val.values.shape, np.nan)
    for fit in (first, ~first):
        if fit.any() and (~fit).any():
            calib = val.subset(fit).calibrate(level, score, scale)
            held = val.subset(~fit)
            err[~fit], widths[~fit] = held.errors_mm(), held.widths(calib)
    return core_figures(err, widths)


def candidates(val: Split, test: Split, level: float) -> dict:
    """Every score x scale: validation cross-validation figures and the test figures."""
    out = {}
    for scale in SCALES:
        for score in SCORES:
            if score == "tta" and "tta" not in val.features:   # no rotated / zoomed passes were run
                continue
            calib = val.calibrate(level, score, scale)
            out[f"{score}_{scale}"] = {"val_cv": cross_validated(val, level, score, scale),
                                       "test": core_figures(test.errors_mm(), test.widths(calib))}
    return out


def interval_section(codec, data: dict, frames, options, val_frames, factors) -> dict:
    """{"intervals": ...} (module docstring) of the test ``frames`` and the validation ``val_frames``;
    ``options``: the stage's ``EvaluationOptions`` (its ``intervals``, ``qc``, ``confidence``, ``val``)."""
    cfg, val = options.intervals, options.val
    level, score, scale = float(cfg["level"]), str(cfg["score"]), str(cfg["scale"])
    head = {"level": level, "method": {"score": score, "scale": scale, "calibrated_on": "validation frames"}}
    if val_frames is None or not accepted_rows(val).any():
        return {"intervals": {**head, "calibration": None, "note": "no validation frames: no intervals"}}
    peak = float(codec.peak)
    args = (factors, options.qc, peak, options.confidence)
    v, t = Split(val, val_frames, *args), Split(data, frames, *args)
    threshold = threshold_from_validation(v.conf, options.confidence["reject_share"])
    calib = v.calibrate(level, score, scale)
    if score == "tta":   # predict runs the passes the calibration was measured with
        calib["tta_transforms"] = [[float(d), float(z)] for d, z in options.tta()]
    calib["cine_quantile"] = fit_cines(v, calib, threshold)
    widths, err = t.widths(calib), t.errors_mm()
    section = {**head, "calibration": calib, **core_figures(err, widths),
               "bins": bins(t, err <= widths),
               "rejection": rejection(err, widths, float(cfg["reject_half_width_mm"])),
               "per_cine": cine_figures(t, widths, threshold, calib["cine_quantile"]),
               "candidates": candidates(v, t, level)}
    return {"intervals": section}


def interval_line(name: str, section: dict) -> str:
    """The stage's log line: coverage and median half-width of BPD, OFD, HC on the test frames."""
    parts = [f"{t.upper()} {section['coverage'][t]:.2f} / {section['median_half_width_mm'][t]:.2f} mm"
             for t in TARGETS if section["coverage"][t] is not None]
    return (f"evaluate@{name}: {section['level']:.0%} intervals ({section['method']['score']}, "
            f"{section['method']['scale']}) coverage / median half-width: " + ", ".join(parts))

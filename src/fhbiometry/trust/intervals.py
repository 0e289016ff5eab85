"""Calibrated intervals on BPD, OFD and HC: split conformal prediction on held-out frames,
normalised by a per-frame difficulty score (params ``intervals``; docs/predict.md, "Intervals").

For a target t (``bpd``, ``ofd``, ``hc``) and a frame with prediction v, the interval is
``v +- q_t * sigma_t`` where

* ``sigma_t = u_t + floor_t`` is the frame's difficulty: ``u_t >= 0`` the raw score of params
  ``intervals.score`` (``SCORES``) and ``floor_t`` the median of ``u_t`` over the calibration
  frames (1 where that median is 0, e.g. ``none``), so that no frame gets a zero-width interval;
* ``q_t`` is the split-conformal quantile of the calibration frames' normalised residuals
  ``|v - truth| / sigma_t``: the ``ceil((n + 1) * level)``-th smallest of the n values
  (infinite when that rank exceeds n, i.e. too few frames for the level). For exchangeable
  frames the true value then lies inside with probability >= level (Vovk et al. 2005; Angelopoulos
  & Bates 2021, "A gentle introduction to conformal prediction").

``intervals.scale`` says what is calibrated: ``mm`` the residual in millimetres (q in mm; a second
quantile on the residuals in original pixels serves frames without a spacing), ``relative`` the
residual as a fraction of the predicted value (q unit-free: the same interval in mm and px; errors
grow with head size, so this can hold better across head sizes).

Scores (all unit-free, from what every model kind gives, ``frame_features``):

* ``none``: 0 (plain split conformal, the same width for every frame);
* ``flip``: |value - the mirrored input's value| / value (test-time augmentation by the flip);
* ``geometry``: the distance of the four points from one ellipse (``confidence.geometry_term``);
* ``peak``: 1 - the mean heatmap peak / the codec's target peak (0 for regressors);
* ``fitted``: exp of a least-squares fit of log(relative residual) on log(flip), log(geometry)
  and peak, fitted on half the calibration subjects and calibrated on the other half.
* ``tta``: the standard deviation of each target over the plain pass and the rotated and zoomed
  passes (``inference/tta.py``; params ``intervals.tta_rotations_deg``, ``tta_scales``) / value:
  test-time augmentation beyond the flip, one more network pass per transform.

A cine's value is the median of its accepted frames; its difficulty is the median of their
half-widths plus half the range of their values, and its quantile is calibrated the same way on
the validation subjects (``calibrate_cines``).
"""
from __future__ import annotations

import math

import numpy as np

from fhbiometry.core.choices import INTERVAL_SCALES, INTERVAL_SCORES
from fhbiometry.core.geometry import diameters, head_circumference
from fhbiometry.trust.confidence import geometry_term, peak_term

TARGETS = ("bpd", "ofd", "hc")
SCORES = INTERVAL_SCORES   # written once, in core.choices (the params schema reads them there)
SCALES = INTERVAL_SCALES
EPS = 1e-3        # added before the logs of the fitted score


def conformal_quantile(scores, level: float) -> float:
    """The split-conformal quantile of calibration ``scores`` at ``level``: the
    ``ceil((n + 1) * level)``-th smallest finite score (inf when that rank exceeds n or n is 0)."""
    s = np.sort(np.asarray(scores, np.float64)[np.isfinite(np.asarray(scores, np.float64))])
    n = len(s)
    rank = math.ceil((n + 1) * float(level) - 1e-9)
    return float(s[rank - 1]) if 1 <= rank <= n else float("inf")


def target_values(points) -> np.ndarray:
    """(N, 3) BPD, OFD and HC of (N, 4, 2) points, in their units."""
    p = np.asarray(points, np.float64)
    d = diameters(p)
    return np.stack([d[:, 1], d[:, 0], head_circumference(p)], axis=1)


def frame_features(points, flip_points, peak, qc: dict, peak_target: float = 1.0, tta_points=None) -> dict:
    """The raw difficulty evidence of N frames (points in original pixels): ``flip`` (N, 3) the
    relative change of each target under the flip (zeros without a mirrored pass), ``geometry``
    (N,), ``peak`` (N,) (zeros for regressors) and, given the (T, N, 4, 2) ``tta_points`` of the
    rotated / zoomed passes, ``tta`` (N, 3) the spread of each target over them and the plain
    pass, relative to the value."""
    values = target_values(points)
    extra = {} if tta_points is None else {"tta": tta_spread(values, tta_points)}
    if flip_points is None:
        flip = np.zeros_like(values)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            flip = np.abs(values - target_values(flip_points)) / values
    peaks = peak_term(peak, peak_target)
    return {"flip": flip, "geometry": np.asarray(geometry_term(points, qc), np.float64),
            "peak": np.zeros(len(values)) if peaks is None else np.asarray(peaks, np.float64), **extra}


def tta_spread(values, tta_points) -> np.ndarray:
    """(N, 3) the standard deviation of each target over the plain pass (``values``) and the
    augmented passes (T, N, 4, 2), divided by the plain value (NaN where that is 0)."""
    passes = [np.asarray(values, np.float64)] + [target_values(p) for p in np.asarray(tta_points, np.float64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.std(np.stack(passes), axis=0) / np.abs(passes[0])


def design(features: dict) -> np.ndarray:
    """(N, 3, 4) regressors of the fitted score per target: 1, log flip, log geometry, peak."""
    n = len(features["geometry"])
    geometry = np.broadcast_to(np.log(features["geometry"] + EPS)[:, None], (n, 3))
    peak = np.broadcast_to(features["peak"][:, None], (n, 3))
    return np.stack([np.ones((n, 3)), np.log(features["flip"] + EPS), geometry, peak], axis=-1)


def fit_score(features: dict, relative_residuals) -> list[list[float]]:
    """Per target, least-squares coefficients of log(residual + EPS) on ``design(features)``
    over the frames where everything is finite (zeros where fewer than 8 such frames)."""
    x, y = design(features), np.log(np.asarray(relative_residuals, np.float64) + EPS)
    coefs = []
    for t in range(len(TARGETS)):
        ok = np.isfinite(x[:, t]).all(axis=1) & np.isfinite(y[:, t])
        if ok.sum() < 8:
            coefs.append([0.0] * x.shape[-1])
            continue
        beta, *_ = np.linalg.lstsq(x[ok, t], y[ok, t], rcond=None)
        coefs.append([float(b) for b in beta])
    return coefs


def raw_score(features: dict, score: str, coefficients=None) -> np.ndarray:
    """(N, 3) the unit-free raw score ``u`` of ``score`` (module docstring)."""
    n = len(features["geometry"])
    if score == "none":
        return np.zeros((n, 3))
    if score == "flip":
        return np.asarray(features["flip"], np.float64)
    if score in ("geometry", "peak"):
        return np.repeat(np.asarray(features[score], np.float64)[:, None], 3, axis=1)
    if score == "fitted":
        beta = np.asarray(coefficients, np.float64)            # (3, 4)
        return np.exp(np.einsum("ntk,tk->nt", design(features), beta))
    if score == "tta":
        if "tta" not in features:
            raise ValueError("intervals.score 'tta' needs the rotated and zoomed passes (params "
                             "intervals.tta_rotations_deg / tta_scales), which this caller did not run")
        return np.asarray(features["tta"], np.float64)
    raise ValueError(f"intervals.score {score!r}: choose one of {list(SCORES)}")


def floors(u) -> list[float]:
    """Per target the median of the finite raw scores, 1 where it is 0 or undefined."""
    out = []
    for t in range(u.shape[1]):
        col = u[:, t][np.isfinite(u[:, t])]
        med = float(np.median(col)) if len(col) else 0.0
        out.append(med if med > 0 else 1.0)
    return out


def sigma(features: dict, calibration: dict) -> np.ndarray:
    """(N, 3) the frames' difficulty ``u + floor`` under ``calibration``."""
    u = raw_score(features, calibration["score"], calibration.get("coefficients"))
    return u + np.asarray([calibration["floor"][t] for t in TARGETS])


def residuals(values_px, truth_px, spacing, scale: str) -> np.ndarray:
    """(N, 3) |value - truth| in the calibrated scale: mm, or as a fraction of the value."""
    err = np.abs(np.asarray(values_px, np.float64) - np.asarray(truth_px, np.float64))
    if scale == "mm":
        return err * np.asarray(spacing, np.float64)[:, None]
    if scale == "relative":
        with np.errstate(invalid="ignore", divide="ignore"):
            return err / np.asarray(values_px, np.float64)
    raise ValueError(f"intervals.scale {scale!r}: choose one of {list(SCALES)}")


def halves(groups) -> np.ndarray:
    """Boolean (N,): True for the frames of every other subject in sorted order (the fit half)."""
    names = np.unique(np.asarray(groups).astype(str))
    fit = set(names[::2])
    return np.array([g in fit for g in np.asarray(groups).astype(str)], bool)


def calibrate(values_px, truth_px, spacing, features: dict, groups, level: float, score: str,
              scale: str) -> dict:
    """The calibration (what ``half_widths`` needs) from held-out frames: predicted and true
    targets (N, 3) in original pixels, ``spacing`` (N,) mm/px (NaN: used for px only), their
    ``features`` and subject ``groups``. ``fitted`` fits on half the subjects, calibrates on
    the others."""
    values_px, truth_px = np.asarray(values_px, np.float64), np.asarray(truth_px, np.float64)
    cal = np.ones(len(values_px), bool)
    out = {"level": float(level), "score": score, "scale": scale}
    if score == "fitted":
        fit = halves(groups)
        rel = residuals(values_px[fit], truth_px[fit], None, "relative")
        out["coefficients"] = fit_score(take(features, fit), rel)
        cal = ~fit
    u = raw_score(take(features, cal), score, out.get("coefficients"))
    out["floor"] = dict(zip(TARGETS, floors(u)))
    s = sigma(take(features, cal), out)
    spacing = np.asarray(spacing, np.float64)[cal]
    res = residuals(values_px[cal], truth_px[cal], spacing, scale)
    out["quantile"] = {t: conformal_quantile(res[:, k] / s[:, k], level) for k, t in enumerate(TARGETS)}
    if scale == "mm":     # frames without a spacing: the same rule on the residuals in original px
        res_px = np.abs(values_px[cal] - truth_px[cal])
        out["quantile_px"] = {t: conformal_quantile(res_px[:, k] / s[:, k], level) for k, t in enumerate(TARGETS)}
    out["n"] = int(cal.sum())
    return out


def take(features: dict, mask) -> dict:
    return {k: np.asarray(v)[mask] for k, v in features.items()}


def half_widths(values_px, spacing, features: dict, calibration: dict) -> tuple[np.ndarray, np.ndarray]:
    """((N, 3) half-widths in mm (NaN without spacing), (N, 3) in original px)."""
    values_px = np.asarray(values_px, np.float64)
    s = sigma(features, calibration)
    q = np.asarray([calibration["quantile"][t] for t in TARGETS])
    spacing = np.asarray(spacing, np.float64)[:, None]
    if calibration["scale"] == "relative":
        px = q * s * values_px
        return px * spacing, px
    q_px = np.asarray([calibration["quantile_px"][t] for t in TARGETS])
    mm = np.where(np.isfinite(spacing), q * s, np.nan)
    return mm, q_px * s


# ---- cines ---------------------------------------------------------------------------------------
def cine_spread(values, widths, groups, use) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group (sorted names) of the rows ``use``: (names, (G, 3) median value, (G, 3) base
    width = median frame half-width + half the range of the values). Groups without a used row
    are left out."""
    groups, use = np.asarray(groups).astype(str), np.asarray(use, bool)
    names = [g for g in np.unique(groups) if (use & (groups == g)).any()]
    med, base = np.full((len(names), 3), np.nan), np.full((len(names), 3), np.nan)
    for i, g in enumerate(names):
        rows = use & (groups == g)
        v, w = np.asarray(values, np.float64)[rows], np.asarray(widths, np.float64)[rows]
        med[i] = np.median(v, axis=0)
        base[i] = np.median(w, axis=0) + 0.5 * (v.max(axis=0) - v.min(axis=0))
    return np.asarray(names, str), med, base


def calibrate_cines(med, base, truth, level: float) -> dict:
    """Per target the conformal quantile of |cine median - true median| / base width (unit-free:
    the same in mm and px, as a cine has one spacing), over the validation cines."""
    ratio = np.abs(np.asarray(med) - np.asarray(truth)) / np.asarray(base)
    return {t: conformal_quantile(ratio[:, k], level) for k, t in enumerate(TARGETS)}


def cine_half_widths(base, cine_quantile: dict) -> np.ndarray:
    """(G, 3) the cine half-widths: quantile x base width (the base's units)."""
    return np.asarray(base, np.float64) * np.asarray([cine_quantile[t] for t in TARGETS])

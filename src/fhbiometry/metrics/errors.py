"""Point and diameter errors: the figures every other metric is built from.

Conventions (used by evaluation, training validation, the breakdown and the tables):

* radial errors are pair-order invariant (``geometry.pair_invariant_errors``);
* the MRE of a frame is the mean of its four radial errors; the headline ``mre_mm`` is the mean
  over all landmarks of all evaluated frames (equal to the mean of the frame MREs);
* a diameter error is ``pred - true`` (mm: each length scaled to mm first, ``diameter_errors_mm``);
* the worst-diameter error of a frame is the larger of |BPD error| and |OFD error|;
* a relative error is |diameter error| / true diameter, in % (the same in pixels and in mm);
* standard deviations use ``ddof=1`` (sample sd; NaN for a single value, written as null);
* percentiles use NumPy's default linear interpolation;
* Bland-Altman differences are ``pred - true``; limits of agreement are ``bias +- 1.96 sd``.
"""
from __future__ import annotations

import numpy as np

from fhbiometry.core.geometry import LANDMARKS, diameters, pair_invariant_errors, to_mm
from fhbiometry.core.letterbox import to_input

LOA_Z = 1.96
DIAMETERS = ("ofd", "bpd")  # column order of geometry.diameters
RELATIVE_LIMIT_PCT = 5.0    # a frame is "off" when a diameter is off by more than this % of it
STATS = ("mean", "median", "std", "p95", "max")


def radial_errors(pred, true) -> np.ndarray:
    """(N, 4) pair-invariant radial error of every landmark, in the units of the points."""
    return pair_invariant_errors(pred, true)


def sample_sd(values: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); NaN for fewer than two values."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def finite_mean(values) -> float:
    """Mean of the finite entries; NaN if none."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def summary_stats(values) -> dict:
    """mean, median, std, p95, max of a 1-D array (NaN entries ignored; NaN if none left)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {k: float("nan") for k in STATS}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "std": sample_sd(v),
            "p95": float(np.percentile(v, 95)), "max": float(v.max())}


def threshold_key(t) -> str:
    """``within_2mm``, ``within_2p5mm``: no dots, so DVC's flattened names stay readable."""
    return f"within_{float(t):g}mm".replace(".", "p")


def threshold_of_key(key: str) -> float:
    """Inverse of ``threshold_key``: ``within_2p5mm`` -> 2.5."""
    return float(key[len("within_"):-len("mm")].replace("p", "."))


def success_rates(errors_mm, thresholds_mm) -> dict:
    """Share of landmarks with radial error <= t mm, keyed ``within_<t>mm`` (``.`` -> ``p``)."""
    e = np.asarray(errors_mm, dtype=np.float64).ravel()
    e = e[np.isfinite(e)]
    return {threshold_key(t): float((e <= float(t)).mean()) if len(e) else float("nan") for t in thresholds_mm}


def bland_altman(pred, true) -> dict:
    """Bland-Altman agreement of two 1-D measurements: bias = mean(pred - true), sd of the
    differences (ddof=1) and the 95% limits of agreement bias +- 1.96 sd."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return {"bias": float("nan"), "sd": float("nan"), "loa_low": float("nan"), "loa_high": float("nan")}
    bias, sd = float(d.mean()), sample_sd(d)
    return {"bias": bias, "sd": sd, "loa_low": bias - LOA_Z * sd, "loa_high": bias + LOA_Z * sd}


def diameter_metrics(pred_mm, true_mm) -> dict:
    """Absolute-error statistics and Bland-Altman of one diameter (1-D arrays in mm)."""
    pred_mm, true_mm = np.asarray(pred_mm, np.float64), np.asarray(true_mm, np.float64)
    stats = summary_stats(np.abs(pred_mm - true_mm))
    ba = bland_altman(pred_mm, true_mm)
    return {"mae_mm": stats["mean"], "median_mm": stats["median"], "std_mm": stats["std"],
            "p95_mm": stats["p95"], "max_mm": stats["max"], "bias_mm": ba["bias"],
            "loa_low_mm": ba["loa_low"], "loa_high_mm": ba["loa_high"]}


def diameter_lengths_mm(points, spacing_mm) -> np.ndarray:
    """(N, 2) OFD, BPD lengths in mm of (N, 4, 2) original-pixel points."""
    return to_mm(diameters(np.asarray(points, np.float64)), spacing_mm)


def diameter_errors_mm(pred, true, spacing_mm) -> np.ndarray:
    """(N, 2) OFD, BPD errors pred - true in mm (each length scaled to mm, then subtracted)."""
    return diameter_lengths_mm(pred, spacing_mm) - diameter_lengths_mm(true, spacing_mm)


def compute_metrics(pred_orig, true_orig, spacing_mm, thresholds_mm) -> dict:
    """All landmark and diameter metrics of N frames.

    ``pred_orig``/``true_orig`` are (N, 4, 2) points in original pixels, ``spacing_mm`` (N,).
    Returns a nested dict (n, MRE in px and mm with median and max, per-landmark mean radial
    error, success rates, and BPD/OFD error statistics with Bland-Altman).
    """
    pred_orig = np.asarray(pred_orig, np.float64)
    true_orig = np.asarray(true_orig, np.float64)
    spacing = np.asarray(spacing_mm, np.float64)
    err_px = radial_errors(pred_orig, true_orig)
    err_mm = to_mm(err_px, spacing)
    mm, px = summary_stats(err_mm), summary_stats(err_px)
    d_pred, d_true = diameter_lengths_mm(pred_orig, spacing), diameter_lengths_mm(true_orig, spacing)
    out = {
        "n": int(len(pred_orig)),
        "mre_mm": mm["mean"], "mre_mm_median": mm["median"], "mre_mm_max": mm["max"],
        "mre_px": px["mean"], "mre_px_median": px["median"], "mre_px_max": px["max"],
        "landmark_mre_mm": {name: finite_mean(err_mm[:, k]) for k, name in enumerate(LANDMARKS)},
        "landmark_mre_px": {name: finite_mean(err_px[:, k]) for k, name in enumerate(LANDMARKS)},
        "success_rate": success_rates(err_mm, thresholds_mm),
    }
    for k, name in enumerate(DIAMETERS):
        out[name] = diameter_metrics(d_pred[:, k], d_true[:, k])
    return out


def short_metrics(metrics: dict) -> dict:
    """The three numbers used to compare decoding methods: MRE and the two diameter MAEs."""
    return {"mre_mm": metrics["mre_mm"], "bpd_mae_mm": metrics["bpd"]["mae_mm"],
            "ofd_mae_mm": metrics["ofd"]["mae_mm"]}


# ---- errors where they show: pixels and % of the diameter -----------------------------------
def worst_diameter_error(errors) -> np.ndarray:
    """(N,) the larger absolute error of the two diameters, from (N, 2) errors (any unit)."""
    return np.abs(np.asarray(errors, np.float64)).max(axis=1)


def pixel_and_relative_errors(pred, true, transform=None) -> dict:
    """Per-frame arrays (N,) of (N, 4, 2) original-pixel points: ``worst_px`` (worst-diameter
    error in original pixels), ``worst_input_px`` (the same in the network's input pixels, via
    the letterbox ``transform``; NaN without one), ``ofd_rel_pct`` and ``bpd_rel_pct``
    (|error| / true length, %) and ``over_limit`` (a diameter off by more than
    ``RELATIVE_LIMIT_PCT``)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    d_true = diameters(true)
    err = diameters(pred) - d_true
    if transform is None:
        worst_in = np.full(len(pred), np.nan)
    else:
        t = np.asarray(transform, np.float64)
        worst_in = worst_diameter_error(diameters(to_input(pred, t)) - diameters(to_input(true, t)))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(d_true > 0, 100.0 * np.abs(err) / d_true, np.nan)
    return {"worst_px": worst_diameter_error(err), "worst_input_px": worst_in,
            "ofd_rel_pct": rel[:, 0], "bpd_rel_pct": rel[:, 1],
            "over_limit": (rel > RELATIVE_LIMIT_PCT).any(axis=1)}


def defined(x: float) -> float | None:
    """``x``, or None where it is NaN (no frame)."""
    return x if np.isfinite(x) else None


def share(flags) -> float | None:
    """Share of True among ``flags``; None for no frames."""
    flags = np.asarray(flags, bool)
    return float(flags.mean()) if len(flags) else None


def pixel_and_relative_sections(f: dict) -> dict:
    """Sections ``worst_diameter_error`` (original and input px: mean, median, p95, max) and
    ``relative_error`` (mean % per diameter, share and count of frames over the limit) of
    ``pixel_and_relative_errors`` output (or any dict holding its keys); None where undefined."""
    def stats(values):
        s = summary_stats(values)
        return {k: (s[k] if np.isfinite(s[k]) else None) for k in ("mean", "median", "p95", "max")}

    over = np.asarray(f["over_limit"], bool)
    return {"worst_diameter_error": {"original_px": stats(f["worst_px"]), "input_px": stats(f["worst_input_px"])},
            "relative_error": {"ofd_pct": defined(finite_mean(f["ofd_rel_pct"])),
                               "bpd_pct": defined(finite_mean(f["bpd_rel_pct"])),
                               "limit_pct": RELATIVE_LIMIT_PCT, "over_limit_frames": int(over.sum()),
                               "over_limit_share": share(over)}}

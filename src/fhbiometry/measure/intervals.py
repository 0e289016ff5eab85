"""Calibrated intervals on every measurement (trust/intervals.py; docs/predict.md, "Intervals"):
the evaluate stage's calibration (section ``intervals`` of metrics/eval/<model>.json) applied to
new frames and cines.

Columns added to the frame table and the summary: ``bpd_mm_lo, bpd_mm_hi, ofd_mm_lo, ofd_mm_hi,
hc_mm_lo, hc_mm_hi`` (empty without a pixel spacing) and ``bpd_px_lo, bpd_px_hi, ofd_px_lo,
ofd_px_hi`` (always). A cine's interval is centred on its median and combines its used frames'
half-widths and the spread of their values, with the cine quantile calibrated on the validation
subjects. Without a calibration (no metrics beside the model, or metrics without intervals) the
columns are empty and summary.json says why.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fhbiometry.measure.aggregate import BASIS_REJECTED
from fhbiometry.trust.intervals import TARGETS, cine_half_widths, cine_spread, frame_features, half_widths, target_values

MM_COLUMNS = tuple(f"{t}_mm_{end}" for t in TARGETS for end in ("lo", "hi"))
PX_COLUMNS = tuple(f"{t}_px_{end}" for t in ("bpd", "ofd") for end in ("lo", "hi"))
COLUMNS = MM_COLUMNS + PX_COLUMNS


def resolve_intervals(metrics: dict, source) -> tuple[dict | None, str]:
    """(the calibration of the metrics' section ``intervals`` or None, where it came from)."""
    section = metrics.get("intervals") or {}
    calib = section.get("calibration")
    if not calib:
        why = "no metrics beside the model" if source is None else f"no calibrated intervals in {source}"
        return None, f"none ({why}; run `dvc repro evaluate` with a validation split, or give --metrics)"
    calib = {**calib, "quantile": _finite(calib["quantile"]), "cine_quantile": _finite(calib.get("cine_quantile"))}
    if "quantile_px" in calib:
        calib["quantile_px"] = _finite(calib["quantile_px"])
    return calib, f"{source} (evaluate stage, calibrated on the validation frames)"


def _finite(q: dict | None) -> dict:
    """JSON writes an infinite quantile (too few calibration frames) as null: back to inf."""
    return {t: float("inf") if (q or {}).get(t) is None else float(q[t]) for t in TARGETS}


def describe(calib: dict | None) -> dict:
    """What summary.json says about the intervals: level and method, or null."""
    if calib is None:
        return {"level": None, "method": None}
    return {"level": calib["level"], "method": {"score": calib["score"], "scale": calib["scale"]}}


def tta_transforms(calib: dict | None) -> tuple:
    """The (degrees, zoom) passes the calibration's score needs (score ``tta``; none otherwise)."""
    if not calib or calib.get("score") != "tta":
        return ()
    if not calib.get("tta_transforms"):
        raise ValueError("the intervals' calibration has score 'tta' but no tta_transforms: rerun "
                         "`dvc repro evaluate` with this revision")
    return tuple((float(d), float(z)) for d, z in calib["tta_transforms"])


def frame_intervals(points, flipped, peak, spacing: float, qc: dict, calib: dict | None,
                    peak_target: float = 1.0, tta=None) -> pd.DataFrame:
    """One row per frame: the interval columns ``COLUMNS`` (original px points of the frames,
    their mirrored pass, heatmap peaks, the (T, N, 4, 2) rotated / zoomed passes ``tta`` where
    the score needs them; ``spacing`` mm/px or NaN)."""
    n = len(points)
    if calib is None:
        return pd.DataFrame({c: np.full(n, np.nan) for c in COLUMNS})
    values = target_values(points)
    feats = frame_features(points, flipped, peak, qc, peak_target, tta)
    mm, px = half_widths(values, np.full(n, float(spacing)), feats, calib)
    cols = {}
    for k, t in enumerate(TARGETS):
        cols[f"{t}_mm_lo"], cols[f"{t}_mm_hi"] = values[:, k] * spacing - mm[:, k], values[:, k] * spacing + mm[:, k]
    for k, t in enumerate(("bpd", "ofd")):
        cols[f"{t}_px_lo"], cols[f"{t}_px_hi"] = values[:, k] - px[:, k], values[:, k] + px[:, k]
    return pd.DataFrame(cols)


def frame_widths(frames: pd.DataFrame, unit: str) -> np.ndarray:
    """(N, 3) the frames' half-widths (hc NaN in px) from their interval columns."""
    names = TARGETS if unit == "mm" else ("bpd", "ofd")
    w = [(frames[f"{t}_{unit}_hi"] - frames[f"{t}_{unit}_lo"]).to_numpy(np.float64) / 2 for t in names]
    if unit == "px":
        w.append(np.full(len(frames), np.nan))
    return np.stack(w, axis=1)


def cine_intervals(frames: pd.DataFrame, summary: pd.DataFrame, calib: dict | None) -> pd.DataFrame:
    """``summary`` with the interval columns: each cine's median +- cine quantile x (median frame
    half-width + half the range of the used frames' values); used = accepted, or every frame of a
    cine measured from its rejected frames (``--measure-rejected``); a cine without a value has
    no interval."""
    out = summary.copy()
    for c in COLUMNS:
        out[c] = np.nan
    if calib is None or frames.empty:
        return out
    fallback = set(summary.loc[summary["basis"] == BASIS_REJECTED, "cine_id"]) if "basis" in summary else set()
    use = frames["accepted"].to_numpy(bool) | frames["cine_id"].isin(fallback).to_numpy()
    groups = frames["cine_id"].astype(str).to_numpy()
    for unit, names in (("mm", TARGETS), ("px", ("bpd", "ofd"))):
        value_cols = [f"{t}_{unit}" for t in names] + ([] if unit == "mm" else ["bpd_px"])
        values = frames[value_cols].to_numpy(np.float64)
        cines, _, base = cine_spread(values, frame_widths(frames, unit), groups, use)
        hw = cine_half_widths(base, calib["cine_quantile"])
        rows = out["cine_id"].astype(str).map({c: i for i, c in enumerate(cines)})
        for k, t in enumerate(names):
            width = rows.map(lambda i, k=k: hw[int(i), k] if pd.notna(i) else np.nan).to_numpy(np.float64)
            out[f"{t}_{unit}_lo"], out[f"{t}_{unit}_hi"] = out[f"{t}_{unit}"] - width, out[f"{t}_{unit}"] + width
    return out


def with_interval(row, name: str, unit: str) -> str:
    """``45.2 mm [44.1, 46.4]`` (no brackets where the interval is unknown)."""
    value, lo, hi = row[f"{name}_{unit}"], row.get(f"{name}_{unit}_lo", np.nan), row.get(f"{name}_{unit}_hi", np.nan)
    text = f"{value:.1f} {unit}"
    if np.isfinite(lo) and np.isfinite(hi):
        text += f" [{lo:.1f}, {hi:.1f}]"
    elif np.isfinite(value) and (np.isinf(lo) or np.isinf(hi)):
        text += " [unbounded]"
    return text


def interval_note(settings) -> str:
    """The terminal's line on the intervals: level, method and source, or why there are none."""
    calib = settings.intervals
    if calib is None:
        return f"intervals: {settings.intervals_source}"
    return (f"[lo, hi]: {calib['level']:.0%} intervals ({calib['score']} score, {calib['scale']} scale) from "
            f"{settings.intervals_source}")

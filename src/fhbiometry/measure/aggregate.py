"""Cine aggregation: one row per cine from its frames.

A cine is measured only from its accepted frames (plausible and confident, frames.py): the
median and IQR over them, the gestational ages of the medians. A cine with no accepted frame has
no measurement: empty BPD, OFD, HC, cephalic index and GA, ``status`` "no accepted frame" and a
``reason`` naming every frame's failed checks. Only ``measure_rejected`` (``--measure-rejected``)
gives such a cine the median of its rejected frames, and then ``basis`` says so.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fhbiometry.core.biometry import ga_from_bpd_weeks, ga_from_hc_weeks

SUMMARY_VALUES = ("bpd_px", "ofd_px", "bpd_mm", "ofd_mm", "hc_mm", "cephalic_index")
IQR_VALUES = ("bpd_mm", "ofd_mm", "hc_mm")
MEASURED = "measured"
NO_ACCEPTED_FRAME = "no accepted frame"
STATUSES = (MEASURED, NO_ACCEPTED_FRAME)
BASIS_ACCEPTED = "accepted frames"
BASIS_REJECTED = "REJECTED frames (--measure-rejected)"
BASIS_NONE = "none"


def frame_ranges(indices) -> str:
    """``[0, 1, 2, 5]`` -> ``"#0-#2, #5"``."""
    idx, parts, start = sorted(int(i) for i in indices), [], None
    for k, i in enumerate(idx):
        if start is None:
            start = i
        if k + 1 == len(idx) or idx[k + 1] != i + 1:
            parts.append(f"#{start}" if start == i else f"#{start}-#{i}")
            start = None
    return ", ".join(parts)


def rejection_reason(rows: pd.DataFrame) -> str:
    """The rejected frames of one cine grouped by the checks they failed (frames.csv
    ``reject_reason``): ``"#0-#29: low confidence, ratio; #30: outside"``; "" when none."""
    rejected = rows[~rows["accepted"].astype(bool)]
    groups = rejected.groupby("reject_reason", sort=False)["frame_index"]
    return "; ".join(f"{frame_ranges(idx)}: {why}" for why, idx in groups)


def cine_values(rows: pd.DataFrame) -> dict:
    """Medians of ``SUMMARY_VALUES`` and IQRs of ``IQR_VALUES`` over ``rows`` (NaN when empty
    or when a column is empty, e.g. mm without a spacing), and the GAs of the medians."""
    values = rows[list(SUMMARY_VALUES)].to_numpy(np.float64).reshape(len(rows), len(SUMMARY_VALUES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns: no rows, or no spacing
        q1, med, q3 = np.nanpercentile(values, [25, 50, 75], axis=0) if len(rows) else np.full((3, values.shape[1]), np.nan)
    out = dict(zip(SUMMARY_VALUES, map(float, med)))
    out.update({f"{name}_iqr": float(q3[k] - q1[k]) for k, name in enumerate(SUMMARY_VALUES) if name in IQR_VALUES})
    out["ga_bpd_weeks"] = float(ga_from_bpd_weeks(out["bpd_mm"]))
    out["ga_hc_weeks"] = float(ga_from_hc_weeks(out["hc_mm"]))
    return out


def cine_row(cine: str, rows: pd.DataFrame, measure_rejected: bool = False) -> dict:
    """The summary row of one cine (module docstring)."""
    accepted = rows[rows["accepted"].astype(bool)]
    status = MEASURED if len(accepted) else NO_ACCEPTED_FRAME
    if len(accepted):
        basis, chosen = BASIS_ACCEPTED, accepted
    elif measure_rejected:
        basis, chosen = BASIS_REJECTED, rows
    else:
        basis, chosen = BASIS_NONE, rows.iloc[:0]
    best = rows.loc[rows["confidence"].fillna(-1.0).idxmax()]
    row = {"cine_id": cine, "subject_id": rows["subject_id"].iloc[0], "status": status, "basis": basis,
           "reason": rejection_reason(rows), "n_frames": len(rows), "n_used": len(chosen),
           "n_rejected": len(rows) - len(accepted)}
    row.update(cine_values(chosen))
    row.update(best_source_file=best["source_file"], best_frame_index=int(best["frame_index"]),
               best_confidence=float(best["confidence"]), spacing_mm=float(rows["spacing_mm"].iloc[0]),
               spacing_source=rows["spacing_source"].iloc[0])
    for column in ("region", "notes"):
        if column in rows:
            row[column] = " | ".join(dict.fromkeys(str(v) for v in rows[column] if str(v)))
    return row


def summarise_cines(frames: pd.DataFrame, measure_rejected: bool = False) -> pd.DataFrame:
    """One row per cine, in order of first appearance (module docstring)."""
    if frames.empty:
        return pd.DataFrame(columns=["cine_id", "status"])
    groups = frames.groupby("cine_id", sort=False)
    return pd.DataFrame([cine_row(str(cine), rows, measure_rejected) for cine, rows in groups])

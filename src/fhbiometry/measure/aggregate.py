"""Cine aggregation: one row per cine from its frames: the median and IQR over the accepted
frames, the counts, gestational ages of the medians, the best frame."""
from __future__ import annotations

import pandas as pd

from fhbiometry.core.biometry import ga_from_bpd_weeks, ga_from_hc_weeks
from fhbiometry.trust.confidence import group_medians

SUMMARY_VALUES = ("bpd_px", "ofd_px", "bpd_mm", "ofd_mm", "hc_mm", "cephalic_index")


def summarise_cines(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per cine: median and IQR over its accepted frames (all frames with ``fallback``
    when none is accepted), counts, gestational ages of the medians, the best frame."""
    if frames.empty:
        return pd.DataFrame(columns=["cine_id"])
    agg = group_medians(frames[list(SUMMARY_VALUES)].to_numpy(), frames["cine_id"].to_numpy(),
                        frames["accepted"].to_numpy())
    best = frames.loc[frames.groupby("cine_id", sort=False)["confidence"].idxmax()].set_index("cine_id")
    rows = []
    for _, r in agg.iterrows():
        b = best.loc[r["group"]]
        row = {"cine_id": r["group"], "subject_id": b["subject_id"], "n_frames": r["n_frames"],
               "n_used": r["n_used"], "n_rejected": r["n_rejected"], "fallback": bool(r["fallback"])}
        for k, name in enumerate(SUMMARY_VALUES):
            row[name] = r[f"median_{k}"]
        for k, name in enumerate(SUMMARY_VALUES[2:5], start=2):
            row[f"{name}_iqr"] = r[f"iqr_{k}"]
        row["ga_bpd_weeks"] = float(ga_from_bpd_weeks(row["bpd_mm"]))
        row["ga_hc_weeks"] = float(ga_from_hc_weeks(row["hc_mm"]))
        row.update(best_source_file=b["source_file"], best_frame_index=int(b["frame_index"]),
                   best_confidence=float(b["confidence"]))
        rows.append(row)
    return pd.DataFrame(rows)

"""The terminal table: the per-cine summary as a readable fixed-width table, and the lines that
say, in words, which cines have no measurement and why."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fhbiometry.measure.aggregate import BASIS_REJECTED, MEASURED

NO_MEASUREMENT = "no measurement"


def value_text(summary: pd.DataFrame, name: str, unit_px: bool = True) -> list[str]:
    """``45.2 mm`` (or ``45.2 px`` without spacing) per cine; "-" where there is no value."""
    out = []
    for mm, px in zip(summary[f"{name}_mm"], summary.get(f"{name}_px", summary[f"{name}_mm"])):
        if np.isfinite(mm):
            out.append(f"{mm:.1f} mm")
        elif unit_px and np.isfinite(px):
            out.append(f"{px:.1f} px")
        else:
            out.append("-")
    return out


def weeks(values) -> list[str]:
    return [f"{v:.1f} wk" if np.isfinite(v) else "-" for v in values]


def terminal_table(summary: pd.DataFrame) -> str:
    """The summary as a readable fixed-width table: frames used / frames, the values, and for a
    cine without an accepted frame "no measurement" (a "!" marks values of rejected frames,
    shown only with --measure-rejected)."""
    if summary.empty:
        return "(no frames measured)"
    rejected = summary["basis"] == BASIS_REJECTED
    t = pd.DataFrame({"cine": summary["cine_id"],
                      "frames": [f"{u}/{n}" + ("!" if r else "") for u, n, r in
                                 zip(summary["n_used"], summary["n_frames"], rejected)]})
    t["status"] = np.where(summary["status"] == MEASURED, MEASURED,
                           np.where(rejected, "NOT ACCEPTED (!)", NO_MEASUREMENT))
    t["BPD"], t["OFD"] = value_text(summary, "bpd"), value_text(summary, "ofd")
    t["HC"] = value_text(summary, "hc", unit_px=False)
    t["CI"] = [f"{v:.1f}" if np.isfinite(v) else "-" for v in summary["cephalic_index"]]
    t["GA(BPD)"], t["GA(HC)"] = weeks(summary["ga_bpd_weeks"]), weeks(summary["ga_hc_weeks"])
    t["best"] = [f"#{i} ({c:.2f})" for i, c in zip(summary["best_frame_index"], summary["best_confidence"])]
    return t.to_string(index=False)


def unmeasured_lines(summary: pd.DataFrame) -> list[str]:
    """One sentence per cine without an accepted frame: no measurement, and each frame's checks."""
    lines = []
    for _, row in summary[summary["status"] != MEASURED].iterrows() if len(summary) else []:
        shown = ("its values are the median of REJECTED frames (--measure-rejected)"
                 if row["basis"] == BASIS_REJECTED else "no BPD, OFD, HC or GA is reported")
        lines.append(f"{row['cine_id']}: no accepted frame, {shown}; rejected {row['reason']}")
    return lines

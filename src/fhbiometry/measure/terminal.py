"""The terminal table: the per-cine summary as a readable fixed-width table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fhbiometry.measure.intervals import with_interval


def terminal_table(summary: pd.DataFrame) -> str:
    """The summary as a readable fixed-width table."""
    if summary.empty:
        return "(no frames measured)"
    t = pd.DataFrame({"cine": summary["cine_id"],
                      "frames": [f"{u}/{n}" + ("!" if f else "") for u, n, f in
                                 zip(summary["n_used"], summary["n_frames"], summary["fallback"])]})
    mm = summary["bpd_mm"].notna()
    rows = [r for _, r in summary.iterrows()]
    for name in ("bpd", "ofd"):
        t[f"{name.upper()}"] = [with_interval(r, name, "mm" if m else "px") for r, m in zip(rows, mm)]
    t["HC"] = [with_interval(r, "hc", "mm") if m else "-" for r, m in zip(rows, mm)]
    t["CI"] = summary["cephalic_index"].map("{:.1f}".format)
    t["GA(BPD)"] = summary["ga_bpd_weeks"].map(lambda v: f"{v:.1f} wk" if np.isfinite(v) else "-")
    t["GA(HC)"] = summary["ga_hc_weeks"].map(lambda v: f"{v:.1f} wk" if np.isfinite(v) else "-")
    t["best"] = [f"#{i} ({c:.2f})" for i, c in zip(summary["best_frame_index"], summary["best_confidence"])]
    return t.to_string(index=False)

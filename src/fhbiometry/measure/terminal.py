"""The terminal table: the per-cine summary as a readable fixed-width table."""
from __future__ import annotations

import numpy as np
import pandas as pd


def terminal_table(summary: pd.DataFrame) -> str:
    """The summary as a readable fixed-width table."""
    if summary.empty:
        return "(no frames measured)"
    t = pd.DataFrame({"cine": summary["cine_id"],
                      "frames": [f"{u}/{n}" + ("!" if f else "") for u, n, f in
                                 zip(summary["n_used"], summary["n_frames"], summary["fallback"])]})
    mm = summary["bpd_mm"].notna()
    for name in ("bpd", "ofd"):
        t[f"{name.upper()}"] = np.where(mm, summary[f"{name}_mm"].map("{:.1f} mm".format),
                                        summary[f"{name}_px"].map("{:.1f} px".format))
    t["HC"] = np.where(mm, summary["hc_mm"].map("{:.1f} mm".format), "-")
    t["CI"] = summary["cephalic_index"].map("{:.1f}".format)
    t["GA(BPD)"] = summary["ga_bpd_weeks"].map(lambda v: f"{v:.1f} wk" if np.isfinite(v) else "-")
    t["GA(HC)"] = summary["ga_hc_weeks"].map(lambda v: f"{v:.1f} wk" if np.isfinite(v) else "-")
    t["best"] = [f"#{i} ({c:.2f})" for i, c in zip(summary["best_frame_index"], summary["best_confidence"])]
    return t.to_string(index=False)

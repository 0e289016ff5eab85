"""How the landmark table's diameters compare with the ellipse annotation's axes, frame by frame.

Reads the QC table (stage ``qc`` with ``qc.reference: ellipse``, so it has the ``csv_*`` and
``ref_*`` columns) and prints, in mm, the CSV's shorter pair minus the ellipse's minor axis (BPD)
and the CSV's longer pair minus the major axis (OFD): on every row, and on the rows where both
differences are within ``--tolerance``. Pairs are taken by length, whatever the columns are
called, so the naming fault of a table does not enter. A systematic offset on the agreeing rows
is a difference of measurement convention, not noise.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

SUMMARY = "compare CSV diameters with the ellipse axes"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry label-agreement                          # data/qc/labels.csv of this workspace
  fhbiometry label-agreement path/to/labels.csv --tolerance 3
"""


def diameters(table: pd.DataFrame, prefix: str, pair: str) -> np.ndarray:
    dx = table[f"{prefix}{pair}_1_x"] - table[f"{prefix}{pair}_2_x"]
    dy = table[f"{prefix}{pair}_1_y"] - table[f"{prefix}{pair}_2_y"]
    return np.hypot(dx, dy).to_numpy(np.float64) * table["spacing_mm"].to_numpy(np.float64)


def differences(table: pd.DataFrame) -> pd.DataFrame:
    """Per row: CSV minus ellipse, for the BPD (shorter pair) and the OFD (longer pair), in mm."""
    needed = [f"{p}{a}_{i}_{c}" for p in ("csv_", "ref_") for a in ("ofd", "bpd") for i in (1, 2) for c in "xy"]
    missing = sorted(set(needed + ["spacing_mm"]) - set(table.columns))
    if missing:
        raise ValueError(f"the QC table lacks {missing[:4]}...: run the qc stage with qc.reference: ellipse "
                         "and a landmark table (data.landmarks_csv)")
    a, b = diameters(table, "csv_", "ofd"), diameters(table, "csv_", "bpd")
    return pd.DataFrame({"frame_id": table["frame_id"],
                         "bpd": np.fmin(a, b) - diameters(table, "ref_", "bpd"),
                         "ofd": np.fmax(a, b) - diameters(table, "ref_", "ofd")}).dropna()


def summary(diff: pd.DataFrame, tolerance_mm: float) -> dict:
    agree = (diff["bpd"].abs() <= tolerance_mm) & (diff["ofd"].abs() <= tolerance_mm)
    out = {}
    for name, rows in (("all rows", diff), (f"rows within {tolerance_mm:g} mm", diff[agree])):
        out[name] = {"n": int(len(rows)),
                     **{f"{d}_{s}_mm": float(getattr(rows[d], s)()) for d in ("bpd", "ofd")
                        for s in ("median", "mean")}}
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", nargs="?", default="data/qc/labels.csv", help="the QC table (stage qc)")
    parser.add_argument("--tolerance", type=float, default=3.0, help="mm, on both diameters")


def run(args: argparse.Namespace) -> int:
    table = pd.read_csv(args.labels, dtype={"frame_id": str, "subject_id": str})
    for name, s in summary(differences(table), args.tolerance).items():
        print(f"{name:>20}: n={s['n']:4d}  CSV minus ellipse: BPD median {s['bpd_median_mm']:+.2f} mm "
              f"(mean {s['bpd_mean_mm']:+.2f}), OFD median {s['ofd_median_mm']:+.2f} mm (mean {s['ofd_mean_mm']:+.2f})")
    return 0

"""Average several models' predictions of the same test frames: an ensemble, as a predictions table.

Reads two or more predictions tables (``results/<model>/predictions.csv`` of the evaluate stage,
or ``<out>/<row>/predictions/<model>.csv`` of a ladder: e.g. one model trained with three seeds)
that hold the same evaluated frames with the same true points, and writes one table of the same
columns whose predicted points are the mean of the members' (each diameter's two ends matched to
the first member's ends, so a member that names them the other way round cannot cancel a
diameter out), with ``pred_bpd_mm`` / ``pred_ofd_mm`` and the error columns recomputed. Compare
it with one member through ``fhbiometry paired-compare`` (paired intervals over test subjects).
The cost of an ensemble of N members is N forward passes per frame (N times the member's CPU
ms/frame in ``metrics/eval/<model>.json``, ``timing``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.metrics.errors import diameter_lengths_mm, radial_errors

SUMMARY = "several models' predictions averaged"
EXAMPLES = """\
Examples:
  fhbiometry ensemble docs/ablation/bf16/float32-seed{42,1,2}/predictions/heatmap.csv --out ensemble.csv
  fhbiometry paired-compare docs/ablation/bf16/float32-seed42/predictions/heatmap.csv ensemble.csv
"""
KEYS = ["frame_id", "subject_id", "spacing_mm"]


def read(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"subject_id": str, "frame_id": str})
    table = table[table["evaluated"].astype(bool)].sort_values("frame_id", kind="stable").reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{path}: no evaluated frame")
    return table


def points(table: pd.DataFrame, prefix: str) -> np.ndarray:
    return table[[f"{prefix}_{c}" for c in COORD_COLUMNS]].to_numpy(np.float64).reshape(-1, 4, 2)


def matched(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``pred`` with each diameter's two ends swapped where that brings them closer to ``ref``'s."""
    out = pred.copy()
    for a, b in ((0, 1), (2, 3)):
        kept = np.linalg.norm(pred[:, a] - ref[:, a], axis=1) + np.linalg.norm(pred[:, b] - ref[:, b], axis=1)
        swapped = np.linalg.norm(pred[:, a] - ref[:, b], axis=1) + np.linalg.norm(pred[:, b] - ref[:, a], axis=1)
        flip = swapped < kept
        out[flip, a], out[flip, b] = pred[flip, b], pred[flip, a]
    return out


def check_same_frames(tables: list[pd.DataFrame], paths: list[Path]) -> None:
    first = tables[0]
    for table, path in zip(tables[1:], paths[1:]):
        if list(table["frame_id"]) != list(first["frame_id"]):
            raise ValueError(f"{path}: its evaluated frames differ from {paths[0]}'s: an ensemble averages "
                             "predictions of the same frames (same split, same QC)")
        if not np.allclose(points(table, "true"), points(first, "true"), atol=1e-3, equal_nan=True):
            raise ValueError(f"{path}: its true points differ from {paths[0]}'s (another label source?)")


def ensemble(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The members' mean prediction per frame, in a table of the first member's columns."""
    ref = points(tables[0], "pred")
    mean = np.mean([matched(points(t, "pred"), ref) for t in tables], axis=0)
    out = tables[0].copy()
    out[[f"pred_{c}" for c in COORD_COLUMNS]] = mean.reshape(len(out), 8)
    true, spacing = points(out, "true"), out["spacing_mm"].to_numpy(np.float64)
    per_point = radial_errors(mean, true) * spacing[:, None]
    for j, name in enumerate(("ofd_1", "ofd_2", "bpd_1", "bpd_2")):
        if f"err_{name}_mm" in out:
            out[f"err_{name}_mm"] = per_point[:, j]
    if "mre_mm" in out:
        out["mre_mm"] = per_point.mean(axis=1)
    lengths = diameter_lengths_mm(mean, spacing)      # (N, 2): OFD, BPD
    for j, name in enumerate(("ofd", "bpd")):
        if f"pred_{name}_mm" in out:
            out[f"pred_{name}_mm"] = lengths[:, j]
            out[f"err_{name}_mm"] = lengths[:, j] - out[f"true_{name}_mm"]
    return out.drop(columns=["confidence"], errors="ignore")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tables", nargs="+", type=Path, help="two or more predictions tables of the same frames")
    parser.add_argument("--out", type=Path, required=True, help="the ensemble's predictions table (CSV)")


def run(args) -> int:
    if len(args.tables) < 2:
        print("fhbiometry ensemble: give two or more predictions tables", file=sys.stderr)
        return 2
    try:
        tables = [read(p) for p in args.tables]
        check_same_frames(tables, args.tables)
    except (OSError, ValueError, KeyError) as err:
        print(f"fhbiometry ensemble: {err}", file=sys.stderr)
        return 2
    out = ensemble(tables)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False, float_format="%.4f")
    print(f"ensemble of {len(tables)} tables, {len(out)} frames -> {args.out}")
    return 0

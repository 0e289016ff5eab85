"""Compare two evaluations of the same test frames, figure by figure, with paired intervals.

Reads two predictions tables (``results/<model>/predictions.csv`` of the evaluate stage, or
``<out>/<row>/predictions/<model>.csv`` of a ladder): BEFORE and AFTER, e.g. the heatmap model
and the contour model of one split, or one model before and after a change. Both must hold the
same evaluated frames (``frame_id``). For each figure (BPD / OFD mean absolute error and 95th
percentile, the share of frames with a diameter off by more than 4 mm, the worst-diameter error
in original pixels, the share off by more than 5 % of a diameter, and with ``--params`` the HC
difference against the data set's own HC values) it prints BEFORE and AFTER with 95 % intervals
from resampling the test subjects, and the change AFTER - BEFORE with a paired interval (the same
subjects drawn for both: ``metrics.bootstrap.paired_bootstrap``). An interval of the change that
excludes 0 is a change on these frames; the training seed's own noise is not in it (compare it
with a seed spread). ``--out`` writes every figure as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fhbiometry.config.params import ParamError, load_params
from fhbiometry.metrics.bootstrap import HEADLINE, paired_bootstrap, subject_bootstrap, table_figures
from fhbiometry.tools.accuracy_report import reference_hc

SUMMARY = "two evaluations compared, paired intervals"
EXAMPLES = """\
Examples:
  fhbiometry paired-compare results/heatmap/predictions.csv results/contour/predictions.csv
  fhbiometry paired-compare ../a/results/heatmap/predictions.csv results/contour/predictions.csv \\
      --params params.yaml --out compare.json      # with HC against the data set's own values
"""
FIGURES = {
    **{k: HEADLINE[k] for k in ("bpd_mae_mm", "ofd_mae_mm", "bpd_p95_mm", "ofd_p95_mm", "large_share",
                                "hc_ref_mae_mm")},
    "worst_px_mean": lambda f, i: float(np.mean(f["worst_px"][i])),
    "worst_px_median": lambda f, i: float(np.median(f["worst_px"][i])),
    "over_5pct_share": lambda f, i: float(np.mean(f["over_limit"][i])),
}
LABELS = {"bpd_mae_mm": "BPD MAE mm", "ofd_mae_mm": "OFD MAE mm", "bpd_p95_mm": "BPD p95 mm",
          "ofd_p95_mm": "OFD p95 mm", "large_share": "frames > 4 mm", "hc_ref_mae_mm": "HC MAE vs data set mm",
          "worst_px_mean": "worst-diameter error, original px, mean",
          "worst_px_median": "worst-diameter error, original px, median",
          "over_5pct_share": "frames > 5 % of a diameter"}


def read_table(path: Path, hc_ref: dict) -> dict:
    table = pd.read_csv(path, dtype={"subject_id": str, "frame_id": str})
    table = table[table["evaluated"].astype(bool)].sort_values("frame_id", kind="stable")
    return table_figures(table, hc_ref or None)


def compare(before: dict, after: dict, n_boot: int, has_hc: bool) -> dict:
    keys = [k for k in FIGURES if has_hc or k != "hc_ref_mae_mm"]
    figures = {k: FIGURES[k] for k in keys}
    return {"frames": int(len(before["frame"])), "subjects": int(len(set(before["subject"]))),
            "before": subject_bootstrap(before, figures, n_boot=n_boot),
            "after": subject_bootstrap(after, figures, n_boot=n_boot),
            "change": paired_bootstrap(before, after, keys, n_boot=n_boot, figures=FIGURES)}


def cell(fig: dict | None, share: bool, signed: bool = False) -> str:
    if fig is None:
        return "n/a"
    k, d, s = (100.0, 1, "+" if signed else "") if share else (1.0, 2, "+" if signed else "")
    return f"{k * fig['value']:{s}.{d}f} [{k * fig['low']:{s}.{d}f}, {k * fig['high']:{s}.{d}f}]"


def table_text(result: dict, names: tuple[str, str]) -> str:
    lines = [f"{result['frames']} test frames of {result['subjects']} subjects; 95 % intervals over subjects; "
             f"shares in %", "", f"| figure | {names[0]} | {names[1]} | change (paired) |", "| --- | --- | --- | --- |"]
    for key in result["change"]:
        share = key.endswith("share")
        lines.append(f"| {LABELS[key]} | {cell(result['before'][key], share)} | {cell(result['after'][key], share)} "
                     f"| {cell(result['change'][key], share, signed=True)} |")
    return "\n".join(lines)


def column_name(path: Path) -> str:
    """results/<model>/predictions.csv -> <model>; <row>/predictions/<model>.csv -> <row>/<model>."""
    if path.parent.name == "predictions":
        return f"{path.parent.parent.name}/{path.stem}"
    return path.parent.name or path.stem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("before", type=Path, help="predictions table A (e.g. results/heatmap/predictions.csv)")
    parser.add_argument("after", type=Path, help="predictions table B, the same frames")
    parser.add_argument("--params", type=Path, help="params file naming the data set's HC table (adds HC)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")


def run(args: argparse.Namespace) -> int:
    try:
        hc_ref = reference_hc(load_params(args.params)) if args.params else {}
        before, after = read_table(args.before, hc_ref), read_table(args.after, hc_ref)
    except (ParamError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if list(before["frame"]) != list(after["frame"]):
        only = sorted(set(before["frame"]) ^ set(after["frame"]))
        print(f"error: {args.before} and {args.after} evaluate different frames ({len(only)} in one only, "
              f"e.g. {only[:3]}): compare two evaluations of one split", file=sys.stderr)
        return 2
    result = compare(before, after, args.n_boot, bool(hc_ref))
    print(table_text(result, (column_name(args.before), column_name(args.after))))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"paired-compare: wrote {args.out}")
    return 0

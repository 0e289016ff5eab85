"""Tables of the calibrated intervals the evaluate stage measured (section ``intervals`` of
metrics/eval/<model>.json; docs/predict.md, "Intervals").

``candidates`` (default): every difficulty score x scale, on the validation frames by two-fold
cross-validation over subjects (the figures the default is chosen on) and on the test frames.
``goals``: the chosen method's figures against the goals of issue 19 (coverage per diameter and
per head-size tertile, median half-width, AUC, rejection, per cine).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

SUMMARY = "tables of the calibrated intervals"
EXAMPLES = """\
Examples:
  fhbiometry intervals-table                                  # candidates of every model in metrics/eval
  fhbiometry intervals-table --table goals --models heatmap
  fhbiometry intervals-table --metrics /tmp/run/metrics/eval --table goals
"""
TARGETS = ("bpd", "ofd", "hc")


def _f(v, fmt="{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def figures_cells(f: dict) -> list[str]:
    """coverage b/o/h, median half-width b/o/h, AUC of one ``core_figures`` block."""
    cov = "/".join(_f(f["coverage"][t]) for t in TARGETS)
    hw = "/".join(_f(f["median_half_width_mm"][t], "{:.1f}") for t in TARGETS)
    return [cov, hw, _f(f["auc_error_over_2mm"])]


def candidates_table(name: str, section: dict) -> list[str]:
    rows = [f"| {name} | candidate | val coverage BPD/OFD/HC | val median half-width mm | val AUC | "
            "test coverage | test median half-width mm | test AUC |", "| --- " * 8 + "|"]
    chosen = f"{section['method']['score']}_{section['method']['scale']}"
    for key, c in section["candidates"].items():
        mark = " (chosen)" if key == chosen else ""
        rows.append("| " + " | ".join([name, key + mark, *figures_cells(c["val_cv"]), *figures_cells(c["test"])]) + " |")
    return rows


def goals_rows(name: str, s: dict) -> list[str]:
    """The issue's goals with this model's figures."""
    tertiles = s["bins"]["head_size"]
    worst = {t: min((b[t] for b in tertiles.values() if b[t] is not None), default=None) for t in TARGETS}
    rej, cine = s["rejection"], s["per_cine"]
    cov = "/".join(_f(s["coverage"][t]) for t in TARGETS)
    return [f"| {name} | coverage BPD/OFD/HC (goal 0.87-0.93) | {cov} |",
            f"| {name} | lowest head-size tertile coverage BPD/OFD/HC (goal >= 0.85) | "
            + "/".join(_f(worst[t]) for t in TARGETS) + " |",
            f"| {name} | median half-width BPD/OFD/HC mm | "
            + "/".join(_f(s["median_half_width_mm"][t], "{:.2f}") for t in TARGETS) + " |",
            f"| {name} | AUC of the half-width for error > 2 mm (goal >= 0.80) | {_f(s['auc_error_over_2mm'])} |",
            f"| {name} | BPD half-width > {rej['bpd_half_width_over_mm']:g} mm rejected: frames kept (goal >= 0.90); "
            f"of {rej['n_large']} frames > 4 mm removed (goal >= 0.80) | {_f(rej['kept_share'])}; "
            f"{_f(rej['large_removed_share'])} |",
            f"| {name} | per cine ({cine['n_cines']}): coverage BPD/OFD/HC; median half-width mm | "
            + "/".join(_f(cine["coverage"][t]) for t in TARGETS) + "; "
            + "/".join(_f(cine["median_half_width_mm"][t], "{:.1f}") for t in TARGETS) + " |"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", default="metrics/eval", help="folder of <model>.json")
    parser.add_argument("--models", nargs="*", default=None, help="models (default: every file)")
    parser.add_argument("--table", choices=("candidates", "goals"), default="candidates")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.metrics)
    names = args.models or sorted(p.stem for p in folder.glob("*.json"))
    rows = ["| model | figure | value |", "| --- | --- | --- |"] if args.table == "goals" else []
    for name in names:
        path = folder / f"{name}.json"
        section = json.loads(path.read_text()).get("intervals") if path.is_file() else None
        if not section or not section.get("calibration"):
            print(f"{path}: no calibrated intervals (run `dvc repro evaluate@{name}` with a validation split)")
            continue
        rows += candidates_table(name, section) if args.table == "candidates" else goals_rows(name, section)
    print("\n".join(rows))
    return 0

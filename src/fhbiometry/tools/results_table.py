"""Print the results table of the README and docs/hc18.md from a folder of eval metrics.

Reads <folder>/<model>.json for every model of params.yaml (section ``models``, in order;
missing files are skipped). ``--section`` picks the reference the errors are measured against:
the headline (the labels the model learned, default) or a ``vs_<name>`` section of the
evaluate stage.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from fhbiometry.config.schema import read_yaml
from fhbiometry.metrics.table import value
from fhbiometry.tools.common import model_names

SUMMARY = "print the results table from eval metrics"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry results-table                              # this workspace: metrics/eval
  fhbiometry results-table docs/ablation/skips/eval     # any folder of eval metrics
  fhbiometry results-table docs/ablation/skips/eval --section vs_csv_clean
"""


def row(name: str, m: dict, section: str) -> str:
    """One model's line; every figure read through ``metrics.table`` (its columns declared there)."""
    def v(column):
        return value(m, column, section)

    ms = v("cpu_ms_per_frame")
    return (f"| {name} | {v('n_params') / 1e6:.1f} M | {v('n')} | {v('mre_mm'):.2f} ({v('mre_mm_median'):.2f}) | "
            + " | ".join(f"{v(d + '_mae_mm'):.2f} / {v(d + '_median_mm'):.2f} / {v(d + '_p95_mm'):.2f} / "
                         f"{v(d + '_max_mm'):.1f}" for d in ("bpd", "ofd"))
            + f" | {100 * v('within_2mm'):.0f}% / {100 * v('within_4mm'):.0f}% | "
            f"{v('floor_bpd_mae_mm'):.2f} / {v('floor_ofd_mae_mm'):.2f} | "
            f"{'' if ms is None else f'{ms:.0f}'} |")


def table(folder, models, section: str = "headline") -> str:
    folder = Path(folder)
    lines = ["| model | params | frames | MRE mm (median) | BPD MAE / median / p95 / max mm | "
             "OFD MAE / median / p95 / max mm | within 2 / 4 mm | floor BPD / OFD MAE mm | CPU ms/frame |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in models:
        path = folder / f"{name}.json"
        if path.exists():
            lines.append(row(name, json.loads(path.read_text()), section))
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", default="metrics/eval", help="folder of <model>.json files")
    parser.add_argument("--section", default="headline", help="headline or vs_ellipse, vs_csv, vs_csv_clean")
    parser.add_argument("--params", default="params.yaml", help="params file naming the models")


def run(args: argparse.Namespace) -> int:
    print(table(args.folder, model_names(read_yaml(args.params)), args.section), end="")
    return 0

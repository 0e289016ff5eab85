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
from fhbiometry.tools.common import model_names

SUMMARY = "print the results table from eval metrics"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry results-table                              # this workspace: metrics/eval
  fhbiometry results-table docs/ablation/skips/eval     # any folder of eval metrics
  fhbiometry results-table docs/ablation/skips/eval --section vs_csv_clean
"""


def row(name: str, m: dict, section: str) -> str:
    s = m if section == "headline" else m[section]
    sr = s["success_rate"]
    d = {k: s[k] for k in ("bpd", "ofd")}
    floor = s["floor"]
    ms = m.get("timing", {}).get("cpu_ms_per_frame")
    return (f"| {name} | {m['n_params'] / 1e6:.1f} M | {s['n']} | {s['mre_mm']:.2f} ({s['mre_mm_median']:.2f}) | "
            + " | ".join(f"{d[k]['mae_mm']:.2f} / {d[k]['median_mm']:.2f} / {d[k]['p95_mm']:.2f} / {d[k]['max_mm']:.1f}"
                         for k in ("bpd", "ofd"))
            + f" | {100 * sr['within_2mm']:.0f}% / {100 * sr['within_4mm']:.0f}% | "
            f"{floor['bpd']['mae_mm']:.2f} / {floor['ofd']['mae_mm']:.2f} | "
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

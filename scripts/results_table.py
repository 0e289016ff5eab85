"""Print the results table of the README and docs/hc18.md from metrics/eval/*.json.

    python scripts/results_table.py                              # this workspace: metrics/eval
    python scripts/results_table.py docs/ablation/skips/eval     # any folder of eval metrics
    python scripts/results_table.py docs/ablation/skips/eval --section vs_csv_clean

``--section`` picks the reference the errors are measured against: the headline (the labels
the model learned, default) or a ``vs_<name>`` section of the evaluate stage.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MODELS = ("alexnet", "resnet18", "resnet34", "heatmap")


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


def table(folder, section: str = "headline") -> str:
    folder = Path(folder)
    lines = ["| model | params | frames | MRE mm (median) | BPD MAE / median / p95 / max mm | "
             "OFD MAE / median / p95 / max mm | within 2 / 4 mm | floor BPD / OFD MAE mm | CPU ms/frame |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in MODELS:
        path = folder / f"{name}.json"
        if path.exists():
            lines.append(row(name, json.loads(path.read_text()), section))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="metrics/eval")
    parser.add_argument("--section", default="headline", help="headline or vs_ellipse, vs_csv, vs_csv_clean")
    args = parser.parse_args()
    print(table(args.folder, args.section), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

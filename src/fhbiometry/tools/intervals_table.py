"""Tables of the calibrated intervals the evaluate stage measured (section ``intervals`` of
metrics/eval/<model>.json; docs/predict.md, "Intervals").

``candidates`` (default): every difficulty score x scale, on the validation frames by two-fold
cross-validation over subjects (the figures the default is chosen on) and on the test frames.
``goals``: the chosen method's figures against the goals of issue 19 (coverage per diameter and
per head-size tertile, median half-width, AUC, rejection, per cine).
``choice``: the rule the committed ``intervals.score`` / ``scale`` are chosen by, on validation
figures only (``choose``): the candidate whose two-fold cross-validated validation coverage stays
nearest the level on both diameters of every model (its largest deviation), and among those
the highest validation AUC of the model named by ``--rank-by`` (default heatmap).
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
  fhbiometry intervals-table --table choice                   # the rule that picks intervals.score / scale
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


def choose(sections: dict, rank_by: str = "heatmap") -> tuple[str, list[tuple[str, float, float | None]]]:
    """(the chosen candidate, [(candidate, largest |val coverage - level| over the BPD and OFD of
    every model, ``rank_by``'s val AUC)] sorted by the rule) of the models' interval ``sections``."""
    level = next(iter(sections.values()))["level"]
    names = sorted(set.intersection(*(set(s["candidates"]) for s in sections.values())))
    rows = []
    for c in names:
        cov = [s["candidates"][c]["val_cv"]["coverage"][t] for s in sections.values() for t in ("bpd", "ofd")]
        dev = max(abs(v - level) if v is not None else 1.0 for v in cov)
        auc = sections[rank_by]["candidates"][c]["val_cv"]["auc_error_over_2mm"] if rank_by in sections else None
        rows.append((c, round(dev, 6), auc))
    rows.sort(key=lambda r: (r[1], -(r[2] if r[2] is not None else -1.0), r[0]))
    return rows[0][0], rows


def choice_rows(sections: dict, rank_by: str) -> list[str]:
    chosen, rows = choose(sections, rank_by)
    committed = {f"{s['method']['score']}_{s['method']['scale']}" for s in sections.values()}
    out = [f"| candidate | largest val coverage deviation (BPD, OFD; {len(sections)} models) | "
           f"{rank_by} val AUC |", "| --- | --- | --- |"]
    out += [f"| {c}{' (rule)' if c == chosen else ''}{' (committed)' if c in committed else ''} | {d:.2f} | "
            f"{_f(a)} |" for c, d, a in rows]
    return out + [f"rule: {chosen}"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", default="metrics/eval", help="folder of <model>.json")
    parser.add_argument("--models", nargs="*", default=None, help="models (default: every file)")
    parser.add_argument("--table", choices=("candidates", "goals", "choice"), default="candidates")
    parser.add_argument("--rank-by", default="heatmap", help="the model whose validation AUC breaks ties (choice)")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.metrics)
    names = args.models or sorted(p.stem for p in folder.glob("*.json"))
    rows = ["| model | figure | value |", "| --- | --- | --- |"] if args.table == "goals" else []
    sections = {}
    for name in names:
        path = folder / f"{name}.json"
        section = json.loads(path.read_text()).get("intervals") if path.is_file() else None
        if not section or not section.get("calibration"):
            print(f"{path}: no calibrated intervals (run `dvc repro evaluate@{name}` with a validation split)")
            continue
        sections[name] = section
        if args.table != "choice":
            rows += candidates_table(name, section) if args.table == "candidates" else goals_rows(name, section)
    if args.table == "choice" and sections:
        rows = choice_rows(sections, args.rank_by)
    print("\n".join(rows))
    return 0

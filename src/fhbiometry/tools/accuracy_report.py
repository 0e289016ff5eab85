"""Write the accuracy report of an ablation ladder: every row with 95 % intervals, bins, worst frames.

Reads the rows that `fhbiometry ablation <ladder> --out <out>` left in ``<out>/<row>/`` (the test
predictions and eval metrics of each model) and writes ``<out>/report.md``:

* the split (head-size ranges from ``split.json`` where the split is by head size);
* the model named by ``--model`` (default heatmap), row by row: BPD / OFD mean absolute error,
  their 95th percentiles, the share of frames with a diameter off by more than 4 mm, the mean
  absolute difference and bias of HC against the data set's own HC values (the pixel-size
  table's ``data.pixel_size_columns.hc`` column), the normalised error, each with a 95 %
  percentile interval from resampling the test subjects with replacement
  (``metrics.bootstrap.subject_bootstrap``: the frames of a subject come along together), and the
  model's training minutes;
* the change of BPD / OFD / HC error from each row to the next, on the same frames, with a paired
  interval (``metrics.bootstrap.paired_bootstrap``);
* the mean and standard deviation over training seeds, for a row whose reruns with other seeds
  are rows of the ladder (``seed_of: <row>``);
* every model of the first row (the regressors train once, there): the same figures;
* the bins of the last row that is not a seed rerun (head-size tertiles, BPD/OFD ratio, heads cut by the image edge),
  from its ``eval/<model>.json`` -> ``bins``;
* the worst frames of that row (largest diameter error), each drawn at its original
  resolution with the labelled (green) and predicted (red) axes to ``<out>/worst/<frame>.jpg``.

Run from the repository root, where the data set of the ladder's base configuration is.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fhbiometry.core.choices import SPLITS
from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.metrics.bootstrap import paired_bootstrap, subject_bootstrap, table_figures
from fhbiometry.metrics.errors import worst_diameter_error
from fhbiometry.readers.media import STILL_EXTS, read_reference_hc, read_still
from fhbiometry.tools.ablation import load_ladder, missing_rows_message, row_params
from fhbiometry.tools.common import model_names

SUMMARY = "ladder report with intervals, bins, worst frames"
EXAMPLES = """\
Examples:
  fhbiometry accuracy-report configs/hc18_accuracy.yaml --out docs/accuracy/headsize
  fhbiometry accuracy-report configs/hc18_accuracy_random.yaml --out docs/accuracy/random --worst 6
"""
COLUMNS = [("bpd_mae_mm", "BPD MAE mm", 2), ("ofd_mae_mm", "OFD MAE mm", 2), ("bpd_p95_mm", "BPD p95 mm", 2),
           ("ofd_p95_mm", "OFD p95 mm", 2), ("large_share", "> 4 mm frames %", 1),
           ("hc_ref_mae_mm", "HC MAE vs data set mm", 2), ("hc_ref_bias_mm", "HC bias mm", 2),
           ("normalised_error", "normalised error", 3)]
PAIRED = ("bpd_mae_mm", "ofd_mae_mm", "hc_ref_mae_mm")


def reference_hc(params: dict) -> dict[str, float]:
    """{file stem: the data set's own HC (mm)} from the pixel-size table, {} when it names none."""
    data = params["data"]
    if not data.get("pixel_size_csv"):
        return {}
    table = read_reference_hc(Path(data["raw_dir"]) / data["pixel_size_csv"], data.get("pixel_size_columns", {}))
    return {Path(k).stem: v for k, v in table.items()}


def figure_cell(fig: dict | None, digits: int, percent: bool = False, signed: bool = False) -> str:
    if fig is None:
        return "n/a"
    k = 100.0 if percent else 1.0
    s = "+" if signed else ""
    return f"{k * fig['value']:{s}.{digits}f} [{k * fig['low']:{s}.{digits}f}, {k * fig['high']:{s}.{digits}f}]"


def figures_cells(figs: dict) -> list[str]:
    return [figure_cell(figs[key], d, key == "large_share") for key, _, d in COLUMNS]


def train_minutes(folder: Path, model: str) -> str:
    path = folder / "train" / f"{model}.json"
    seconds = json.loads(path.read_text()).get("train_seconds") if path.exists() else None
    return "n/a" if seconds is None else f"{seconds / 60:.0f}"


def row_figures(folder: Path, model: str, hc_ref: dict, n_boot: int) -> tuple[dict, dict]:
    """(figures with subject-bootstrap intervals, per-frame figures) of one row's model."""
    f = table_figures(pd.read_csv(folder / "predictions" / f"{model}.csv", dtype={"subject_id": str,
                                                                                  "frame_id": str}), hc_ref)
    return subject_bootstrap(f, n_boot=n_boot), f


def seed_lines(ladder: dict, runs: dict) -> list[str]:
    """Mean and sample standard deviation over the training seeds of each row that has reruns
    (rows with ``seed_of: <row>``), where the row and at least one rerun ran."""
    out = []
    for row in ladder["rows"]:
        reruns = [r["name"] for r in ladder["rows"] if r.get("seed_of") == row["name"]]
        names = [n for n in [row["name"], *reruns] if n in runs]
        if row.get("seed_of") or len(names) < 2:
            continue
        if not out:
            out = ["", "Spread over training seeds (the same configuration trained again with another "
                       "seed; mean +- sample standard deviation of the runs' figures):", "",
                   "| row | runs | " + " | ".join(c[1] for c in COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 2)]
        cells = []
        for key, _, digits in COLUMNS:
            k = 100.0 if key == "large_share" else 1.0
            values = [k * runs[n][key]["value"] for n in names if runs[n][key] is not None]
            cells.append("n/a" if len(values) < 2 else
                         f"{np.mean(values):.{digits}f} +- {np.std(values, ddof=1):.{digits}f}")
        out.append(f"| {row['name']} | {len(names)} ({', '.join(names)}) | " + " | ".join(cells) + " |")
    return out


def split_lines(folder: Path) -> list[str]:
    split = json.loads((folder / "split.json").read_text())
    hs = split.get("head_size") or {}
    if not hs or "test" not in hs:
        return [f"Split: {split.get('split_method', 'hash')}, test subjects by a stable hash.", ""]
    lines = ([f"Split by head size: subjects whose largest HC is above {hs['threshold_hc_mm']:.1f} mm are tested."]
             if hs.get("threshold_hc_mm") is not None else ["Split: test subjects by a stable hash of the subject id."])
    lines += ["", "| part | frames | HC min / median / max mm |", "|---|---|---|"]
    for part in SPLITS:
        p = hs[part]
        lines.append(f"| {part} | {p['frames']} | {p['min']:.1f} / {p['median']:.1f} / {p['max']:.1f} |")
    ov = hs.get("overlap", {})
    if ov and hs.get("threshold_hc_mm") is not None:
        lines += ["", f"{ov['test_frames_not_above_train_val_max']} test frames are not above the largest "
                      f"training or validation head (they overlap its top {ov['range_mm']:.1f} mm)."]
    return lines + [""]


def bin_label(group: str, name: str, s: dict) -> str:
    """``group: name`` with the bin's HC or pixel-size range where it has one."""
    label = f"{group}: {name}"
    for key, unit, digits in (("hc_range_mm", "HC", 0), ("spacing_range_mm", "pixel", 3)):
        rng = s.get(key)
        if rng:
            label += (f" ({unit} <= {rng[1]:.{digits}f} mm)" if rng[0] is None else
                      f" ({unit} > {rng[0]:.{digits}f} mm)" if rng[1] is None else
                      f" ({unit} {rng[0]:.{digits}f} to {rng[1]:.{digits}f} mm)")
    return label


def bins_lines(metrics: dict) -> list[str]:
    """The bins of one eval file: mm figures, and (evaluations since issue 20) the worst-diameter
    error in original pixels and the share of frames off by more than 5 % of a diameter."""
    lines = ["| bin | frames | BPD MAE mm | OFD MAE mm | HC MAE vs data set mm | normalised error | > 4 mm frames "
             "| worst-diameter px mean / median | > 5 % frames |",
             "|---|---|---|---|---|---|---|---|---|"]

    def fmt(v, d=2):
        return "n/a" if v is None else f"{v:.{d}f}"

    for group, entries in metrics["bins"].items():
        for name, s in entries.items():
            share = s.get("over_limit_share")
            lines.append(f"| {bin_label(group, name, s)} | {s['n']} | {fmt(s['bpd_mae_mm'])} | {fmt(s['ofd_mae_mm'])} | "
                         f"{fmt(s['hc_ref_mae_mm'])} | {fmt(s['normalised_error'], 3)} | {s['large_errors']} | "
                         f"{fmt(s.get('worst_px_mean'), 1)} / {fmt(s.get('worst_px_median'), 1)} | "
                         f"{'n/a' if share is None else f'{100 * share:.1f} %'} |")
    return lines


def worst_frames(f: dict, k: int) -> list[int]:
    """Indices of the ``k`` frames with the largest diameter error, worst first."""
    worst = worst_diameter_error(np.column_stack([f["ofd_err"], f["bpd_err"]]))
    return list(np.argsort(-worst, kind="stable")[:k])


def draw_worst(f: dict, i: int, table: pd.DataFrame, raw_dir: Path, dst: Path) -> bool:
    """The frame at its original resolution, labelled (green) and predicted (red) axes; False when
    the frame's file is not a still image under ``raw_dir``."""
    from fhbiometry.reporting.viz import PRED_STYLE, TRUE_STYLE, draw_landmarks, plt  # lazy: reporting.viz imports matplotlib; kept out of `fhbiometry --help`

    frame = f["frame"][i]
    paths = [p for p in raw_dir.rglob(f"{frame}.*") if p.suffix.lower() in STILL_EXTS]
    if not paths:
        return False
    image = np.asarray(read_still(paths[0]))
    image = image[0] if image.ndim == 3 and image.shape[0] == 1 else image
    row = table[table["frame_id"].astype(str) == frame].iloc[0]
    true = row[[f"true_{c}" for c in COORD_COLUMNS]].to_numpy(np.float64).reshape(4, 2)
    pred = row[[f"pred_{c}" for c in COORD_COLUMNS]].to_numpy(np.float64).reshape(4, 2)
    h, w = image.shape[:2]
    fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    draw_landmarks(ax, true, **TRUE_STYLE)
    draw_landmarks(ax, pred, **PRED_STYLE)
    ax.text(8, 20, f"{frame}: BPD {f['bpd_err'][i]:+.1f} mm, OFD {f['ofd_err'][i]:+.1f} mm "
                   f"(green labels, red predicted)", color="yellow", fontsize=10)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dst, dpi=100, pil_kwargs={"quality": 85})
    plt.close(fig)
    return True


def ladder_lines(ran: list, out_dir: Path, model: str, hc_ref: dict, n_boot: int) -> tuple[list[str], dict]:
    """The row-by-row table of ``model`` and the paired changes between rows; also returns the
    figures of every row by name (for the seed spread)."""
    head = "| # | change | " + " | ".join(c[1] for c in COLUMNS) + " | train min |"
    lines = [f"## {model}, row by row (each row adds its change to the rows above)", "", head,
             "|" + "---|" * (len(COLUMNS) + 3)]
    changes, previous, runs = [], None, {}
    for i, r in ran:
        figs, f = row_figures(out_dir / r["name"], model, hc_ref, n_boot)
        lines.append(f"| {i + 1} | {r['label']} | " + " | ".join(figures_cells(figs))
                     + f" | {train_minutes(out_dir / r['name'], model)} |")
        runs[r["name"]] = figs
        if r.get("seed_of"):                  # a rerun with another seed: no lever to compare
            continue
        if previous is not None:
            d = paired_bootstrap(previous[1], f, PAIRED, n_boot=n_boot)
            changes.append(f"| {previous[0] + 1} -> {i + 1} | " + " | ".join(figure_cell(d[k], 2, signed=True)
                                                                           for k in PAIRED) + " |")
        previous = (i, f)
    if changes:
        lines += ["", "Change against the row above, on the same test frames (paired: both rows resampled "
                      "with the same subjects, so an interval that excludes 0 is a change on these frames; "
                      "training-seed noise is not in it):", "",
                  "| rows | " + " | ".join(f"change of {dict((c[0], c[1]) for c in COLUMNS)[k]}" for k in PAIRED)
                  + " |", "|" + "---|" * (len(PAIRED) + 1)] + changes
    return lines, runs


def every_model_lines(first: Path, label: str, names, hc_ref: dict, n_boot: int) -> list[str]:
    """Every model of the first row that has predictions: the same figures."""
    lines = ["", f"## Every model, {label}", "",
             "| model | " + " | ".join(c[1] for c in COLUMNS) + " | train min |", "|" + "---|" * (len(COLUMNS) + 2)]
    for name in names:
        if (first / "predictions" / f"{name}.csv").exists():
            figs, _ = row_figures(first, name, hc_ref, n_boot)
            lines.append(f"| {name} | " + " | ".join(figures_cells(figs)) + f" | {train_minutes(first, name)} |")
    return lines


def worst_lines(folder: Path, label: str, model: str, hc_ref: dict, n_boot: int, n_worst: int, raw_dir: Path,
                out_dir: Path) -> list[str]:
    """The ``n_worst`` worst frames of one row, each drawn to ``out_dir/worst/``."""
    _, f = row_figures(folder, model, hc_ref, n_boot)
    table = pd.read_csv(folder / "predictions" / f"{model}.csv", dtype={"subject_id": str, "frame_id": str})
    lines = ["", f"## {model}: the {n_worst} worst frames, {label}", "",
             "Each drawn at its original resolution, labelled axes green, predicted red, to `worst/` beside "
             "this report (not committed: they are the data set's images; rerun the command above where "
             "the data set is).", "",
             "| frame | BPD error mm | OFD error mm | HC error vs data set mm | label HC mm | BPD/OFD | overlay |",
             "|---|---|---|---|---|---|---|"]
    shutil.rmtree(out_dir / "worst", ignore_errors=True)       # only this report's frames
    for i in worst_frames(f, n_worst):
        frame = f["frame"][i]
        drawn = draw_worst(f, i, table, raw_dir, out_dir / "worst" / f"{frame}.jpg")
        true_row = table[table["frame_id"] == frame].iloc[0]
        ratio = true_row["true_bpd_mm"] / true_row["true_ofd_mm"]
        hc_err = f["hc_pred"][i] - f["hc_ref"][i]
        lines.append(f"| {frame} | {f['bpd_err'][i]:+.1f} | {f['ofd_err'][i]:+.1f} | "
                     f"{'n/a' if not np.isfinite(hc_err) else f'{hc_err:+.1f}'} | {f['hc_true'][i]:.0f} | "
                     f"{ratio:.2f} | {f'`worst/{frame}.jpg`' if drawn else 'not a still image'} |")
    return lines


def cited_options(model: str, n_worst: int, n_boot: int) -> str:
    """The options of `fhbiometry accuracy-report` that differ from their defaults, as typed."""
    given = (("--model", model, "heatmap"), ("--worst", n_worst, 6), ("--boot", n_boot, 2000))
    return "".join(f" {flag} {value}" for flag, value, default in given if value != default)


def report(ladder_path: str, out_dir: Path, repo: Path, model: str, n_worst: int, n_boot: int) -> str:
    """The text of report.md (module docstring)."""
    ladder = load_ladder(ladder_path)
    base = yaml.safe_load((repo / "params.yaml").read_text())
    ran = [(i, r) for i, r in enumerate(ladder["rows"]) if (out_dir / r["name"] / "row.json").exists()]
    shown = out_dir.relative_to(repo) if out_dir.is_relative_to(repo) else out_dir
    if not ran:
        raise FileNotFoundError(missing_rows_message(out_dir, f"fhbiometry ablation {ladder_path} --out {shown}"))
    first_params = row_params(base, ladder, ran[0][0], repo)
    hc_ref = reference_hc(first_params)
    lines = [f"# Accuracy report: {ladder_path}", "",
             f"Written by `fhbiometry accuracy-report {ladder_path} --out {shown}"
             f"{cited_options(model, n_worst, n_boot)}` from the rows of `fhbiometry ablation {ladder_path} "
             f"--out {shown}` (their raw outputs, `{shown}/<row>/`, are not in git: that command reruns "
             "them). Figures against "
             "the labels the models learned, on the evaluated test frames; [low, high] is the 95 % "
             f"interval from {n_boot} resamples of the test subjects with replacement.", ""]
    lines += split_lines(out_dir / ran[0][1]["name"])
    rows, runs = ladder_lines(ran, out_dir, model, hc_ref, n_boot)
    lines += rows + seed_lines(ladder, runs)
    lines += every_model_lines(out_dir / ran[0][1]["name"], f"row {ran[0][0] + 1} ({ran[0][1]['name']})",
                               model_names(first_params), hc_ref, n_boot)
    last_i, last = [(i, r) for i, r in ran if not r.get("seed_of")][-1]   # the last configuration
    folder, label = out_dir / last["name"], f"row {last_i + 1} ({last['name']})"
    lines += ["", f"## {model} by bin, {label}", ""]
    lines += bins_lines(json.loads((folder / "eval" / f"{model}.json").read_text()))
    raw_dir = Path(row_params(base, ladder, last_i, repo)["data"]["raw_dir"])
    lines += worst_lines(folder, label, model, hc_ref, n_boot, n_worst, raw_dir, out_dir)
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ladder", help="the ladder file, e.g. configs/hc18_accuracy.yaml")
    parser.add_argument("--out", required=True, help="the ablation's --out folder (rows in it); report.md goes there")
    parser.add_argument("--model", default="heatmap", help="the model of the row-by-row table (default heatmap)")
    parser.add_argument("--worst", type=int, default=6, help="how many worst frames to draw (default 6)")
    parser.add_argument("--boot", type=int, default=2000, help="subject resamples per interval (default 2000)")


def run(args: argparse.Namespace) -> int:
    repo = Path.cwd()
    out_dir = (repo / args.out).resolve()
    try:
        text = report(args.ladder, out_dir, repo.resolve(), args.model, args.worst, args.boot)
    except FileNotFoundError as error:
        print(f"accuracy-report: {error}", file=sys.stderr)
        return 2
    (out_dir / "report.md").write_text(text)
    print(text, end="")
    return 0

"""Comparison plots and the summary table of all models (stage `plots`).

Inputs per model: metrics/eval/<model>.json and results/<model>/predictions.csv (stage
`evaluate`), metrics/train/<model>/plots/metrics/... (DVCLive, stage `train`), and for the
example overlays the letterboxed test images in data/prepared/test.npz. The heatmap figure runs
the heatmap model(s) on a few test frames. Every PNG goes through ``viz.save_figure``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fhbiometry.core.geometry import COORD_COLUMNS, LANDMARKS  # noqa: E402
from fhbiometry.core.letterbox import to_input  # noqa: E402
from fhbiometry.config.paths import Paths  # noqa: E402
from fhbiometry.data.prepare import table_points  # noqa: E402
from fhbiometry.core.store import load_npz, read_json, write_csv  # noqa: E402
from fhbiometry.metrics.table import table_rows  # noqa: E402
from fhbiometry.reporting.viz import PRED_STYLE, TRUE_STYLE, draw_landmarks, save_figure, show_image  # noqa: E402

TRAIN_LOSS_TSV = Path("plots/metrics/train/loss.tsv")
VAL_MRE_TSV = Path("plots/metrics/val/mre_mm.tsv")
CDF_LINES_MM = (2.0, 4.0)
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


# ---- reading --------------------------------------------------------------------------------
def load_results(paths: Paths, names) -> dict:
    """{model: {"metrics": dict, "predictions": DataFrame}} from the evaluate outputs."""
    out = {}
    for name in names:
        mpath, ppath = paths.eval_metrics(name), paths.predictions(name)
        for path in (mpath, ppath):
            if not path.exists():
                raise FileNotFoundError(f"{path} does not exist: run `dvc repro evaluate@{name}`")
        preds = pd.read_csv(ppath, dtype={"frame_id": str, "subject_id": str})
        missing = {"frame_id", "evaluated", "mre_mm", "err_bpd_mm", "err_ofd_mm"} - set(preds.columns)
        if missing:
            raise ValueError(f"{ppath}: missing columns {sorted(missing)}: rerun `dvc repro evaluate@{name}`")
        preds["evaluated"] = preds["evaluated"].astype(str).str.lower().isin(["true", "1"])
        out[name] = {"metrics": read_json(mpath), "predictions": preds}
    return out


def evaluated_rows(preds: pd.DataFrame) -> pd.DataFrame:
    """The rows that count in the metrics (``evaluated``) with a finite MRE."""
    keep = preds["evaluated"].to_numpy(bool) & np.isfinite(preds["mre_mm"].to_numpy(np.float64))
    return preds[keep]


def read_dvclive_tsv(path) -> pd.DataFrame:
    """A DVCLive step file (columns timestamp, step, <name>) as columns step, value."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `dvc repro` (the train stage writes it)")
    df = pd.read_csv(path, sep="\t")
    value_cols = [c for c in df.columns if c not in ("timestamp", "step")]
    if "step" not in df.columns or len(value_cols) != 1:
        raise ValueError(f"{path}: expected columns timestamp, step, <name>; got {list(df.columns)}")
    return pd.DataFrame({"step": df["step"].to_numpy(np.int64),
                         "value": df[value_cols[0]].to_numpy(np.float64)})


# ---- pure helpers ---------------------------------------------------------------------------
def example_indices(mre, k: int) -> np.ndarray:
    """Positions of ``k`` frames from best to worst by ``mre`` (NaN ignored), evenly spaced over
    the ranking: k=3 gives best, median, worst. Ties keep the original order."""
    mre = np.asarray(mre, np.float64)
    valid = np.flatnonzero(np.isfinite(mre))
    if len(valid) == 0 or k <= 0:
        return np.zeros(0, np.int64)
    order = valid[np.argsort(mre[valid], kind="stable")]
    ranks = np.unique(np.round(np.linspace(0, len(order) - 1, min(k, len(order)))).astype(np.int64))
    return order[ranks]


def summary_table(results: dict) -> pd.DataFrame:
    """One row per model with the columns ``metrics.table.SUMMARY_COLUMNS`` (from
    metrics/eval/<model>.json); the success-rate columns are those the evaluate stage wrote."""
    return pd.DataFrame(table_rows({name: res["metrics"] for name, res in results.items()}))


def markdown_table(df: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub markdown table; floats with ``digits`` decimals (rates in [0, 1]: ``within_*`` and
    ``*_share``, with 3)."""
    def fmt(col, v):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{v:.3f}" if col.startswith("within_") or col.endswith("_share") else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(fmt(c, row[c]) for c in df.columns) + " |")
    return "\n".join(lines) + "\n"


def _color(i: int) -> str:
    return COLORS[i % len(COLORS)]


# ---- figures --------------------------------------------------------------------------------
def plot_errors_box(results: dict, path) -> None:
    """BPD and OFD absolute errors per model (box + jittered points), mean-shape floor marked."""
    names = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.6 * len(names) * 2), 4.0))
    rng = np.random.default_rng(0)
    for ax, d in zip(axes, ("bpd", "ofd")):
        data = [np.abs(evaluated_rows(results[n]["predictions"])[f"err_{d}_mm"].to_numpy(np.float64))
                for n in names]
        ax.boxplot(data, positions=np.arange(len(names)), widths=0.55, showfliers=False)
        for i, (name, values) in enumerate(zip(names, data)):
            x = i + rng.uniform(-0.18, 0.18, len(values))
            ax.scatter(x, values, s=9, alpha=0.55, color=_color(i), zorder=3)
            floor = results[name]["metrics"].get("floor", {}).get(d, {}).get("mae_mm")
            if floor is not None:
                ax.hlines(floor, i - 0.38, i + 0.38, colors="k", linestyles="--", lw=1.2,
                          label="mean-shape floor (MAE)" if i == 0 else None, zorder=4)
        ax.set_xticks(np.arange(len(names)))
        ax.set_xticklabels(names)
        ax.set_ylabel(f"|{d.upper()} error| (mm)")
        ax.set_title(f"{d.upper()} absolute error, test set", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)


def plot_error_cdf(results: dict, path, lines_mm=CDF_LINES_MM) -> None:
    """Cumulative distribution of the landmark radial error (mm) per model."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    err_cols = [f"err_{name}_mm" for name in LANDMARKS]
    xmax = 0.0
    for i, (name, res) in enumerate(results.items()):
        e = evaluated_rows(res["predictions"])[err_cols].to_numpy(np.float64).ravel()
        e = np.sort(e[np.isfinite(e)])
        if len(e) == 0:
            continue
        xmax = max(xmax, float(np.percentile(e, 99)))
        y = np.arange(1, len(e) + 1) / len(e)
        ax.step(np.concatenate([[0.0], e]), np.concatenate([[0.0], y]), where="post",
                color=_color(i), label=name)
    for t in lines_mm:
        ax.axvline(t, color="gray", ls=":", lw=1)
        ax.text(t, 0.02, f" {t:g} mm", color="gray", fontsize=8)
    ax.set_xlim(0, max(xmax, max(lines_mm, default=1.0)) * 1.1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("radial error (mm)")
    ax.set_ylabel("share of landmarks")
    ax.set_title("Radial error CDF, test set", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def plot_bland_altman(results: dict, path) -> None:
    """Bland-Altman grid: one row per model, columns BPD and OFD, with bias and 95% LoA."""
    names = list(results)
    fig, axes = plt.subplots(len(names), 2, figsize=(8.0, 2.6 * len(names)), squeeze=False,
                             sharex="col", sharey="col")
    for r, name in enumerate(names):
        rows = evaluated_rows(results[name]["predictions"])
        for c, d in enumerate(("bpd", "ofd")):
            ax = axes[r, c]
            true = rows[f"true_{d}_mm"].to_numpy(np.float64)
            pred = rows[f"pred_{d}_mm"].to_numpy(np.float64)
            ax.scatter((true + pred) / 2, pred - true, s=10, alpha=0.6, color=_color(r))
            stats = results[name]["metrics"].get(d, {})
            for key, style, label in (("bias_mm", "-", "bias"), ("loa_low_mm", "--", "95% LoA"),
                                      ("loa_high_mm", "--", None)):
                value = stats.get(key)
                if value is not None:
                    ax.axhline(value, color="k", ls=style, lw=1, label=label)
            ax.axhline(0, color="gray", lw=0.6, ls=":")
            bias, lo, hi = (stats.get(k) for k in ("bias_mm", "loa_low_mm", "loa_high_mm"))
            text = (f"bias {bias:+.2f}, LoA [{lo:+.2f}, {hi:+.2f}] mm"
                    if None not in (bias, lo, hi) else "")
            ax.set_title(f"{name} {d.upper()}: {text}", fontsize=8)
            ax.set_xlabel(f"mean of predicted and true {d.upper()} (mm)", fontsize=8)
            ax.set_ylabel("predicted - true (mm)", fontsize=8)
            ax.grid(alpha=0.3)
            if r == 0 and c == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def _test_positions(test: dict, frame_ids) -> np.ndarray:
    index = {str(f): i for i, f in enumerate(np.asarray(test["frame_id"]).astype(str))}
    missing = [f for f in frame_ids if f not in index]
    if missing:
        raise KeyError(f"frames {missing[:5]} of the predictions are not in data/prepared/test.npz: "
                       "rerun `dvc repro` (the predictions are stale)")
    return np.array([index[f] for f in frame_ids], np.int64)


def example_rows(preds: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` example frames (best .. worst by MRE) among the evaluated rows."""
    rows = evaluated_rows(preds).reset_index(drop=True)
    return rows.iloc[example_indices(rows["mre_mm"].to_numpy(np.float64), k)]


def _rank_label(j: int, k: int) -> str:
    if j == 0:
        return "best"
    if j == k - 1:
        return "worst"
    return "median" if k == 3 else f"rank {j + 1}/{k}"


def plot_overlays(name: str, preds: pd.DataFrame, test: dict, path, k: int) -> None:
    """Predicted (red x) vs true (green o) landmarks on the letterboxed test images of the
    best .. worst frames by MRE."""
    rows = example_rows(preds, k)
    if len(rows) == 0:
        print(f"plots: {name}: no evaluated test frames; overlay skipped")
        return
    pos = _test_positions(test, rows["frame_id"].tolist())
    transforms = np.asarray(test["transform"], np.float64)[pos]
    true_in = to_input(table_points(rows, [f"true_{c}" for c in COORD_COLUMNS]), transforms)
    pred_in = to_input(table_points(rows, [f"pred_{c}" for c in COORD_COLUMNS]), transforms)
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.6), squeeze=False)
    for j, (ax, (_, row), i) in enumerate(zip(axes[0], rows.iterrows(), pos)):
        title = (f"{_rank_label(j, len(rows))}: {row['frame_id']}\nMRE {row['mre_mm']:.2f} mm, "
                 f"BPD {row['err_bpd_mm']:+.1f}, OFD {row['err_ofd_mm']:+.1f} mm")
        show_image(ax, test["image"][i], title)
        draw_landmarks(ax, true_in[j], **TRUE_STYLE)
        draw_landmarks(ax, pred_in[j], **PRED_STYLE)
        if j == 0:
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{name}: test frames by MRE", fontsize=10)
    save_figure(fig, path)


def plot_heatmaps(entries: list, test: dict, path) -> None:
    """Predicted heatmaps (max over the 4 channels) over the input image.

    ``entries``: list of (model name, frame ids, heatmaps (n, 4, h, w), points (n, 4, 2) input px).
    """
    k = max(len(e[1]) for e in entries)
    fig, axes = plt.subplots(len(entries), k, figsize=(3.2 * k, 3.4 * len(entries)), squeeze=False)
    for r, (name, frame_ids, heatmaps, points) in enumerate(entries):
        pos = _test_positions(test, list(frame_ids))
        for j in range(k):
            ax = axes[r, j]
            if j >= len(pos):
                ax.axis("off")
                continue
            image = test["image"][pos[j]]
            size = image.shape[-1]
            show_image(ax, image, f"{name}: {frame_ids[j]} (max of 4 heatmaps)")
            hm = np.asarray(heatmaps[j], np.float64).max(axis=0)
            top = max(float(hm.max()), 1e-6)
            # cells below 5% of the peak stay transparent so the image shows through
            ax.imshow(np.ma.masked_less(hm, 0.05 * top), cmap="inferno", alpha=0.6, interpolation="nearest",
                      extent=(-0.5, size - 0.5, size - 0.5, -0.5), vmin=0.0, vmax=top)
            draw_landmarks(ax, test["points"][pos[j]], **TRUE_STYLE)
            draw_landmarks(ax, points[j], **PRED_STYLE)
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
    save_figure(fig, path)


def plot_training_curves(curves: dict, path) -> None:
    """``curves``: {model: (train loss DataFrame, val MRE DataFrame)} from ``read_dvclive_tsv``."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.8))
    for i, (name, (loss, mre)) in enumerate(curves.items()):
        axes[0].plot(loss["step"] + 1, loss["value"], color=_color(i), label=name)
        axes[1].plot(mre["step"] + 1, mre["value"], color=_color(i), label=name)
    axes[0].set_yscale("log")
    axes[0].set_title("training loss", fontsize=10)
    axes[1].set_title("validation MRE (mm)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


# ---- stage body -----------------------------------------------------------------------------
def heatmap_entries(results: dict, test: dict, paths: Paths, k: int, decode: dict) -> list:
    """Run every model on its example frames and keep those whose outputs are heatmaps
    (N, K, H, W); [] when no model outputs heatmaps."""
    import torch  # lazy: torch only for the heatmap figure; the table and other figures need none

    from fhbiometry.inference.runner import load_model, predict  # lazy: torch, as above

    entries = []
    for name, res in results.items():
        rows = example_rows(res["predictions"], k)
        if len(rows) == 0:
            continue
        loaded = load_model(paths.checkpoint(name), fix=f"run `dvc repro train@{name}`")
        pos = _test_positions(test, rows["frame_id"].tolist())
        with torch.no_grad():
            decoded, outputs = predict(loaded.model, loaded.codec.with_decoding(decode),
                                       np.asarray(test["image"])[pos])
        if outputs.ndim == 4:
            entries.append((name, rows["frame_id"].tolist(), outputs, decoded.points))
    return entries


def run(params: dict, root=".") -> list:
    """Stage body: writes every figure and the summary under plots/models/ (removed first)."""
    paths = Paths(root)
    names = list(params["models"])
    k = int(params["plots"]["examples"])
    import torch  # lazy: torch only for the heatmap figure's threads

    torch.set_num_threads(int(params["threads"]))

    out_dir = paths.model_plots
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    results = load_results(paths, names)
    test = load_npz(paths.prepared("test"))

    plot_errors_box(results, out_dir / "errors_box.png")
    plot_error_cdf(results, out_dir / "error_cdf.png")
    plot_bland_altman(results, out_dir / "bland_altman.png")
    for name in names:
        plot_overlays(name, results[name]["predictions"], test, out_dir / f"overlays_{name}.png", k)
    entries = heatmap_entries(results, test, paths, k, params["decode"])
    if entries:
        plot_heatmaps(entries, test, out_dir / "heatmaps.png")
    else:
        print("plots: no model in params `models` outputs heatmaps; heatmaps.png skipped")
    curves = {}
    for name in names:
        live = paths.train_log(name)
        curves[name] = (read_dvclive_tsv(live / TRAIN_LOSS_TSV), read_dvclive_tsv(live / VAL_MRE_TSV))
    plot_training_curves(curves, out_dir / "training_curves.png")

    table = summary_table(results)
    write_csv(table, out_dir / "summary.csv")
    (out_dir / "summary.md").write_text(markdown_table(table))
    written = sorted(p.name for p in out_dir.iterdir())
    print(f"plots: wrote {', '.join(written)} to {out_dir}")
    return written

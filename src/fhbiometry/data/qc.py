"""Label quality control (stage `qc`).

Every frame of the manifest gets one boolean column per check (``flag_<name>``):

=================  ===================================================================
outside            a point lies outside the image
missing_values     the frame has a label row but a coordinate is missing
no_label           an image without a label row
bad_input          any other label problem recorded by extract_frames (``label_status``)
duplicate          more than one table row for the frame
midpoint_offset    pair midpoints apart by more than ``max_midpoint_offset`` x OFD length
not_perpendicular  the diameters deviate from perpendicular by more than the limit
ratio              BPD/OFD (shorter/longer) outside ``ratio_range``
ofd_shorter        the pair named ``ofd`` is shorter than the pair named ``bpd``
ref_disagree       a diameter differs from the ellipse reference by more than the tolerance
no_reference       a reference was requested but the frame has none
=================  ===================================================================

Naming: with ``naming: anatomical`` a frame whose ``ofd`` pair is the shorter one is read with
the two pairs exchanged (``swapped_naming`` column, counted in the metrics), so the OFD is always
the anatomical longest diameter; ``ofd_shorter`` is then reported but is not a fault. With
``as_labelled`` the names are kept and ``ofd_shorter`` is a fault. The order of the two ends
within a pair is left as labelled here;
the landmark table's own points (``csv_*``, also read as a reference when the labels come from
the ellipses) get the same naming and their own verdict ``csv_ok``, and the ellipse reference
its verdict ``ref_ok`` (an axis end outside the image, an implausible ratio); the stage `prepare` applies the canonical
order (``landmarks.canonical_order``). Nothing else about a label is ever changed: a flagged frame keeps its points, and the policy only
decides whether it is used for training.
"""
from __future__ import annotations

from pathlib import Path
import textwrap

import numpy as np
import pandas as pd

from fhbiometry.core.geometry import (COORD_COLUMNS, CSV_COLUMNS, REF_COLUMNS, anatomical_naming, as_points, diameters,
                                     midpoint_distance, perpendicularity_deg)
from fhbiometry.readers.common import ALWAYS_COUNTED, note_name

# Flags that describe a missing or unusable label rather than a geometric fault.
FLAGS = ("outside", "missing_values", "no_label", "bad_input", "duplicate", "midpoint_offset",
         "not_perpendicular", "ratio", "ofd_shorter", "ref_disagree", "no_reference")


class QCError(RuntimeError):
    """qc.policy is 'fail' and some frames were flagged."""


def _points(df: pd.DataFrame, columns) -> np.ndarray:
    if not set(columns) <= set(df.columns):
        return np.full((len(df), 4, 2), np.nan)
    return as_points(df[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64, copy=True))


def _outside(pts, width, height) -> np.ndarray:
    """Per frame: a point lies outside the image (a NaN coordinate is not "outside")."""
    with np.errstate(invalid="ignore"):
        x, y = pts[..., 0], pts[..., 1]
        outside = (x < 0) | (y < 0) | (x > (width - 1)[:, None]) | (y > (height - 1)[:, None])
    return outside.any(axis=1)


def _geometry_flags(pts, finite, cfg) -> tuple[dict, np.ndarray, np.ndarray]:
    """The geometric checks of finite labels; a NaN in a check (degenerate points: four equal
    points give a NaN ratio and angle) is a failed check, never a pass. Returns (flags, named,
    swapped)."""
    flags = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        d = diameters(pts)
        flags["ofd_shorter"] = finite & (d[:, 0] < d[:, 1])
        named, swapped = anatomical_naming(pts)
        dn = diameters(named)
        offset_ok = midpoint_distance(pts) <= cfg["max_midpoint_offset"] * dn[:, 0]
        flags["midpoint_offset"] = finite & ~(offset_ok & (dn[:, 0] > 0))
        flags["not_perpendicular"] = finite & ~(perpendicularity_deg(pts) <= cfg["max_perpendicular_deviation_deg"])
        ratio = dn[:, 1] / dn[:, 0]
        lo, hi = cfg["ratio_range"]
        flags["ratio"] = finite & ~((ratio >= lo) & (ratio <= hi))
    return flags, named, swapped


def _flag_points(pts, ref, status, dup, width, height, spacing, cfg) -> dict:
    """The checks of the module docstring on (N, 4, 2) label points ``pts`` against ``ref``."""
    finite = np.isfinite(pts).all(axis=(1, 2))
    no_label = status == "missing"
    flags = {name: np.zeros(len(pts), bool) for name in FLAGS}
    flags["no_label"] = no_label
    flags["bad_input"] = ~np.isin(status, ["ok", "missing"])
    flags["missing_values"] = ~no_label & ~flags["bad_input"] & ~finite
    flags["duplicate"] = dup > 1
    flags["outside"] = _outside(pts, width, height)
    geometry, named, swapped = _geometry_flags(pts, finite, cfg)
    flags.update(geometry)

    ref_finite = np.isfinite(ref).all(axis=(1, 2))
    disagreement = np.full(len(pts), np.nan)
    if cfg["reference"] == "ellipse":
        ref_named, _ = anatomical_naming(np.where(ref_finite[:, None, None], ref, 0.0))
        diff = np.abs(diameters(named) - diameters(ref_named)) * spacing[:, None]
        disagreement = np.where(finite & ref_finite, diff.max(axis=1), np.nan)
        with np.errstate(invalid="ignore"):
            flags["ref_disagree"] = disagreement > cfg["reference_tolerance_mm"]
        flags["no_reference"] = ~ref_finite

    use_named = cfg["naming"] == "anatomical"
    final = np.where((use_named & swapped)[:, None, None], named, pts)
    fault = np.zeros(len(pts), bool)
    for name in FLAGS:
        if not (name == "ofd_shorter" and use_named):
            fault |= flags[name]
    return {"flags": flags, "points": final, "swapped": finite & swapped & use_named,
            "disagreement": disagreement, "finite": finite, "label_ok": finite & ~fault}


def point_flags(points, width, height, qc_params: dict) -> dict:
    """The geometric checks on (N, 4, 2) points in an image of ``width`` x ``height`` (scalars or
    per-point-set arrays), with the thresholds of params ``qc`` (``max_midpoint_offset``,
    ``max_perpendicular_deviation_deg``, ``ratio_range``, ``naming``): every label present, no
    reference. Returns the dict of the labels' checks: ``flags`` (name -> bool per set, names
    ``FLAGS``), ``points`` (after naming), ``swapped``, ``finite``, ``label_ok``. predict's
    plausibility test calls it on predicted points."""
    pts = np.asarray(points, np.float64)
    n = len(pts)
    size = [np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (width, height)]
    return _flag_points(pts, np.full_like(pts, np.nan), np.full(n, "ok"), np.ones(n), size[0], size[1],
                        np.full(n, np.nan), {"naming": "anatomical", **qc_params, "reference": ""})


def _frame_columns(manifest: pd.DataFrame, spacing) -> pd.DataFrame:
    """The id and size columns of labels.csv (``subject_source`` empty when the manifest has none)."""
    source = (manifest["subject_source"].astype(str).to_numpy() if "subject_source" in manifest
              else np.full(len(manifest), "", dtype=object))
    return pd.DataFrame({"frame_id": manifest["frame_id"].astype(str).to_numpy(),
                         "subject_id": manifest["subject_id"].astype(str).to_numpy(),
                         "subject_source": source, "spacing_mm": spacing,
                         "width": manifest["width"].to_numpy(), "height": manifest["height"].to_numpy()})


def compute_flags(manifest: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """One row per manifest frame: ids, points after naming, flags, policy; plus the ellipse
    reference (``ref_*``, anatomical naming) with ``ref_ok`` and the landmark table's points
    (``csv_*``, the same naming as the labels) with ``csv_ok``: those points pass every check
    (``csv_*`` is the label itself when ``data.label_source`` is csv, ``ref_*`` when it is ellipse)."""
    pts = _points(manifest, COORD_COLUMNS)
    ref = _points(manifest, REF_COLUMNS)
    csv = _points(manifest, CSV_COLUMNS)
    status = manifest["label_status"].fillna("").astype(str).to_numpy()
    dup = pd.to_numeric(manifest.get("dup_count", 1), errors="coerce")
    dup = np.broadcast_to(np.nan_to_num(np.asarray(dup, dtype=float), nan=1.0), (len(manifest),))
    width = manifest["width"].to_numpy(np.float64)
    height = manifest["height"].to_numpy(np.float64)
    spacing = pd.to_numeric(manifest["spacing_mm"], errors="coerce").to_numpy(np.float64)

    label = _flag_points(pts, ref, status, dup, width, height, spacing, cfg)
    csv_status = np.where(np.isfinite(csv).any(axis=(1, 2)), "ok", "missing")
    table = _flag_points(csv, ref, csv_status, np.ones(len(manifest)), width, height, spacing, cfg)
    ref_status = np.where(np.isfinite(ref).any(axis=(1, 2)), "ok", "missing")
    ellipse = _flag_points(ref, ref, ref_status, np.ones(len(manifest)), width, height, spacing, cfg)

    ref_out = ref.copy()
    ref_finite = np.isfinite(ref).all(axis=(1, 2))
    if ref_finite.any():
        ref_out[ref_finite] = anatomical_naming(ref[ref_finite])[0]

    if cfg["policy"] == "keep":
        use = label["finite"] & ~label["flags"]["no_label"] & ~label["flags"]["bad_input"]
    else:
        use = label["label_ok"]

    out = _frame_columns(manifest, spacing)
    for columns, values in ((COORD_COLUMNS, label["points"]), (REF_COLUMNS, ref_out),
                            (CSV_COLUMNS, table["points"])):
        for j, col in enumerate(columns):
            out[col] = values.reshape(-1, 8)[:, j]
    _add_flag_columns(out, label, table, ellipse, use, np.isfinite(csv).any(axis=(1, 2)))
    return with_reference_hc(out, manifest).sort_values("frame_id").reset_index(drop=True)


def _add_flag_columns(out: pd.DataFrame, label: dict, table: dict, ellipse: dict, use, csv_rows) -> None:
    """The flag, naming and use columns of ``compute_flags`` (the label's, the table's as a
    reference, the ellipse's ``ref_ok``)."""
    flags, n = label["flags"], len(out)
    for name in FLAGS:
        out[f"flag_{name}"] = flags[name]
    out["flags"] = [";".join(f for f in FLAGS if flags[f][i]) for i in range(n)]
    out["swapped_naming"] = label["swapped"]
    out["ref_disagreement_mm"] = label["disagreement"]
    out["label_ok"] = label["label_ok"]
    out["use_for_training"] = use
    out["csv_ok"] = table["label_ok"]
    out["ref_ok"] = ellipse["label_ok"]
    # the table's own flags, reported as a reference when it is not the label source
    out["csv_flags"] = [";".join(f for f in FLAGS if table["flags"][f][i] and f != "no_label")
                        if csv_rows[i] else "" for i in range(n)]
    out["csv_swapped_naming"] = table["swapped"]
    out["csv_disagreement_mm"] = table["disagreement"]


def with_reference_hc(out: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest's reference HC (``hc_ref_mm``, from ``data.pixel_size_columns.hc``) passed
    through to the labels (rows in the manifest's order); unchanged when the manifest has none."""
    if "hc_ref_mm" in manifest.columns:
        out["hc_ref_mm"] = pd.to_numeric(manifest["hc_ref_mm"], errors="coerce").to_numpy(np.float64)
    return out


def summarise(labels: pd.DataFrame, issues: pd.DataFrame | None, cfg: dict) -> dict:
    """Counts for metrics/qc.json."""
    summary = {
        "frames": int(len(labels)),
        "labelled": int((~labels["flag_no_label"]).sum()),
        "label_ok": int(labels["label_ok"].sum()),
        "use_for_training": int(labels["use_for_training"].sum()),
        "swapped_naming": int(labels["swapped_naming"].sum()),
        "flags": {name: int(labels[f"flag_{name}"].sum()) for name in FLAGS},
        "policy": cfg["policy"],
        "naming": cfg["naming"],
    }
    summary["input_issues"], summary["inputs"] = count_input_issues(issues)
    if is_reference_table(labels):
        rows = labels[[c for c in CSV_COLUMNS]].notna().any(axis=1)
        flagged = labels.loc[rows, "csv_flags"].fillna("")
        table = {
            "rows": int(rows.sum()),
            "ok": int(labels.loc[rows, "csv_ok"].sum()),
            "swapped_naming": int(labels.loc[rows, "csv_swapped_naming"].sum()),
            "flags": {name: int(flagged.str.split(";").apply(lambda f, n=name: n in f).sum())
                      for name in FLAGS if name != "no_label"},
        }
        d = labels.loc[rows, "csv_disagreement_mm"].dropna()
        if len(d):
            table["disagree_share"] = float((d > cfg["reference_tolerance_mm"]).mean())
            table["disagreement_median_mm"] = float(d.median())
        summary["csv_reference"] = table
    if cfg["reference"] == "ellipse":
        d = labels["ref_disagreement_mm"].dropna()
        summary["reference"] = {
            "compared": int(len(d)),
            "disagree_share": float((d > cfg["reference_tolerance_mm"]).mean()) if len(d) else float("nan"),
            "median_mm": float(d.median()) if len(d) else float("nan"),
            "max_mm": float(d.max()) if len(d) else float("nan"),
            "tolerance_mm": float(cfg["reference_tolerance_mm"]),
        }
    return summary


def count_input_issues(issues: pd.DataFrame | None) -> tuple[dict, dict]:
    """From issues.csv: ``input_issues`` (skipped files and rows per problem) and ``inputs``
    (input files converted or guessed about, per note name of ``readers.common.NOTES``; the names
    of ``ALWAYS_COUNTED`` are always present, 0 when none, the later ones where they occur;
    docs/bad_inputs.md)."""
    inputs = {name: 0 for name in sorted(ALWAYS_COUNTED)}
    if issues is None or not len(issues):
        return {}, inputs
    problems = issues["problem"].astype(str)
    names = problems.map(note_name)
    for name, n in names.dropna().value_counts().items():
        inputs[name] = int(n)
    inputs = dict(sorted(inputs.items()))
    rest = problems[names.isna()]
    counts = rest.str.split(":").str[0].value_counts().sort_index()
    return {str(k): int(v) for k, v in counts.items()}, inputs


def is_reference_table(labels: pd.DataFrame) -> bool:
    """True when the landmark table (``csv_*``) was read beside other labels (the ellipses):
    its faults are then reported as a reference (``csv_reference`` in metrics/qc.json, overlays
    ``plots/qc/table_flagged_*.png``), since they no longer show as label flags."""
    if not set(CSV_COLUMNS) <= set(labels.columns):
        return False
    csv = labels[list(CSV_COLUMNS)].to_numpy(np.float64)
    own = labels[list(COORD_COLUMNS)].to_numpy(np.float64)
    present = np.isfinite(csv).any(axis=1)
    return bool(present.any()) and not np.allclose(csv[present], own[present], equal_nan=True)


def enforce_policy(labels: pd.DataFrame, cfg: dict) -> None:
    """With policy 'fail', stop when any frame is flagged, naming the frames and the fix."""
    if cfg["policy"] != "fail":
        return
    bad = labels[~labels["label_ok"]]
    if len(bad) == 0:
        return
    counts = {n: int(labels[f"flag_{n}"].sum()) for n in FLAGS if labels[f"flag_{n}"].any()}
    lines = "\n".join(f"  {r.frame_id}: {r.flags}" for r in bad.head(20).itertuples())
    raise QCError(f"qc: {len(bad)} frames flagged {counts} and qc.policy is 'fail'. First ones:\n{lines}\n"
                  "Correct these rows in the landmark table, or set qc.policy to 'exclude' (leave them "
                  "out of training) or 'keep' in params.yaml.")


def overlay_order(labels: pd.DataFrame, column: str = "flags") -> pd.DataFrame:
    """Frames flagged in ``column``, most flags first, then by frame id (deterministic)."""
    flagged = labels[labels[column].fillna("") != ""].copy()
    flagged["n_flags"] = flagged[column].str.count(";") + 1
    return flagged.sort_values(["n_flags", "frame_id"], ascending=[False, True])


def plot_report(labels: pd.DataFrame, manifest: pd.DataFrame, frames: dict, out_dir, limit: int) -> list:
    """flag_counts.png and grids of overlays of flagged frames (as labelled, plus the ellipse
    reference): ``flagged_NN.png`` for the labels and, when the landmark table is a reference
    (``is_reference_table``), ``table_flagged_NN.png`` for its flagged rows."""
    import matplotlib.pyplot as plt  # lazy: matplotlib only when the QC figures are drawn

    from fhbiometry.reporting.viz import save_figure  # lazy: reporting.viz imports matplotlib, as above

    out_dir = Path(out_dir)
    written = []
    counts = {n: int(labels[f"flag_{n}"].sum()) for n in FLAGS}
    reference = is_reference_table(labels)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(counts)[::-1]
    height = 0.4 if reference else 0.8
    ax.barh(np.arange(len(names)), [counts[n] for n in names], height=height, color="#5c6bc0", label="labels")
    for i, n in enumerate(names):
        ax.text(counts[n], i, f" {counts[n]}", va="center", fontsize=8)
    if reference:
        rows = labels["csv_flags"].fillna("").str.split(";")
        table = [int(rows.apply(lambda f, n=n: n in f).sum()) for n in names]
        ax.barh(np.arange(len(names)) - height, table, height=height, color="#ff9100",
                label="landmark table (reference)")
        for i, v in enumerate(table):
            ax.text(v, i - height, f" {v}", va="center", fontsize=7)
        ax.legend(fontsize=8, loc="lower right")
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_xlabel(f"frames flagged (of {len(labels)})")
    ax.set_title("Label quality checks")
    save_figure(fig, out_dir / "flag_counts.png")
    written.append(out_dir / "flag_counts.png")

    raw = manifest.set_index("frame_id")
    written += _overlay_pages(overlay_order(labels).head(max(0, int(limit))), "flags", COORD_COLUMNS,
                              raw, frames, out_dir, "flagged", "as labelled")
    if reference:
        written += _overlay_pages(overlay_order(labels, "csv_flags").head(max(0, int(limit))), "csv_flags",
                                  CSV_COLUMNS, raw, frames, out_dir, "table_flagged", "landmark table")
    return written


def _overlay_pages(chosen: pd.DataFrame, column: str, point_columns, raw: pd.DataFrame, frames: dict,
                   out_dir, prefix: str, name: str) -> list:
    """Pages of 12 overlays: the points of ``point_columns`` (as read) and the ellipse reference."""
    import matplotlib.pyplot as plt  # lazy: matplotlib only when the QC figures are drawn

    from fhbiometry.reporting.viz import draw_landmarks, save_figure, show_image  # lazy: reporting.viz imports matplotlib, as above

    if len(chosen) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no frame was flagged", ha="center", va="center")
        save_figure(fig, out_dir / f"{prefix}_01.png")
        return [out_dir / f"{prefix}_01.png"]
    written = []
    per_page = 12
    for page, start in enumerate(range(0, len(chosen), per_page), 1):
        rows = chosen.iloc[start:start + per_page]
        ncol = min(4, len(rows))
        nrow = int(np.ceil(len(rows) / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.8 * nrow), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, row in zip(axes.ravel(), rows.itertuples()):
            image = frames.get(row.frame_id)
            if image is not None:
                show_image(ax, image)
            one = raw.loc[[row.frame_id]].reset_index()
            draw_landmarks(ax, _points(one, point_columns)[0], color="#ff9100", marker="o", label=name)
            draw_landmarks(ax, _points(one, REF_COLUMNS)[0], color="#00e5ff", marker="+",
                           label="ellipse reference")
            wrapped = textwrap.fill(getattr(row, column).replace(";", ", "), 38)
            ax.set_title(f"{row.frame_id}\n{wrapped}", fontsize=7)
        handles, names = [], []
        for ax in axes.ravel():
            h, n = ax.get_legend_handles_labels()
            for hh, nn in zip(h, n):
                if nn not in names:
                    handles.append(hh)
                    names.append(nn)
        if handles:
            fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8)
        path = out_dir / f"{prefix}_{page:02d}.png"
        save_figure(fig, path)
        written.append(path)
    return written

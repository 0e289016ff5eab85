"""Train/val/test split, grouped by subject: no subject's frames in two splits.

Each subject (each frame when ``split.grouped`` is false) goes to a split by a stable hash of
``f"{seed}:{subject}"``: adding or removing subjects never moves any other subject. The split
is checked on the frames the QC policy accepts for training (``use_for_training``); a split
with no such frame is filled by the small-set guard (``guard_empty``) or the stage fails there.
docs/leakage.md describes the rule.

``split.method: head_size`` tests where it is hard: the units (subjects) with the larger heads
go to test, the others to train and val (val by the same hash, its share of train + val as in
``split.fractions``). A frame's head size is its reference HC (column ``hc_ref_mm``, from
``data.pixel_size_columns.hc``) or, where absent, the HC of its label (``geometry.head_circumference``
of the OFD and BPD, in mm); a unit's is the max (or median) over its frames
(``split.head_size.subject_stat``). Threshold: ``test_above_hc_mm``, or when 0 the
``test_quantile`` of the units' head sizes (see ``head_size_assign``). With
``fit_up_to_hc_mm`` > 0 only the units up to that size train and validate, and those between it
and the test threshold are left out of every split (a gap in head size between what a model
learns from and what it is tested on: ``configs/hc18_far.yaml``).
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

from fhbiometry.core.choices import SPLIT_METHODS, SPLITS
from fhbiometry.core.geometry import COORD_COLUMNS, head_circumference

LEFT_OUT = "left_out"   # head-size split with a gap: units between fit_up_to_hc_mm and the threshold
METHODS = SPLIT_METHODS     # params split.method (written once, in core.choices)
log = logging.getLogger(__name__)


class SplitError(ValueError):
    """The split cannot give train, val and test a usable frame each; the message says why."""


def unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) from sha256 of ``f"{seed}:{key}"`` (the first 8 bytes, big-endian)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def intervals(fractions: dict) -> dict:
    """split name -> [low, high) on the unit interval, by the cumulative fractions."""
    f = {name: float(fractions[name]) for name in SPLITS}  # validated by the schema
    edges = np.cumsum([0.0] + [f[name] for name in SPLITS])
    edges[-1] = 1.0
    return {name: (float(edges[i]), float(edges[i + 1])) for i, name in enumerate(SPLITS)}


def hash_assign(keys, fractions: dict, seed: int) -> dict:
    """key -> split name by ``unit_hash``; each key's split depends on that key and the seed only."""
    bounds = intervals(fractions)
    out = {}
    for key in keys:
        h = unit_hash(seed, key)
        out[key] = next(name for name in SPLITS if bounds[name][0] <= h < bounds[name][1])
    return out


def _distance(h: float, low: float, high: float) -> float:
    return low - h if h < low else (h - high if h >= high else 0.0)


def guard_empty(assigned: dict, usable: set, fractions: dict, seed: int) -> tuple[dict, list]:
    """Give every split at least one ``usable`` key, moving as few keys as possible.

    For each split (train, val, test in turn) with no usable key, the usable key whose hash
    is nearest to that split's interval, among splits that hold two or more usable keys, moves
    there (ties: the smaller key). Only moved keys change; they are returned as
    ``[(key, from, to)]``. Needs three usable keys; with fewer, splits stay empty.
    """
    bounds = intervals(fractions)
    out = dict(assigned)
    moved = []
    for name in SPLITS:
        members = {s: sorted(k for k in usable if out[k] == s) for s in SPLITS}
        if members[name]:
            continue
        donors = [k for s in SPLITS if len(members[s]) >= 2 for k in members[s]]
        if not donors:
            break
        best = min(donors, key=lambda k: (_distance(unit_hash(seed, k), *bounds[name]), k))
        moved.append((best, out[best], name))
        out[best] = name
    return out, moved


def assign_splits(frame_ids, groups, usable, fractions: dict, seed: int, grouped: bool = True
                  ) -> tuple[np.ndarray, list]:
    """Return the split name of every frame and the units the small-set guard moved.

    Units are subjects (``groups``) when ``grouped``, frames otherwise (subjects then leak across
    splits). ``usable``: per frame, whether the QC policy accepts it for training.
    """
    frame_ids = np.asarray(frame_ids).astype(str)
    units = np.asarray(groups).astype(str) if grouped else frame_ids
    if not grouped:
        log.warning("split.grouped is false: frames of one subject may land in different splits "
                    "(this inflates accuracy; use it only for the ablation)")
    usable_units = set(units[np.asarray(usable, bool)])
    assigned = hash_assign(sorted(set(units)), fractions, seed)
    assigned, moved = guard_empty(assigned, usable_units, fractions, seed)
    for key, src, dst in moved:
        log.warning("split: %s %s moved from %s to %s so that %s is not empty (small data set)",
                    "subject" if grouped else "frame", key, src, dst, dst)
    return np.array([assigned[u] for u in units], dtype=str), moved


def frame_head_size(labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: head size (HC, mm) and whether it is the reference HC (else the label's own)."""
    coords = labels[list(COORD_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    spacing = (pd.to_numeric(labels["spacing_mm"], errors="coerce").to_numpy(float)
               if "spacing_mm" in labels.columns else np.full(len(labels), np.nan))
    own = head_circumference(coords.reshape(-1, 4, 2)) * spacing
    ref = (pd.to_numeric(labels["hc_ref_mm"], errors="coerce").to_numpy(float)
           if "hc_ref_mm" in labels.columns else np.full(len(labels), np.nan))
    is_ref = np.isfinite(ref)
    return np.where(is_ref, ref, own), is_ref


def unit_head_sizes(units, sizes, stat: str) -> dict:
    """unit -> max or median of its frames' head sizes (NaN frames ignored; NaN if none)."""
    frame = pd.DataFrame({"unit": np.asarray(units).astype(str), "hc": np.asarray(sizes, float)})
    return frame.groupby("unit", sort=True)["hc"].agg(stat).to_dict()


def head_size_threshold(unit_sizes: dict, cfg: dict) -> float:
    """``test_above_hc_mm`` if > 0, else the ``test_quantile`` of the units' head sizes."""
    if float(cfg["test_above_hc_mm"]) > 0:
        return float(cfg["test_above_hc_mm"])
    values = np.array([v for v in unit_sizes.values() if np.isfinite(v)])
    if len(values) == 0:
        raise SplitError("split.method head_size: no frame has a head size (no finite label or hc_ref_mm "
                         "in data/qc/labels.csv); use split.method: hash")
    return float(np.quantile(values, float(cfg["test_quantile"])))


def head_size_assign(unit_sizes: dict, fractions: dict, seed: int, cfg: dict) -> tuple[dict, float]:
    """unit -> split: test above the threshold, ``LEFT_OUT`` above ``fit_up_to_hc_mm`` (when > 0),
    else val when ``unit_hash`` < val / (train + val), else train. Units without a head size go
    to train. Returns (assignment, threshold mm)."""
    threshold = head_size_threshold(unit_sizes, cfg)
    fit_limit = float(cfg.get("fit_up_to_hc_mm", 0.0))
    if fit_limit > threshold:
        raise SplitError(f"split.head_size.fit_up_to_hc_mm ({fit_limit:g} mm) is above the test threshold "
                         f"({threshold:g} mm): lower it, or set it to 0 (no gap)")
    val_share = float(fractions["val"]) / (float(fractions["train"]) + float(fractions["val"]))
    out = {}
    for unit, size in unit_sizes.items():
        if np.isfinite(size) and size > threshold:
            out[unit] = "test"
        elif fit_limit > 0 and np.isfinite(size) and size > fit_limit:
            out[unit] = LEFT_OUT
        else:
            out[unit] = "val" if unit_hash(seed, unit) < val_share else "train"
    return out, threshold


def guard_train_val(assigned: dict, usable: set, seed: int) -> tuple[dict, list]:
    """Head-size split, small data: give train and val a usable unit each, moving the usable unit
    of the other one with the smallest ``unit_hash`` (only when that one keeps two). Test is fixed
    by the threshold and never changed. Returns (assignment, [(key, from, to)])."""
    out, moved = dict(assigned), []
    for name, other in (("val", "train"), ("train", "val")):
        mine = [k for k in usable if out[k] == name]
        donors = sorted((k for k in usable if out[k] == other), key=lambda k: (unit_hash(seed, k), k))
        if not mine and len(donors) >= 2:
            out[donors[0]] = name
            moved.append((donors[0], other, name))
    return out, moved


def _range(values) -> dict:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"frames": 0, "min": None, "median": None, "max": None}
    return {"frames": int(len(v)), "min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def head_size_report(table: pd.DataFrame, threshold: float | None, cfg: dict | None) -> dict:
    """HC ranges (frames, min, median, max) of train + val, each split, and the overlap: test
    frames whose head is not larger than the largest train/val head (count, share, mm of range)."""
    hc, split = table["head_size_mm"].to_numpy(float), table["split"].to_numpy(str)
    fit = np.isin(split, ["train", "val"])
    top = np.nanmax(hc[fit]) if np.isfinite(hc[fit]).any() else np.nan
    test = hc[split == "test"]
    test = test[np.isfinite(test)]
    low = float(test.min()) if len(test) else np.nan
    out = {"threshold_hc_mm": threshold, "source": {"reference": int(table["hc_is_ref"].sum()),
                                                    "label": int((~table["hc_is_ref"]).sum())},
           "train_val": _range(hc[fit]), **{name: _range(hc[split == name]) for name in SPLITS},
           "overlap": {"test_frames_not_above_train_val_max": int((test <= top).sum()),
                       "share": float((test <= top).mean()) if len(test) else None,
                       "range_mm": float(max(0.0, top - low)) if np.isfinite(top) and np.isfinite(low) else None}}
    if cfg is not None:
        out["settings"] = {k: cfg[k] for k in ("test_above_hc_mm", "test_quantile", "subject_stat")}
        if float(cfg.get("fit_up_to_hc_mm", 0.0)) > 0:
            out["settings"]["fit_up_to_hc_mm"] = cfg["fit_up_to_hc_mm"]
            out[LEFT_OUT] = {**_range(hc[split == LEFT_OUT]),
                             "subjects": int(table.loc[split == LEFT_OUT, "subject_id"].nunique())}
    return out


def check_usable(table: pd.DataFrame, policy: str, grouped: bool) -> None:
    """Raise SplitError naming each split with no frame usable for training."""
    usable = table["use_for_training"].to_numpy(bool)
    empty = [name for name in SPLITS if not (usable & (table["split"] == name).to_numpy()).any()]
    if not empty:
        return
    unit = "subjects" if grouped else "frames"
    n_units = table.loc[usable, "subject_id" if grouped else "frame_id"].nunique()
    raise SplitError(
        f"split: the {' and '.join(empty)} split(s) would have no frame usable for training: "
        f"qc.policy '{policy}' leaves {int(usable.sum())} of {len(table)} labelled frames usable "
        f"(use_for_training in data/qc/labels.csv), from {n_units} {unit}; train, val and test need "
        f"one usable {unit[:-1]} each. Fix the labels QC flags (plots/qc, metrics/qc.json), add data, "
        "or set qc.policy: keep to train on flagged labels")


def make_split(labels: pd.DataFrame, fractions: dict, seed: int, grouped: bool = True,
               policy: str = "?", method: str = "hash", head_size: dict | None = None
               ) -> tuple[pd.DataFrame, dict]:
    """labels: data/qc/labels.csv. Frames without four finite points are not split.

    ``method``: ``hash`` (default) or ``head_size`` with its settings ``head_size``
    (params ``split.head_size``). The head-size ranges are reported (``head_size`` in the summary)
    for the head-size split and wherever the labels carry a reference HC (``hc_ref_mm``)."""
    if "use_for_training" not in labels.columns:
        raise SplitError("data/qc/labels.csv has no column 'use_for_training': rerun the qc stage "
                         "(`dvc repro qc`)")
    if method not in METHODS:
        raise SplitError(f"split.method is {method!r}; choose one of {list(METHODS)}")
    coords = labels[list(COORD_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    labelled = np.isfinite(coords).all(axis=1)
    table = labels.loc[labelled, ["frame_id", "subject_id", "use_for_training"]].copy()
    table["head_size_mm"], table["hc_is_ref"] = frame_head_size(labels.loc[labelled])
    table = table.sort_values("frame_id").reset_index(drop=True)
    table["use_for_training"] = table["use_for_training"].astype(str).str.lower().isin(["true", "1"])
    moved, threshold = [], None
    if method == "hash":
        table["split"], moved = assign_splits(table["frame_id"], table["subject_id"],
                                              table["use_for_training"], fractions, seed, grouped)
    else:
        units = table["subject_id" if grouped else "frame_id"].astype(str).to_numpy()
        sizes = unit_head_sizes(units, table["head_size_mm"], head_size["subject_stat"])
        assigned, threshold = head_size_assign(sizes, fractions, seed, head_size)
        assigned, moved = guard_train_val(assigned, set(units[table["use_for_training"].to_numpy(bool)]), seed)
        table["split"] = [assigned[u] for u in units]
    check_usable(table, policy, grouped)
    report = (head_size_report(table, threshold, head_size if method == "head_size" else None)
              if method == "head_size" or table["hc_is_ref"].any() else None)
    table = table[table["split"] != LEFT_OUT].reset_index(drop=True)
    subjects_per = table.groupby("subject_id")["split"].nunique()
    summary = {name: {"frames": int((table["split"] == name).sum()),
                      "subjects": int(table.loc[table["split"] == name, "subject_id"].nunique()),
                      "usable_frames": int((table["use_for_training"] & (table["split"] == name)).sum())}
               for name in SPLITS}
    summary.update(unlabelled_frames=int((~labelled).sum()), subject_overlap=int((subjects_per > 1).sum()),
                   grouped=bool(grouped), method="sha256", guard_moved=[list(m) for m in moved],
                   subject_id_from_stem=_stem_subjects(labels))
    if method == "head_size":
        summary["split_method"] = "head_size"
    if report is not None:
        summary["head_size"] = report
    return table[["frame_id", "subject_id", "split"]], summary


def _stem_subjects(labels: pd.DataFrame) -> int:
    """Subjects whose id fell back to the file stem (column ``subject_source``; 0 without it)."""
    if "subject_source" not in labels.columns:
        return 0
    stem = labels["subject_source"].astype(str) == "stem"
    return int(labels.loc[stem, "subject_id"].nunique())

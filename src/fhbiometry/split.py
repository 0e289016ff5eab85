"""Train/val/test split, grouped by subject: no subject's frames in two splits."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit

from .geometry import COORD_COLUMNS
from .params import ParamError

SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


def check_fractions(fractions: dict) -> dict:
    if not isinstance(fractions, dict) or set(fractions) != set(SPLITS):
        raise ParamError(f"params.yaml: split.fractions must have exactly the keys {list(SPLITS)}, "
                         f"got {fractions!r}")
    values = {k: float(fractions[k]) for k in SPLITS}
    if any(v <= 0 for v in values.values()) or abs(sum(values.values()) - 1.0) > 1e-6:
        raise ParamError(f"params.yaml: split.fractions must be positive and sum to 1, got {values}")
    return values


def assign_splits(frame_ids, groups, fractions: dict, seed: int, grouped: bool = True) -> np.ndarray:
    """Return the split name of every frame.

    grouped: subjects (``groups``) are assigned whole, two seeded GroupShuffleSplits aim at the
    fractions by subject; otherwise frames are assigned at random (subjects leak across splits).
    """
    f = check_fractions(fractions)
    frame_ids = np.asarray(frame_ids)
    groups = np.asarray(groups)
    n_units = len(np.unique(groups)) if grouped else len(frame_ids)
    if n_units < 3:
        unit = "subjects" if grouped else "frames"
        raise ValueError(f"split: {n_units} labelled {unit}; at least 3 are needed for train/val/test")
    out = np.empty(len(frame_ids), dtype=object)
    index = np.arange(len(frame_ids))
    test_size = f["test"]
    val_size = f["val"] / (f["train"] + f["val"])
    if grouped:
        first = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        rest, test = next(first.split(index, groups=groups))
        second = GroupShuffleSplit(n_splits=1, test_size=val_size, random_state=seed + 1)
        train, val = next(second.split(rest, groups=groups[rest]))
    else:
        log.warning("split.grouped is false: frames of one subject may land in different splits "
                    "(this inflates accuracy; use it only for the ablation)")
        rest, test = next(ShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(index))
        train, val = next(ShuffleSplit(n_splits=1, test_size=val_size, random_state=seed + 1).split(rest))
    out[test] = "test"
    out[rest[train]] = "train"
    out[rest[val]] = "val"
    for name in SPLITS:
        if not (out == name).any():
            raise ValueError(f"split: the {name} split came out empty with fractions {f} on {n_units} "
                             "units; add data or change split.fractions")
    return out.astype(str)


def make_split(labels: pd.DataFrame, fractions: dict, seed: int, grouped: bool = True
               ) -> tuple[pd.DataFrame, dict]:
    """labels: data/qc/labels.csv. Frames without four finite points are not split."""
    coords = labels[list(COORD_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    labelled = np.isfinite(coords).all(axis=1)
    table = labels.loc[labelled, ["frame_id", "subject_id"]].sort_values("frame_id").reset_index(drop=True)
    table["split"] = assign_splits(table["frame_id"].to_numpy(), table["subject_id"].astype(str).to_numpy(),
                                   fractions, seed, grouped)
    subjects_per = table.groupby("subject_id")["split"].nunique()
    summary = {name: {"frames": int((table["split"] == name).sum()),
                      "subjects": int(table.loc[table["split"] == name, "subject_id"].nunique())}
               for name in SPLITS}
    summary.update(unlabelled_frames=int((~labelled).sum()),
                   subject_overlap=int((subjects_per > 1).sum()), grouped=bool(grouped))
    return table, summary

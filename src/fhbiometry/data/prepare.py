"""Stage `prepare`: every frame letterboxed into the network input, with its points in input
pixels, one archive per split (docs/architecture.md, contract 5). Training targets are encoded
per batch by the model's codec, after augmentation, so none are stored here.

The one rule for which frames count (training, validation, evaluation): ``accepted_rows``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from fhbiometry.core.geometry import COORD_COLUMNS, CSV_COLUMNS, REF_COLUMNS, canonical_order
from fhbiometry.core.letterbox import Letterbox, to_input
from fhbiometry.config.paths import SPLITS

ARRAYS = ("image", "points", "transform", "points_orig", "spacing_mm", "label_ok", "use_for_training")


def table_points(df: pd.DataFrame, columns) -> np.ndarray:
    """(N, 4, 2) points from the 8 ``columns`` of ``df`` (NaN where absent or not numeric)."""
    if not set(columns) <= set(df.columns):
        return np.full((len(df), 4, 2), np.nan)
    values = df[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    return values.reshape(-1, 4, 2)


def accepted_rows(data: dict) -> np.ndarray:
    """Frames whose label the QC policy accepts (``use_for_training``: every label that passed QC
    under ``qc.policy: exclude``, every finite label under ``keep``) and whose four points are
    finite. Training, validation and the evaluation metrics all use this rule."""
    finite = np.isfinite(np.asarray(data["points_orig"], np.float64)).all(axis=(1, 2))
    return np.asarray(data["use_for_training"]).astype(bool) & finite


def select(data: dict, mask) -> dict:
    mask = np.asarray(mask, dtype=bool)
    return {k: np.asarray(v)[mask] for k, v in data.items()}


def check_prepared(data: dict, input_size: int, path) -> None:
    """The prepared arrays must be complete and built for this input size."""
    missing = [k for k in ARRAYS if k not in data]
    if missing:
        raise KeyError(f"{path}: missing arrays {missing}: rerun `dvc repro prepare`")
    size = np.asarray(data["image"]).shape[-1]
    if size != input_size:
        raise ValueError(f"{path}: images are {size} px but input.size is {input_size}: rerun `dvc repro prepare`")


def label_arrays(table: pd.DataFrame, canonical: bool) -> dict:
    """Labels, references, ids and flags of one split's QC rows (contract 3)."""
    n = len(table)
    out = {
        "points_orig": table_points(table, COORD_COLUMNS),
        "points_ref": table_points(table, REF_COLUMNS),
        "points_csv": table_points(table, CSV_COLUMNS),
        "spacing_mm": table["spacing_mm"].to_numpy(np.float64),
        "width": table["width"].to_numpy(np.int64),
        "height": table["height"].to_numpy(np.int64),
        "frame_id": table["frame_id"].astype(str).to_numpy().astype("U"),
        "subject_id": table["subject_id"].astype(str).to_numpy().astype("U"),
        "label_ok": table["label_ok"].astype(bool).to_numpy(),
        "use_for_training": table["use_for_training"].astype(bool).to_numpy(),
        "csv_ok": table["csv_ok"].astype(bool).to_numpy() if "csv_ok" in table else np.zeros(n, bool),
        "ref_ok": table["ref_ok"].astype(bool).to_numpy() if "ref_ok" in table else np.zeros(n, bool),
    }
    if "hc_ref_mm" in table:  # a reference head circumference (e.g. HC18's pixel_size.csv), when configured
        out["hc_ref_mm"] = pd.to_numeric(table["hc_ref_mm"], errors="coerce").to_numpy(np.float64)
    if canonical:
        for key in ("points_orig", "points_ref", "points_csv"):
            finite = np.isfinite(out[key]).all(axis=(1, 2))
            out[key][finite] = canonical_order(out[key][finite])
    return out


def prepare_split(frames: dict, table: pd.DataFrame, letterbox: Letterbox, canonical: bool = True,
                  desc: str = "") -> dict:
    """Letterbox every frame of ``table`` (the QC label rows of one split) and map its points.

    ``canonical`` puts the two ends of each pair in the canonical order (docs/landmarks.md);
    turning it off keeps the order as labelled (the seed's recipe, for the ablation).
    """
    out = label_arrays(table, canonical)
    n, s = len(table), letterbox.size
    out["image"] = np.zeros((n, s, s), np.uint8)
    out["points"] = np.zeros((n, 4, 2), np.float32)
    out["transform"] = np.zeros((n, 4), np.float64)
    for i, frame_id in enumerate(tqdm(out["frame_id"], desc=desc or "frames", leave=False)):
        if frame_id not in frames:
            raise KeyError(f"frame {frame_id!r} is in data/qc/labels.csv but not in the frames archive: "
                           "rerun `dvc repro extract_frames`")
        image = frames[frame_id]
        if image.shape != (out["height"][i], out["width"][i]):
            raise ValueError(f"frame {frame_id!r}: archive shape {image.shape} differs from the manifest "
                             f"({out['height'][i]}x{out['width'][i]}): rerun `dvc repro`")
        out["image"][i], out["transform"][i] = letterbox.image_to_input(image)
        out["points"][i] = to_input(out["points_orig"][i], out["transform"][i])
    return out


def prepare_all(frames: dict, labels: pd.DataFrame, split: pd.DataFrame, letterbox: Letterbox,
                canonical: bool = True) -> tuple[dict, dict]:
    """Returns ({split: arrays}, meta)."""
    merged = labels.merge(split[["frame_id", "split"]], on="frame_id", how="inner", validate="one_to_one")
    missing = sorted(set(split["frame_id"]) - set(labels["frame_id"]))
    if missing:
        raise KeyError(f"data/split/split.csv names frames absent from data/qc/labels.csv "
                       f"(first: {missing[:5]}): rerun `dvc repro split`")
    result, counts = {}, {}
    for name in SPLITS:
        part = merged[merged["split"] == name].sort_values("frame_id").reset_index(drop=True)
        result[name] = prepare_split(frames, part, letterbox, canonical=canonical, desc=name)
        counts[name] = {"frames": int(len(part)),
                        "label_ok": int(part["label_ok"].astype(bool).sum()),
                        "use_for_training": int(part["use_for_training"].astype(bool).sum())}
    meta = {"input": letterbox.to_dict(), "canonical_order": bool(canonical), "counts": counts}
    return result, meta

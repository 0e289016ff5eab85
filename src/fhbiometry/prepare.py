"""Network inputs and Gaussian heatmap targets for every frame, one archive per split."""
from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from .codec import Codec
from .geometry import COORD_COLUMNS, CSV_COLUMNS, REF_COLUMNS, canonical_order

SPLITS = ("train", "val", "test")


def _points(df: pd.DataFrame, columns) -> np.ndarray:
    if not set(columns) <= set(df.columns):
        return np.full((len(df), 4, 2), np.nan)
    values = df[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    return values.reshape(-1, 4, 2)


def prepare_split(frames: dict, table: pd.DataFrame, codec: Codec, canonical: bool = True,
                  desc: str = "") -> dict:
    """Letterbox every frame of ``table`` and encode its heatmaps.

    ``table`` holds the QC label rows of one split (contract 3 in docs/architecture.md).
    ``canonical`` puts the two ends of each pair in the canonical order (docs/landmarks.md);
    turning it off keeps the order as labelled (the seed's recipe, for the ablation).
    """
    n = len(table)
    s, h = codec.input_size, codec.heatmap_size
    out = {
        "image": np.zeros((n, s, s), np.uint8),
        "points": np.zeros((n, 4, 2), np.float32),
        "heatmaps": np.zeros((n, 4, h, h), np.float16),
        "transform": np.zeros((n, 4), np.float64),
        "points_orig": _points(table, COORD_COLUMNS),
        "points_ref": _points(table, REF_COLUMNS),
        "points_csv": _points(table, CSV_COLUMNS),
        "spacing_mm": table["spacing_mm"].to_numpy(np.float64),
        "width": table["width"].to_numpy(np.int64),
        "height": table["height"].to_numpy(np.int64),
        "frame_id": table["frame_id"].astype(str).to_numpy().astype("U"),
        "subject_id": table["subject_id"].astype(str).to_numpy().astype("U"),
        "label_ok": table["label_ok"].astype(bool).to_numpy(),
        "use_for_training": table["use_for_training"].astype(bool).to_numpy(),
        "csv_ok": (table["csv_ok"].astype(bool).to_numpy() if "csv_ok" in table
                   else np.zeros(n, bool)),
        "ref_ok": (table["ref_ok"].astype(bool).to_numpy() if "ref_ok" in table
                   else np.zeros(n, bool)),
    }
    if canonical:
        for key in ("points_orig", "points_ref", "points_csv"):
            finite = np.isfinite(out[key]).all(axis=(1, 2))
            out[key][finite] = canonical_order(out[key][finite])
    for i, frame_id in enumerate(tqdm(out["frame_id"], desc=desc or "frames", leave=False)):
        if frame_id not in frames:
            raise KeyError(f"frame {frame_id!r} is in data/qc/labels.csv but not in the frames archive: "
                           "rerun `dvc repro extract_frames`")
        image = frames[frame_id]
        if image.shape != (out["height"][i], out["width"][i]):
            raise ValueError(f"frame {frame_id!r}: archive shape {image.shape} differs from the manifest "
                             f"({out['height'][i]}x{out['width'][i]}): rerun `dvc repro`")
        out["image"][i], out["transform"][i] = codec.image_to_input(image)
        pts_in = codec.to_input(out["points_orig"][i], out["transform"][i])
        out["points"][i] = pts_in
        out["heatmaps"][i] = codec.encode_heatmaps(pts_in).astype(np.float16)
    return out


def prepare_all(frames: dict, labels: pd.DataFrame, split: pd.DataFrame, codec: Codec,
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
        result[name] = prepare_split(frames, part, codec, canonical=canonical, desc=name)
        counts[name] = {"frames": int(len(part)),
                        "label_ok": int(part["label_ok"].astype(bool).sum()),
                        "use_for_training": int(part["use_for_training"].astype(bool).sum())}
    meta = {"codec": codec.to_dict(), "canonical_order": bool(canonical), "counts": counts,
            "heatmap_size": codec.heatmap_size}
    return result, meta

"""Near-duplicate frames across the split: leakage that subject ids cannot see.

Each frame gets a 64-bit difference hash (dHash): the frame is averaged over a grid of
8 rows x 9 columns of blocks, and bit ``8 * r + c`` says whether block (r, c) is darker than
block (r, c + 1). Block sums and their comparison are integer arithmetic, so the hash is the
same on every CPU. Two frames are near duplicates when their hashes differ in at most
``max_distance`` bits. docs/leakage.md gives the measured threshold.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fhbiometry.core.choices import SPLITS
from fhbiometry.core.store import load_npz


ROWS, COLS = 8, 9
PAIR_NAMES = ("train-val", "train-test", "val-test")
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def dhash(image: np.ndarray) -> int:
    """The 64-bit dHash of a 2-D image (any integer dtype), as a Python int."""
    img = np.asarray(image)
    if img.ndim != 2 or img.shape[0] < ROWS or img.shape[1] < COLS:
        raise ValueError(f"dhash needs a 2-D image of at least {ROWS}x{COLS} pixels, got {img.shape}")
    h, w = img.shape
    r_edges = (np.arange(ROWS + 1) * h) // ROWS
    c_edges = (np.arange(COLS + 1) * w) // COLS
    sums = np.add.reduceat(np.add.reduceat(img.astype(np.int64), r_edges[:-1], axis=0),
                           c_edges[:-1], axis=1)
    area = np.diff(r_edges)[:, None] * np.diff(c_edges)[None, :]
    # mean(r, c) < mean(r, c+1)  <=>  sum(r, c) * area(r, c+1) < sum(r, c+1) * area(r, c)
    bits = (sums[:, :-1] * area[:, 1:]) < (sums[:, 1:] * area[:, :-1])
    return int("".join("1" if b else "0" for b in bits.ravel()), 2)


def hash_frames(frames: dict, frame_ids) -> np.ndarray:
    """uint64 hashes of ``frames[frame_id]`` in the order of ``frame_ids``."""
    missing = [f for f in frame_ids if f not in frames]
    if missing:
        raise KeyError(f"data/frames/frames.npz has no frame {missing[0]!r} ({len(missing)} missing): "
                       "rerun extract_frames and qc (`dvc repro split`)")
    return np.array([dhash(frames[f]) for f in frame_ids], dtype=np.uint64)


def hamming_pairs(hashes: np.ndarray, max_distance: int, chunk: int = 256) -> np.ndarray:
    """All pairs (i, j, distance), i < j, with Hamming distance <= max_distance, sorted."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    found = []
    for start in range(0, len(hashes), chunk):
        block = hashes[start:start + chunk, None] ^ hashes[None, :]
        dist = _POPCOUNT[block.view(np.uint8).reshape(block.shape + (8,))].sum(axis=-1)
        i, j = np.nonzero(dist <= max_distance)
        i = i + start
        keep = i < j
        found.append(np.stack([i[keep], j[keep], dist[i[keep] - start, j[keep]]], axis=1))
    pairs = np.concatenate(found) if found else np.zeros((0, 3), int)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].astype(np.int64)


def cross_split_report(split: pd.DataFrame, frames: dict, cfg: dict, examples: int = 5) -> dict:
    """Near-duplicate pairs of ``split`` (frame_id, subject_id, split) counted per split pair."""
    table = split.sort_values("frame_id").reset_index(drop=True)
    hashes = hash_frames(frames, table["frame_id"].tolist())
    pairs = hamming_pairs(hashes, cfg["max_distance"])
    names = table["split"].to_numpy(str)
    subjects = table["subject_id"].astype(str).to_numpy()
    ids = table["frame_id"].to_numpy(str)
    counts = dict.fromkeys(PAIR_NAMES, 0)
    shown = []
    for i, j, d in pairs:
        if names[i] == names[j]:
            continue
        key = "-".join(sorted((names[i], names[j]), key=SPLITS.index))
        counts[key] += 1
        if len(shown) < examples:
            shown.append({"a": str(ids[i]), "b": str(ids[j]), "distance": int(d), "splits": key})
    return {"hash": "dhash64", "max_distance": cfg["max_distance"], "on_leak": cfg["on_leak"],
            "frames": len(table), "pairs": len(pairs),
            "cross_subject_pairs": int((subjects[pairs[:, 0]] != subjects[pairs[:, 1]]).sum()),
            "cross_split": counts, "cross_split_total": int(sum(counts.values())), "examples": shown}


def enforce(report: dict) -> None:
    """Raise when on_leak is fail and near duplicates cross the split."""
    if report["on_leak"] == "fail" and report["cross_split_total"]:
        ex = ", ".join(f"{e['a']} ~ {e['b']} ({e['splits']}, {e['distance']} bits)" for e in report["examples"])
        raise ValueError(f"split: {report['cross_split_total']} near-duplicate frame pairs cross the split "
                         f"(dHash distance <= {report['max_distance']}; {report['cross_split']}), e.g. {ex}. "
                         "Give duplicates one subject id, remove them from the data, or set "
                         "split.near_duplicates.on_leak: report (metrics/split.json lists them)")


def measure(frames: dict, labels: pd.DataFrame, thresholds=(0, 2, 4, 6, 8, 10, 12)) -> pd.DataFrame:
    """Per threshold: recall of same-subject consecutive frame pairs (frame ids sorted within a
    subject) and the number of different-subject pairs flagged. For docs/leakage.md."""
    table = labels[["frame_id", "subject_id"]].astype(str).sort_values(["subject_id", "frame_id"])
    table = table.reset_index(drop=True)
    hashes = hash_frames(frames, table["frame_id"].tolist())
    subjects = table["subject_id"].to_numpy()
    consecutive = np.nonzero(subjects[1:] == subjects[:-1])[0]
    xor = hashes[consecutive] ^ hashes[consecutive + 1]
    cons_dist = _POPCOUNT[xor.view(np.uint8).reshape(-1, 8)].sum(axis=1)
    pairs = hamming_pairs(hashes, max(thresholds))
    cross = pairs[subjects[pairs[:, 0]] != subjects[pairs[:, 1]]]
    rows = [{"max_distance": t, "consecutive_pairs": len(consecutive),
             "recall": float((cons_dist <= t).mean()) if len(consecutive) else float("nan"),
             "cross_subject_pairs": int((cross[:, 2] <= t).sum())} for t in thresholds]
    return pd.DataFrame(rows)


def measure_files(frames_npz, labels_csv, thresholds=(0, 2, 4, 6, 8, 10, 12)) -> pd.DataFrame:
    """``measure`` on data/frames/frames.npz and data/qc/labels.csv (labelled frames or not)."""
    labels = pd.read_csv(labels_csv, dtype={"frame_id": str, "subject_id": str})
    return measure(load_npz(frames_npz), labels, thresholds)

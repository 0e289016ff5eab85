"""A refinement's data: the arrays of one split (the prepared form, docs/architecture.md
contract 5) with each frame's image replaced by a head-normalised crop of its ORIGINAL frame
and ``transform`` / ``points`` by the crop's (``core.crop``), so that training, validation and
the evaluation read them as they read the letterboxed inputs.

Validation and test crops are cut around the coarse model's heads (what the refinement will be
given in use); training crops around the true heads, ``copies`` per frame, each moved and scaled
as the coarse model errs on the validation frames (``box_errors``), times ``jitter``.
"""
from __future__ import annotations

import numpy as np

from fhbiometry.core.crop import box_errors, head_boxes, head_crops, jittered_boxes
from fhbiometry.core.letterbox import to_input
from fhbiometry.data.prepare import accepted_rows

FRAME_ARRAYS = ("image", "points", "transform")   # replaced by the crop's; every other array is kept


def frame_images(frames: dict, frame_ids) -> list:
    """The original frames of ``frame_ids`` from the frames archive (data/frames/frames.npz)."""
    missing = [f for f in frame_ids if f not in frames]
    if missing:
        raise KeyError(f"frames {missing[:3]} are not in data/frames/frames.npz: rerun `dvc repro extract_frames`")
    return [frames[f] for f in frame_ids]


def fallback_boxes(widths, heights, centres, lengths) -> tuple[np.ndarray, np.ndarray, int]:
    """Boxes where the given ones are not finite: the whole frame (centre, longer side)."""
    centres, lengths = np.array(centres, np.float64), np.array(lengths, np.float64)
    bad = ~(np.isfinite(centres).all(axis=1) & np.isfinite(lengths) & (lengths > 0))
    w, h = np.asarray(widths, np.float64), np.asarray(heights, np.float64)
    centres[bad] = np.stack([(w[bad] - 1) / 2, (h[bad] - 1) / 2], axis=1)
    lengths[bad] = np.maximum(w[bad], h[bad])
    return centres, lengths, int(bad.sum())


def crop_heads(images, heads, size: int, context: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Crops of the ORIGINAL ``images`` (2-D frames) around the heads of (N, 4, 2) ``heads``
    (original pixels): side ``context`` x the head's longer diameter, the whole frame where a head
    is not finite. Returns ((N, size, size) crops, (N, 4) transforms, frames that got the whole
    frame). The refine stages and ``fhbiometry predict`` (``apply``) both crop here."""
    images = [np.asarray(image) for image in images]
    heights = np.array([image.shape[0] for image in images], np.float64)
    widths = np.array([image.shape[1] for image in images], np.float64)
    centres, lengths, n_bad = fallback_boxes(widths, heights, *head_boxes(heads))
    crops, transforms = head_crops(images, centres, context * lengths, size)
    return crops, transforms, n_bad


def cropped_split(arrays: dict, frames: dict, heads, size: int, context: float) -> tuple[dict, int]:
    """``arrays`` with every frame cropped around the head of its (N, 4, 2) ``heads`` (original
    pixels): side ``context`` x the head's longer diameter. Returns (arrays, frames whose head was
    not finite and got the whole frame)."""
    out = {k: np.asarray(v) for k, v in arrays.items() if k not in FRAME_ARRAYS}
    out["image"], out["transform"], n_bad = crop_heads(frame_images(frames, arrays["frame_id"]), heads, size,
                                                       context)
    out["points"] = to_input(np.asarray(arrays["points_orig"], np.float64), out["transform"]).astype(np.float32)
    out["crop_heads"] = np.asarray(heads, np.float64)
    return out, n_bad


def training_crops(arrays: dict, frames: dict, errors: dict, cfg: dict, seed: int) -> dict:
    """``cfg['copies']`` crops per accepted training frame around its true head, jittered by
    ``errors`` (``box_errors`` of the coarse model on validation) x ``cfg['jitter']``."""
    keep = accepted_rows(arrays)
    kept = {k: np.asarray(v)[keep] for k, v in arrays.items()}
    rng = np.random.default_rng([int(seed), 20261204])
    rows, centres, lengths = jittered_boxes(kept["points_orig"], rng, errors["centre_sd"] * cfg["jitter"],
                                            errors["scale_sd"] * cfg["jitter"], int(cfg["copies"]))
    out = {k: v[rows] for k, v in kept.items() if k not in FRAME_ARRAYS}
    out["image"], out["transform"] = head_crops(frame_images(frames, kept["frame_id"][rows]), centres,
                                                float(cfg["context"]) * lengths, int(cfg["size"]))
    out["points"] = to_input(kept["points_orig"][rows], out["transform"]).astype(np.float32)
    out["crop_heads"] = np.full((len(rows), 4, 2), np.nan)
    return out


def coarse_errors(val: dict, heads) -> dict:
    """The coarse model's head-box errors on the accepted validation frames."""
    keep = accepted_rows(val)
    return box_errors(np.asarray(heads, np.float64)[keep], np.asarray(val["points_orig"], np.float64)[keep])

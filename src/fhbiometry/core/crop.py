"""Head-normalised crops: a square window of the ORIGINAL frame centred on a head and sized to it.

A crop of side ``side`` original pixels centred at ``centre`` is resampled to ``size`` x ``size``
pixels (Pillow's antialiasing bilinear resize of the window, zero outside the frame). It is an
axis-aligned scale and shift, so it has the letterbox's affine form ``[s, s, tx, ty]``
(``letterbox.to_input`` / ``to_original`` map points both ways) and every stage that reads a
letterbox ``transform`` reads a crop's. Conventions as in ``letterbox``: integer coordinates are
pixel centres. The head's box of four points: the mean of the points as the centre, the longer
diameter (the OFD) as its length; the crop's side is ``context`` times that length.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from fhbiometry.core.geometry import diameters


def head_boxes(points) -> tuple[np.ndarray, np.ndarray]:
    """((N, 2) centres, (N,) lengths) of (N, 4, 2) points: the mean point and the longer diameter."""
    p = np.asarray(points, np.float64)
    return p.mean(axis=1), diameters(p).max(axis=-1)


def crop_transform(centre, side: float, size: int) -> np.ndarray:
    """[s, s, tx, ty] mapping original pixels to the crop's pixels: the window's centre goes to
    the crop's centre ((size - 1) / 2) and ``side`` original pixels to ``size`` crop pixels."""
    s = size / float(side)
    cx, cy = (float(c) for c in centre)
    return np.array([s, s, 0.5 * size - 0.5 - cx * s, 0.5 * size - 0.5 - cy * s])


def crop_image(image: np.ndarray, centre, side: float, size: int) -> np.ndarray:
    """The (size, size) uint8 crop of a 2-D uint8 ``image`` (``crop_transform`` maps its points)."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    if not (side > 0 and math.isfinite(side)) or not np.isfinite(centre).all():
        raise ValueError(f"a crop needs a finite centre and a positive side, got {centre}, {side}")
    x0, y0 = (float(c) + 0.5 - 0.5 * side for c in centre)   # window corners, pixel-edge coordinates
    ix0, iy0 = math.floor(x0) - 1, math.floor(y0) - 1
    ix1, iy1 = math.ceil(x0 + side) + 1, math.ceil(y0 + side) + 1
    window = np.zeros((iy1 - iy0, ix1 - ix0), np.uint8)
    h, w = image.shape
    sx0, sy0, sx1, sy1 = max(ix0, 0), max(iy0, 0), min(ix1, w), min(iy1, h)
    if sx1 > sx0 and sy1 > sy0:
        window[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0] = image[sy0:sy1, sx0:sx1]
    box = (x0 - ix0, y0 - iy0, x0 - ix0 + side, y0 - iy0 + side)
    return np.asarray(Image.fromarray(window).resize((size, size), Image.BILINEAR, box=box))


def head_crops(images, centres, sides, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops of a sequence of 2-D frames: ((N, size, size) uint8, (N, 4) transforms)."""
    out = np.zeros((len(centres), size, size), np.uint8)
    transforms = np.zeros((len(centres), 4), np.float64)
    for i, (image, centre, side) in enumerate(zip(images, centres, sides)):
        out[i] = crop_image(np.asarray(image), centre, float(side), size)
        transforms[i] = crop_transform(centre, float(side), size)
    return out, transforms


def box_errors(pred, true) -> dict:
    """How far a coarse model's head boxes are from the true ones, over frames where both are
    finite: ``centre_sd`` (root mean square of the centre's offset per axis, in units of the true
    length) and ``scale_sd`` (root mean square of log(predicted length / true length))."""
    (pc, pl), (tc, tl) = head_boxes(pred), head_boxes(true)
    ok = np.isfinite(pc).all(axis=1) & np.isfinite(tc).all(axis=1) & (pl > 0) & (tl > 0)
    if not ok.any():
        raise ValueError("no frame with a finite prediction and label to measure the coarse model's errors on")
    offset = (pc[ok] - tc[ok]) / tl[ok, None]
    scale = np.log(pl[ok] / tl[ok])
    return {"frames": int(ok.sum()), "centre_sd": float(np.sqrt(np.mean(offset ** 2))),
            "scale_sd": float(np.sqrt(np.mean(scale ** 2)))}


def jittered_boxes(points, rng: np.random.Generator, centre_sd: float, scale_sd: float,
                   copies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``copies`` boxes per frame around the true head boxes of (N, 4, 2) ``points``, each moved
    and scaled as a coarse model with those errors would: centre + N(0, centre_sd * length) per
    axis, length * exp(N(0, scale_sd)). Returns (rows (N * copies,) into the frames, centres,
    lengths), the frames in order, each repeated ``copies`` times."""
    centres, lengths = head_boxes(points)
    rows = np.repeat(np.arange(len(centres)), copies)
    shift = rng.standard_normal((len(rows), 2)) * centre_sd * lengths[rows, None]
    scale = np.exp(rng.standard_normal(len(rows)) * scale_sd)
    return rows, centres[rows] + shift, lengths[rows] * scale

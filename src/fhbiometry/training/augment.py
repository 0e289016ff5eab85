"""Joint augmentation of a letterboxed network input (S x S uint8) and its landmarks.

Geometry: one affine about the image centre (rotation, isotropic scale, shift, horizontal and
vertical flip), applied to the image (bilinear, zero fill) and to the (4, 2) input-pixel points
with the same matrix; the canonical pair order is re-applied afterwards (a flip swaps the
ends). Draws whose landmarks would leave the image are redrawn (up to ``MAX_TRIES`` times,
then the geometry is left unchanged). With probability ``edge_cut`` a further shift puts one
landmark at or past the image edge (``edge_cut_matrix``): the head is cut by the border, as in
frames where the probe did not capture the whole skull; that landmark's target then lies partly
or wholly outside the input (a clipped Gaussian; a regression target outside [0, 1]). With
``edge_cut: 0`` (the default) no extra number is drawn: the outputs are those without the option.
Photometric: gamma and gain jitter, Gaussian blur, multiplicative speckle.
Training targets are encoded from the transformed points by the model's codec.

Settings (params ``train.augment``, validated by ``config.sections_model.Augment``): enabled, rotation_deg, scale [lo, hi], shift (fraction of
S), hflip, vflip (probabilities), contrast (jitter strength), blur, speckle, edge_cut (probabilities).
A ``scale`` range wider than the training heads' spread shows heads larger and smaller than any
in the training set.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from fhbiometry.core.geometry import canonical_order

MAX_TRIES = 10
BLUR_SIGMA = (0.5, 1.5)     # Gaussian blur sd range, input pixels
SPECKLE_SD = (0.05, 0.25)   # sd range of the multiplicative noise
EDGE_DEPTH = (-0.02, 0.12)  # edge cut: how far past the border a landmark lands (fraction of S)


def affine_matrix(size: int, angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0),
                  hflip: bool = False, vflip: bool = False) -> np.ndarray:
    """2x3 matrix ``M`` with ``p' = M[:, :2] @ p + M[:, 2]`` for (x, y) input pixels: flip, then
    scale and rotate about the image centre ((S-1)/2, (S-1)/2), then shift by ``shift`` pixels."""
    c = np.full(2, (size - 1) / 2.0)
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    flip = np.diag([-1.0 if hflip else 1.0, -1.0 if vflip else 1.0])
    lin = scale * rot @ flip
    offset = c + np.asarray(shift, dtype=np.float64) - lin @ c
    return np.concatenate([lin, offset[:, None]], axis=1)


def transform_points(points, matrix) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) (x, y) points."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def warp_image(image: np.ndarray, matrix) -> np.ndarray:
    """Warp a 2-D uint8 image with the (x, y) affine ``matrix`` (bilinear, zero fill)."""
    m = np.asarray(matrix, dtype=np.float64)
    inv = np.linalg.inv(m[:, :2])
    inv_offset = -inv @ m[:, 2]
    # scipy works in (row, col) = (y, x) and maps output coordinates to input coordinates
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = ndimage.affine_transform(image.astype(np.float32), swap @ inv @ swap, offset=swap @ inv_offset,
                                   order=1, mode="constant", cval=0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def random_matrix(rng: np.random.Generator, size: int, cfg: dict) -> np.ndarray:
    """One random affine from the settings (always the same number of draws)."""
    angle = rng.uniform(-cfg["rotation_deg"], cfg["rotation_deg"])
    scale = rng.uniform(cfg["scale"][0], cfg["scale"][1])
    shift = rng.uniform(-cfg["shift"], cfg["shift"], size=2) * size
    hflip = rng.random() < cfg["hflip"]
    vflip = rng.random() < cfg["vflip"]
    return affine_matrix(size, angle, scale, shift, hflip, vflip)


def edge_cut_matrix(matrix, points, size: int, rng: np.random.Generator) -> np.ndarray:
    """``matrix`` followed by a shift towards a random border that puts the landmark nearest to
    it from ``EDGE_DEPTH[0] * size`` inside to ``EDGE_DEPTH[1] * size`` past it, never so far that
    a second landmark leaves the image. Always draws two numbers (which border, how deep);
    returns ``matrix`` unchanged when a landmark is not finite."""
    side = int(rng.integers(4))          # 0 left, 1 right, 2 top, 3 bottom
    u = rng.random()
    moved = transform_points(points, matrix)
    if not np.isfinite(moved).all():
        return matrix
    axis = side // 2
    gaps = moved[:, axis] if side % 2 == 0 else size - 1 - moved[:, axis]
    first, second = np.sort(gaps)[:2]
    low, high = EDGE_DEPTH[0] * size, min(EDGE_DEPTH[1] * size, second - first)
    depth = low + u * max(high - low, 0.0)
    shift = np.zeros(2)
    shift[axis] = -(first + depth) if side % 2 == 0 else first + depth
    candidate = np.asarray(matrix, np.float64).copy()
    candidate[:, 2] += shift
    return candidate


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: dict) -> np.ndarray:
    """Gamma/gain jitter, then blur and speckle with their probabilities. Black stays black."""
    x = image.astype(np.float64) / 255.0
    c = cfg["contrast"]
    gamma = np.exp(rng.uniform(-c, c))
    gain = 1.0 + rng.uniform(-c, c)
    x = gain * x ** gamma
    if rng.random() < cfg["blur"]:
        x = ndimage.gaussian_filter(x, sigma=rng.uniform(*BLUR_SIGMA))
    if rng.random() < cfg["speckle"]:
        sd = rng.uniform(*SPECKLE_SD)
        x = x * np.maximum(1.0 + sd * rng.standard_normal(x.shape), 0.0)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def augment_sample(image: np.ndarray, points, rng: np.random.Generator, cfg: dict,
                   canonical: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Augment one (S, S) uint8 image and its (4, 2) input-pixel points.

    ``cfg`` is a validated ``train.augment`` section; ``enabled: false`` returns unchanged copies.
    ``canonical`` re-applies ``geometry.canonical_order`` after the geometric change.
    """
    image = np.asarray(image)
    pts = np.asarray(points, dtype=np.float64)
    if not cfg["enabled"]:
        return image.copy(), pts.copy()
    size = image.shape[-1]
    matrix = affine_matrix(size)
    for _ in range(MAX_TRIES):
        candidate = random_matrix(rng, size, cfg)
        moved = transform_points(pts, candidate)
        finite = np.isfinite(moved).all(axis=-1)
        if ((moved[finite] >= 0) & (moved[finite] <= size - 1)).all():
            matrix = candidate
            break
    edge = float(cfg.get("edge_cut", 0.0))
    if edge > 0 and rng.random() < edge:
        matrix = edge_cut_matrix(matrix, pts, size, rng)
    if not np.allclose(matrix, affine_matrix(size)):
        image = warp_image(image, matrix)
        pts = transform_points(pts, matrix)
        if canonical:
            pts = canonical_order(pts)
    image = photometric(image, rng, cfg)
    return image, pts


def augment_batch(images, points, rng: np.random.Generator, cfg: dict,
                  canonical: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``augment_sample`` over (N, S, S) images and (N, 4, 2) points."""
    out_img = np.empty_like(np.asarray(images))
    out_pts = np.empty(np.shape(points), dtype=np.float64)
    for i in range(len(out_img)):
        out_img[i], out_pts[i] = augment_sample(images[i], points[i], rng, cfg, canonical)
    return out_img, out_pts

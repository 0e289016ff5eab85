"""Test-time augmentation by rotation and zoom: the difficulty score ``tta`` of the intervals.

Each transform (degrees, zoom) resamples the letterboxed input about its centre (bilinear, zeros
outside), the network predicts the transformed image and its points are mapped back into the
untransformed input. How far the passes disagree on BPD, OFD and HC is the frame's score
(``trust.intervals.frame_features``; params ``intervals.tta_rotations_deg`` and
``intervals.tta_scales``; docs/predict.md, "Intervals"). Every backend serves: the images are
transformed before ``backend.outputs``.

Conventions: integer coordinates are pixel centres, so the centre of an S-pixel input is
(S - 1) / 2; a positive angle turns the image content counter-clockwise on the screen (y down).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def transforms_from(cfg: dict) -> tuple[tuple[float, float], ...]:
    """(degrees, zoom) pairs of params ``intervals``: each rotation at zoom 1, each zoom unrotated."""
    return (tuple((float(d), 1.0) for d in cfg.get("tta_rotations_deg", ()))
            + tuple((0.0, float(s)) for s in cfg.get("tta_scales", ())))


def _matrix(degrees: float, zoom: float) -> np.ndarray:
    """The 2 x 2 map of offsets from the centre, input -> transformed image."""
    t = math.radians(degrees)
    return zoom * np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])


def transform_images(images, degrees: float, zoom: float) -> np.ndarray:
    """(N, S, S) uint8 images rotated by ``degrees`` and zoomed by ``zoom`` about the centre."""
    x = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    inverse = np.linalg.inv(_matrix(degrees, zoom))   # transformed pixel -> where it comes from
    theta = torch.tensor(np.concatenate([inverse, np.zeros((2, 1))], axis=1), dtype=torch.float32)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=True)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return np.clip(np.rint(y[:, 0].numpy()), 0, 255).astype(np.uint8)


def untransform_points(points, degrees: float, zoom: float, size: int) -> np.ndarray:
    """(..., 2) points found on the transformed image, in the untransformed input's pixels."""
    centre = (size - 1) / 2.0
    inverse = np.linalg.inv(_matrix(degrees, zoom))
    return centre + (np.asarray(points, np.float64) - centre) @ inverse.T


def transform_points(points, degrees: float, zoom: float, size: int) -> np.ndarray:
    """(..., 2) input points where ``transform_images`` puts them (the inverse of the above)."""
    centre = (size - 1) / 2.0
    return centre + (np.asarray(points, np.float64) - centre) @ _matrix(degrees, zoom).T


def tta_points(backend, codec, images, transforms) -> np.ndarray:
    """(T, N, 4, 2) the points of every transform's pass, in the untransformed input's pixels."""
    images = np.asarray(images)
    out = [untransform_points(codec.decode(backend.outputs(transform_images(images, d, z))).points, d, z,
                              images.shape[-1]) for d, z in transforms]
    return np.stack(out) if out else np.zeros((0,) + images.shape[:1] + (4, 2))

"""Landmark geometry: names, canonical point order, diameters, ellipse axes.

Every landmark array in the project has shape ``(..., 4, 2)`` in the order of
``LANDMARKS`` with ``(x, y)`` in continuous pixel coordinates whose integer
values are pixel centres (x to the right, y down, as in image files and in the
HC18 landmark CSV).

Canonical order (used for training targets, see docs/landmarks.md):

* ``ofd_1`` is the left end of the OFD (smaller x; for an exactly vertical OFD,
  the upper end), ``ofd_2`` the right end.
* ``bpd_1`` is the end of the BPD on the left-hand side when walking from
  ``ofd_1`` to ``ofd_2``: for a horizontal OFD that is the upper end.

The rule only switches ends when the OFD passes through vertical; the BPD is
tied to the OFD, so the four points never disagree with each other.  Errors are
always evaluated pair-order invariantly (``pair_invariant_errors``).
"""
from __future__ import annotations

import numpy as np

LANDMARKS = ("ofd_1", "ofd_2", "bpd_1", "bpd_2")
COORD_COLUMNS = tuple(f"{name}_{axis}" for name in LANDMARKS for axis in ("x", "y"))
# Reference landmarks kept beside the labels: ``ref_*`` from the ellipse annotations, ``csv_*``
# from the landmark table (both in every table from the manifest on; empty where absent).
REF_COLUMNS = tuple(f"ref_{c}" for c in COORD_COLUMNS)
CSV_COLUMNS = tuple(f"csv_{c}" for c in COORD_COLUMNS)
OFD = (0, 1)
BPD = (2, 3)


def as_points(values) -> np.ndarray:
    """Return ``values`` (8 numbers or (..., 8) / (..., 4, 2)) as (..., 4, 2) float64."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape[-2:] == (4, 2):
        return arr
    if arr.shape[-1] != 8:
        raise ValueError(f"expected 8 coordinates or (4, 2) points, got shape {arr.shape}")
    return arr.reshape(arr.shape[:-1] + (4, 2))


def diameters(points) -> np.ndarray:
    """Return (..., 2): OFD and BPD lengths, in the units of ``points``."""
    p = as_points(points)
    ofd = np.linalg.norm(p[..., 1, :] - p[..., 0, :], axis=-1)
    bpd = np.linalg.norm(p[..., 3, :] - p[..., 2, :], axis=-1)
    return np.stack([ofd, bpd], axis=-1)


def swap_pairs(points) -> np.ndarray:
    """Exchange the OFD and BPD pairs (used when a table names them the other way round)."""
    p = as_points(points).copy()
    return p[..., [2, 3, 0, 1], :]


def anatomical_naming(points) -> tuple[np.ndarray, np.ndarray]:
    """Make the OFD the longer pair. Returns (points, swapped) where ``swapped`` is a bool array."""
    p = as_points(points)
    d = diameters(p)
    swapped = d[..., 0] < d[..., 1]
    out = np.where(swapped[..., None, None], swap_pairs(p), p)
    return out, swapped


def canonical_order(points) -> np.ndarray:
    """Reorder the two points of each pair by the rule in the module docstring."""
    p = as_points(points).copy()
    a, b = p[..., 0, :], p[..., 1, :]
    dx = b[..., 0] - a[..., 0]
    dy = b[..., 1] - a[..., 1]
    flip_ofd = (dx < 0) | ((dx == 0) & (dy < 0))
    ofd = np.where(flip_ofd[..., None, None], p[..., [1, 0], :], p[..., [0, 1], :])
    d = ofd[..., 1, :] - ofd[..., 0, :]
    centre = ofd.mean(axis=-2)
    v = p[..., 2, :] - centre
    w = p[..., 3, :] - centre
    # cross(d, v) < 0: left-hand side in image coordinates (y down).
    cross_v = d[..., 0] * v[..., 1] - d[..., 1] * v[..., 0]
    cross_w = d[..., 0] * w[..., 1] - d[..., 1] * w[..., 0]
    flip_bpd = cross_v > cross_w
    bpd = np.where(flip_bpd[..., None, None], p[..., [3, 2], :], p[..., [2, 3], :])
    return np.concatenate([ofd, bpd], axis=-2)


def pair_invariant_errors(pred, true) -> np.ndarray:
    """Radial error of every landmark, (..., 4), choosing within each pair the
    assignment of predicted to true ends that gives the smaller pair error."""
    p, t = as_points(pred), as_points(true)
    out = np.empty(p.shape[:-1], dtype=np.float64)
    for i, j in (OFD, BPD):
        same = np.stack([np.linalg.norm(p[..., i, :] - t[..., i, :], axis=-1),
                         np.linalg.norm(p[..., j, :] - t[..., j, :], axis=-1)], axis=-1)
        cross = np.stack([np.linalg.norm(p[..., j, :] - t[..., i, :], axis=-1),
                          np.linalg.norm(p[..., i, :] - t[..., j, :], axis=-1)], axis=-1)
        use_cross = cross.sum(-1) < same.sum(-1)
        best = np.where(use_cross[..., None], cross, same)
        out[..., i] = best[..., 0]
        out[..., j] = best[..., 1]
    return out


def ellipse_landmarks(cx, cy, semi_a, semi_b, angle_rad) -> np.ndarray:
    """Landmarks of an ellipse: OFD = major axis ends, BPD = minor axis ends (canonical order).

    ``semi_a`` and ``semi_b`` are the semi-axes (either may be the larger);
    ``angle_rad`` is the direction of ``semi_a`` from the +x axis (image coordinates).
    """
    if semi_b > semi_a:
        semi_a, semi_b = semi_b, semi_a
        angle_rad = angle_rad + np.pi / 2
    u = np.array([np.cos(angle_rad), np.sin(angle_rad)])
    v = np.array([-u[1], u[0]])
    c = np.array([cx, cy], dtype=np.float64)
    pts = np.stack([c - semi_a * u, c + semi_a * u, c - semi_b * v, c + semi_b * v])
    return canonical_order(pts)


def perpendicularity_deg(points) -> np.ndarray:
    """Deviation of the angle between the two diameters from 90 degrees, (...,)."""
    p = as_points(points)
    d1 = p[..., 1, :] - p[..., 0, :]
    d2 = p[..., 3, :] - p[..., 2, :]
    n = np.linalg.norm(d1, axis=-1) * np.linalg.norm(d2, axis=-1)
    cos = np.abs((d1 * d2).sum(-1)) / np.where(n > 0, n, np.nan)
    return np.degrees(np.arcsin(np.clip(cos, 0.0, 1.0)))


def midpoint_distance(points) -> np.ndarray:
    """Distance between the midpoints of the two pairs, (...,)."""
    p = as_points(points)
    return np.linalg.norm(p[..., :2, :].mean(-2) - p[..., 2:, :].mean(-2), axis=-1)


def to_mm(values_px, spacing_mm) -> np.ndarray:
    """Scale pixel distances or coordinates of the original image to millimetres: ``spacing_mm``
    (N,) broadcasts over the trailing axes of ``values_px`` (N, ...)."""
    s = np.asarray(spacing_mm, dtype=np.float64)
    v = np.asarray(values_px, dtype=np.float64)
    return v * s.reshape(s.shape + (1,) * (v.ndim - s.ndim))


def ellipse_perimeter(a, b) -> np.ndarray:
    """Perimeter of an ellipse with semi-axes ``a`` and ``b`` (Ramanujan's second approximation,
    relative error below 1e-9 for BPD/OFD ratios of fetal heads). The head circumference (HC) of
    a frame is ``ellipse_perimeter(OFD / 2, BPD / 2)``."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    b = np.abs(np.asarray(b, dtype=np.float64))
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(total > 0, ((a - b) / np.where(total > 0, total, 1.0)) ** 2, 0.0)
    return np.pi * total * (1 + 3 * h / (10 + np.sqrt(4 - 3 * h)))


def head_circumference(points) -> np.ndarray:
    """(...,) HC of the ellipse whose axes are the OFD and the BPD of ``points`` (their units)."""
    d = diameters(points)
    return ellipse_perimeter(d[..., 0] / 2, d[..., 1] / 2)

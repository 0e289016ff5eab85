"""Ellipse geometry of the contour codec (``codecs.contour``), pure numpy, in heatmap cells.

* ``band_distance``: the signed first-order (Sampson) distance of grid cells to an ellipse; the
  contour target is a Gaussian of it (zero exactly on the ellipse, so the band's ridge is the
  ellipse itself).
* ``ridge_points``: the contour channel's evidence as sub-cell ridge points, one per ray from a
  seed centre (the channel sampled by cubic splines along the ray, its maximum refined by a
  parabola through the log values, whose curvature gives the ridge's width: a speck narrower
  than the band is no skull). Fitting the ridge and not the raw pixels above a threshold
  avoids the pixels' outward bias: a band of width sigma around a curve of radius R holds more
  pixels outside than inside, which moves an algebraic fit out by about 1.5 sigma^2 / R.
* ``trim_gap_edges``: the rays beside a gap in the evidence are dropped (the cut band's ridge is
  displaced there).
* ``fit_conic``: the weighted direct least-squares ellipse fit of Fitzgibbon, Pilu & Fisher
  (1999) in the numerically stable form of Halir & Flusser (1998); ``robust_fit`` adds one
  reweighting pass (Cauchy weights of the Sampson residuals) that discounts outliers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

RAYS = 180                # rays of the ridge search
RAY_STEP = 0.1            # cells between samples along a ray
RAY_RANGE = (0.5, 1.6)    # the ray is searched from / to these multiples of the seed radius
MIN_POINTS = 12           # fewer ridge points than this: no fit
GAP_EDGE = 3.0            # cells of arc dropped on each side of a gap in the evidence
ROBUST_MIN_SCALE = 0.05   # cells: the Cauchy scale of the reweighting is at least this
ROBUST_MEDIANS = 2.0      # ... and at least this many median residuals


@dataclass(frozen=True)
class Ellipse:
    centre: np.ndarray      # (2,) x, y
    semi: np.ndarray        # (2,) semi-axes, the larger first
    axes: np.ndarray        # (2, 2) unit directions of the two semi-axes (rows)

    def ends(self) -> np.ndarray:
        """(2, 2, 2): for each axis (major, minor) its two ends c - s d, c + s d."""
        out = [np.stack([self.centre - s * d, self.centre + s * d]) for s, d in zip(self.semi, self.axes)]
        return np.stack(out)


def band_distance(shape, centre, a, b, angle) -> np.ndarray:
    """(H, W) Sampson distance (cells) of every cell to the ellipse (centre, semi-axes ``a``
    along ``angle`` and ``b`` across it): F / |grad F| with F = (u/a)^2 + (v/b)^2 - 1."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = xx - centre[0], yy - centre[1]
    u, v = c * dx + s * dy, -s * dx + c * dy
    f = (u / a) ** 2 + (v / b) ** 2 - 1.0
    grad = 2.0 * np.hypot(u / a ** 2, v / b ** 2)
    return f / np.maximum(grad, 1e-9)


def seed_radius(theta, a, b, angle) -> np.ndarray:
    """Distance from the centre to the seed ellipse along directions ``theta``."""
    t = np.asarray(theta) - angle
    return a * b / np.maximum(np.hypot(b * np.cos(t), a * np.sin(t)), 1e-9)


def ridge_points(channel, centre, a, b, angle, rays: int = RAYS):
    """(M, 2) ridge points (x, y cells), (M,) channel values there and (M,) ridge widths (the
    standard deviation, in cells, of the Gaussian through the three log samples at the maximum;
    0 where there is no maximum), one per ray from ``centre``, searched between ``RAY_RANGE``
    times the seed ellipse's radius."""
    channel = np.asarray(channel, np.float64)
    theta = np.arange(rays) * (2 * np.pi / rays)
    radius = seed_radius(theta, a, b, angle)
    n = max(3, int(np.ceil((RAY_RANGE[1] - RAY_RANGE[0]) * max(a, b) / RAY_STEP)))
    frac = np.linspace(RAY_RANGE[0], RAY_RANGE[1], n)
    r = radius[:, None] * frac[None, :]                              # (rays, n)
    x = centre[0] + r * np.cos(theta)[:, None]
    y = centre[1] + r * np.sin(theta)[:, None]
    values = ndimage.map_coordinates(channel, [y.ravel(), x.ravel()], order=3, mode="nearest").reshape(r.shape)
    best = np.clip(values.argmax(1), 1, n - 2)
    rows = np.arange(rays)
    lo, mid, hi = (np.log(np.maximum(values[rows, best + k], 1e-6)) for k in (-1, 0, 1))
    denom = lo - 2 * mid + hi
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(denom < 0, 0.5 * (lo - hi) / denom, 0.0)
    off = np.clip(np.nan_to_num(off), -1.0, 1.0)
    step = (frac[1] - frac[0]) * radius
    rr = r[rows, best] + off * step
    pts = np.stack([centre[0] + rr * np.cos(theta), centre[1] + rr * np.sin(theta)], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(denom < 0, step / np.sqrt(np.abs(denom)), 0.0)
    return pts, values[rows, best], np.nan_to_num(width)


def trim_gap_edges(keep, radius: float, edge: float = GAP_EDGE) -> np.ndarray:
    """Drop the rays within ``edge`` cells of arc (at ``radius``) of a dropped ray: beside a gap
    (shadow, sector edge) the band is cut off and its ridge there is displaced."""
    keep = np.asarray(keep, bool)
    if keep.all() or not keep.any():
        return keep
    k = int(np.ceil(edge * len(keep) / (2 * np.pi * max(radius, 1e-9))))
    out = keep.copy()
    for shift in range(1, k + 1):
        out &= np.roll(keep, shift) & np.roll(keep, -shift)
    return out


def fit_conic(points, weights) -> np.ndarray | None:
    """Weighted direct least-squares ellipse (Fitzgibbon; Halir & Flusser's stable form) of
    (M, 2) points: the conic (A, B, C, D, E, F) of A x^2 + B xy + C y^2 + D x + E y + F = 0,
    or None when no ellipse fits (too few points, singular scatter, no elliptic solution)."""
    p, w = np.asarray(points, np.float64), np.asarray(weights, np.float64)
    if len(p) < 6 or not np.isfinite(p).all() or w.sum() <= 0:
        return None
    mean = (w[:, None] * p).sum(0) / w.sum()
    scale = np.sqrt((w * ((p - mean) ** 2).sum(1)).sum() / w.sum())
    if not scale > 0:
        return None
    x, y = ((p - mean) / scale).T
    d1 = np.stack([x * x, x * y, y * y], 1)
    d2 = np.stack([x, y, np.ones_like(x)], 1)
    s1, s2, s3 = d1.T @ (w[:, None] * d1), d1.T @ (w[:, None] * d2), d2.T @ (w[:, None] * d2)
    try:
        t = -np.linalg.solve(s3, s2.T)
        m = s1 + s2 @ t
        m = np.array([m[2] / 2, -m[1], m[0] / 2])
        vals, vecs = np.linalg.eig(m)
    except np.linalg.LinAlgError:
        return None
    vecs = np.real(vecs)
    cond = 4 * vecs[0] * vecs[2] - vecs[1] ** 2
    good = np.flatnonzero(cond > 0)
    if len(good) != 1:
        return None
    a1 = vecs[:, good[0]]
    return denormalise(np.concatenate([a1, t @ a1]), mean, scale)


def denormalise(conic, mean, scale) -> np.ndarray:
    """The conic of normalised coordinates ((p - mean) / scale) in the original coordinates."""
    a, b, c, d, e, f = conic
    mx, my, k = mean[0], mean[1], 1.0 / scale
    aa, bb, cc = a * k * k, b * k * k, c * k * k
    dd = d * k - 2 * aa * mx - bb * my
    ee = e * k - 2 * cc * my - bb * mx
    ff = aa * mx * mx + bb * mx * my + cc * my * my - d * k * mx - e * k * my + f
    out = np.array([aa, bb, cc, dd, ee, ff])
    return out / np.linalg.norm(out)


def conic_ellipse(conic) -> Ellipse | None:
    """Centre, semi-axes (larger first) and axis directions of an elliptic conic; None if it is
    not a real ellipse."""
    a, b, c, d, e, f = conic
    q = np.array([[a, b / 2], [b / 2, c]])
    try:
        centre = np.linalg.solve(2 * q, [-d, -e])
    except np.linalg.LinAlgError:
        return None
    f0 = f + 0.5 * (d * centre[0] + e * centre[1])
    lam, vec = np.linalg.eigh(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        semi2 = -f0 / lam
    if not (np.isfinite(semi2).all() and (semi2 > 0).all()):
        return None
    order = np.argsort(-semi2)
    return Ellipse(centre, np.sqrt(semi2[order]), vec[:, order].T)


def sampson_residuals(conic, points) -> np.ndarray:
    """(M,) first-order distances of points to a conic."""
    a, b, c, d, e, f = conic
    x, y = np.asarray(points, np.float64).T
    val = a * x * x + b * x * y + c * y * y + d * x + e * y + f
    gx, gy = 2 * a * x + b * y + d, b * x + 2 * c * y + e
    return np.abs(val) / np.maximum(np.hypot(gx, gy), 1e-12)


def robust_fit(points, weights, passes: int = 1) -> Ellipse | None:
    """``fit_conic``, then ``passes`` refits with the weights times Cauchy weights of the Sampson
    residuals (scale: ``ROBUST_MEDIANS`` median residuals, at least ``ROBUST_MIN_SCALE`` cells)."""
    w = np.asarray(weights, np.float64)
    conic = fit_conic(points, w)
    for _ in range(passes):
        if conic is None:
            return None
        res = sampson_residuals(conic, points)
        scale = max(ROBUST_MIN_SCALE, ROBUST_MEDIANS * float(np.median(res)))
        conic = fit_conic(points, w / (1.0 + (res / scale) ** 2))
    return None if conic is None else conic_ellipse(conic)

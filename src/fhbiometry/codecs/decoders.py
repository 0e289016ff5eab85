"""Heatmap decoders: peak cell (argmax, or both ends of a diameter jointly) and its sub-cell
refinement (quadratic fit of the log-heatmap, or soft-argmax in a window), and the
geometry-consistent ``ellipse`` decoding: the quadratic points replaced by the axis ends of the
one ellipse (shared centre, perpendicular diameters) that fits them best, each point weighted by
its peak height (``fit_ellipse_axes``). The methods are the registry ``core.choices.DECODERS``
(one ``refine_*`` function each). Cells are heatmap grid indices; the heatmap codec maps them to
network-input pixels."""
from __future__ import annotations

import numpy as np

from fhbiometry.core.choices import DECODERS

SOFT_ARGMAX_RADIUS = 2
ELLIPSE_ITERATIONS = 12     # alternations of (centre, semi-axes) and angle
ELLIPSE_ROBUST_CELLS = 1.0  # Cauchy scale of the residual reweighting, in heatmap cells


def decode_cells(hm, method: str, pairs=(), pair_radius: float = 6.0):
    """(N, K, H, W) heatmaps -> ((N, K, 2) cell coordinates (x, y), (N, K) peak values).

    ``pairs``: channel index pairs whose ends are found jointly (``joint_pair_peaks``); every
    other channel takes its own hottest cell. ``method`` (a name of ``core.choices.DECODERS``)
    refines the peak cells: its function ``(hm, ix, iy, peak) -> (N, K, 2) cells``."""
    refine = DECODERS.get(method)
    hm = np.asarray(hm, dtype=np.float64)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, -1)
    idx = flat.argmax(-1)
    for i, j in pairs:
        idx[:, i], idx[:, j] = joint_pair_peaks(hm[:, i], hm[:, j], pair_radius)
    peak = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    iy, ix = np.divmod(idx, w)
    return refine(hm, ix, iy, peak), peak


def refine_argmax(hm, ix, iy, peak):
    """The peak cell itself."""
    return np.stack([ix.astype(np.float64), iy.astype(np.float64)], -1)


def refine_quadratic(hm, ix, iy, peak):
    """The peak cell moved by the quadratic sub-cell offsets (``quadratic_offsets``)."""
    dx, dy = quadratic_offsets(hm, ix, iy)
    return np.stack([ix.astype(np.float64) + dx, iy.astype(np.float64) + dy], -1)


def refine_soft_argmax(hm, ix, iy, peak):
    """The centre of mass of a window around the peak cell (``soft_argmax``)."""
    return np.stack(soft_argmax(hm, ix, iy, SOFT_ARGMAX_RADIUS), -1)


def refine_ellipse(hm, ix, iy, peak):
    """The quadratic points moved onto the axis ends of one fitted ellipse (four landmarks)."""
    cells = refine_quadratic(hm, ix, iy, peak)
    return fit_ellipse_axes(cells, peak) if hm.shape[1] == 4 else cells


def joint_pair_peaks(a, b, radius: float):
    """The two ends of one diameter from its two heatmaps ``a``, ``b`` (N, H, W), order-free.

    A model that cannot tell which end is which (an order rule always flips somewhere, e.g. the
    left end of a near-vertical OFD) may put both channels' peaks on one end; the diameter then
    collapses. Here the two channels are summed, the first end is the hottest cell of the sum
    and the second the hottest cell farther than ``radius`` cells from it. The first end goes to
    the channel that is hotter there, the second to the other. Returns the flat cell index of the
    end given to ``a`` and of the end given to ``b``; the sub-pixel refinement then runs on each
    channel at its cell (refining on the sum would be biased by the other end's tail).
    """
    summed = np.asarray(a, np.float64) + np.asarray(b, np.float64)
    n, h, w = summed.shape
    flat = summed.reshape(n, -1)
    first = flat.argmax(-1)
    fy, fx = np.divmod(first, w)
    yy, xx = np.divmod(np.arange(h * w), w)
    far = (yy[None] - fy[:, None]) ** 2 + (xx[None] - fx[:, None]) ** 2 > radius ** 2
    second = np.where(far, flat, -np.inf).argmax(-1)
    rows = np.arange(n)
    a_first = np.asarray(a).reshape(n, -1)[rows, first] >= np.asarray(b).reshape(n, -1)[rows, first]
    return np.where(a_first, first, second), np.where(a_first, second, first)


def quadratic_offsets(hm, ix, iy):
    """Sub-cell offsets from a parabola through the log-heatmap at the peak and its
    two neighbours along each axis (exact for a Gaussian peak); clipped to +-0.5."""
    n, k, h, w = hm.shape
    logh = np.log(np.maximum(hm, 1e-10))
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")

    def offset(minus, centre, plus):
        denom = minus - 2 * centre + plus
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.where(denom < 0, 0.5 * (minus - plus) / denom, 0.0)
        return np.clip(np.nan_to_num(off), -0.5, 0.5)

    c = logh[ni, ki, iy, ix]
    xm, xp = np.clip(ix - 1, 0, w - 1), np.clip(ix + 1, 0, w - 1)
    ym, yp = np.clip(iy - 1, 0, h - 1), np.clip(iy + 1, 0, h - 1)
    dx = offset(logh[ni, ki, iy, xm], c, logh[ni, ki, iy, xp])
    dy = offset(logh[ni, ki, ym, ix], c, logh[ni, ki, yp, ix])
    dx = np.where((ix == 0) | (ix == w - 1), 0.0, dx)
    dy = np.where((iy == 0) | (iy == h - 1), 0.0, dy)
    return dx, dy


def soft_argmax(hm, ix, iy, radius):
    """Centre of mass of the positive heatmap in a (2r+1)^2 window around the peak."""
    n, k, h, w = hm.shape
    cx = np.empty((n, k))
    cy = np.empty((n, k))
    for a in range(n):
        for b in range(k):
            x0, x1 = max(0, ix[a, b] - radius), min(w, ix[a, b] + radius + 1)
            y0, y1 = max(0, iy[a, b] - radius), min(h, iy[a, b] + radius + 1)
            win = np.maximum(hm[a, b, y0:y1, x0:x1], 0.0)
            total = win.sum()
            if total <= 0:
                cx[a, b], cy[a, b] = ix[a, b], iy[a, b]
                continue
            yy, xx = np.mgrid[y0:y1, x0:x1]
            cx[a, b] = (win * xx).sum() / total
            cy[a, b] = (win * yy).sum() / total
    return cx, cy


def _axes_given_angle(p, w, theta):
    """Weighted least squares of centre and signed semi-axes for a fixed angle (vectorised).

    Model: p0 = c - a u, p1 = c + a u, p2 = c - b v, p3 = c + b v with u = (cos, sin), v = u
    turned by +90 degrees. In the (u, v) frame the unknowns split into (c_u, a) and (c_v, b)."""
    u = np.stack([np.cos(theta), np.sin(theta)], -1)
    v = np.stack([-u[..., 1], u[..., 0]], -1)
    qu = (p * u[:, None]).sum(-1)
    qv = (p * v[:, None]).sum(-1)

    def solve(q, sign, on_axis):
        # unknowns (c, s): q_k = c + sign_k * s for the two ends on the axis, q_k = c for the others
        x = np.where(on_axis, sign, 0.0)
        sw, sx, sxx = w.sum(-1), (w * x).sum(-1), (w * x * x).sum(-1)
        sq, sxq = (w * q).sum(-1), (w * x * q).sum(-1)
        det = sw * sxx - sx * sx
        det = np.where(np.abs(det) > 1e-12, det, 1e-12)
        return (sxx * sq - sx * sxq) / det, (sw * sxq - sx * sq) / det

    sign = np.array([-1.0, 1.0, -1.0, 1.0])
    cu, a = solve(qu, sign, np.array([True, True, False, False]))
    cv, b = solve(qv, sign, np.array([False, False, True, True]))
    centre = cu[:, None] * u + cv[:, None] * v
    return centre, a, b


def _angle_given_axes(p, w, centre, a, b):
    """The angle maximising the weighted agreement of the model with the points (closed form)."""
    r = p - centre[:, None]
    g = a[:, None] * (w[:, 1, None] * r[:, 1] - w[:, 0, None] * r[:, 0])
    h = b[:, None] * (w[:, 3, None] * r[:, 3] - w[:, 2, None] * r[:, 2])
    return np.arctan2(g[:, 1] - h[:, 0], g[:, 0] + h[:, 1])


def ellipse_points(centre, a, b, theta):
    """(N, 4, 2) axis ends c -+ a u, c -+ b v of ellipses (centre (N, 2), signed semi-axes, angle)."""
    u = np.stack([np.cos(theta), np.sin(theta)], -1)
    v = np.stack([-u[..., 1], u[..., 0]], -1)
    return np.stack([centre - a[:, None] * u, centre + a[:, None] * u,
                     centre - b[:, None] * v, centre + b[:, None] * v], 1)


def fit_ellipse_axes(points, weights, iterations: int = ELLIPSE_ITERATIONS,
                     robust: float = ELLIPSE_ROBUST_CELLS) -> np.ndarray:
    """(N, 4, 2) points (OFD ends, BPD ends) -> the axis ends of the best-fitting ellipse.

    Weighted least squares of centre, semi-axes and angle, alternating a closed-form solve of
    centre and semi-axes for a fixed angle with a closed-form angle for fixed axes, started at the
    direction of the OFD. ``weights`` (N, 4), e.g. the peak heights, are clipped at a small
    positive value and multiplied by Cauchy weights of the residuals (scale ``robust``, in the
    points' units), so one point far off the ellipse of the other three is discounted. The
    returned points keep each channel's end (the semi-axes are signed)."""
    p = np.asarray(points, np.float64)
    base = np.maximum(np.nan_to_num(np.asarray(weights, np.float64)), 1e-3)
    d = p[:, 1] - p[:, 0]
    theta = np.arctan2(d[:, 1], d[:, 0])
    w = base
    for _ in range(iterations):
        centre, a, b = _axes_given_angle(p, w, theta)
        theta = _angle_given_axes(p, w, centre, a, b)
        fitted = ellipse_points(centre, a, b, theta)
        res = np.linalg.norm(p - fitted, axis=-1)
        w = base / (1.0 + (res / robust) ** 2)
    centre, a, b = _axes_given_angle(p, w, theta)
    out = ellipse_points(centre, a, b, theta)
    bad = ~np.isfinite(out).all(axis=(1, 2))
    return np.where(bad[:, None, None], p, out)

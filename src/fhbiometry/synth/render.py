"""Rendering: reflectivity of the head and the maternal tissue on a polar (depth x beam angle)
grid, shadowing, attenuation, speckle, log compression and scan conversion to a uint8 frame."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import fpmath
from .anatomy import Fan, Head
from .config import QUALITIES


@dataclass
class _Grid:
    """Polar sample grid of a fan, (n_r, n_theta): image coordinates of every sample, beam
    directions, depth, and the pixel -> polar index map used for scan conversion."""

    x: np.ndarray
    y: np.ndarray
    beam_x: np.ndarray
    beam_y: np.ndarray
    depth: np.ndarray            # 0 at r0, 1 at r1, (n_r, 1)
    map_coords: np.ndarray       # (2, H*W) fractional polar indices of each pixel
    inside: np.ndarray           # (H, W) bool fan mask
    dr: float


def _polar_grid(fan: Fan, width: int, height: int) -> _Grid:
    n_r = int(math.ceil(fan.r1 - fan.r0)) + 1
    n_t = int(math.ceil(fan.r1 * 2 * fan.half)) + 1
    r = np.linspace(fan.r0, fan.r1, n_r)[:, None]
    theta = np.linspace(-fan.half, fan.half, n_t)[None, :]
    bx, by = fpmath.sin_cos(theta)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    pr = fpmath.hypot(xx - fan.ax, yy - fan.ay)
    pt = fpmath.arctan2(xx - fan.ax, yy - fan.ay)
    ir = (pr - fan.r0) / (fan.r1 - fan.r0) * (n_r - 1)
    it = (pt + fan.half) / (2 * fan.half) * (n_t - 1)
    f32 = np.float32
    return _Grid(x=(fan.ax + r * bx).astype(f32), y=(fan.ay + r * by).astype(f32),
                 beam_x=bx.astype(f32), beam_y=by.astype(f32),
                 depth=np.linspace(0, 1, n_r, dtype=f32)[:, None],
                 map_coords=np.stack([ir.ravel(), it.ravel()]), inside=fan.contains(xx, yy),
                 dr=float((fan.r1 - fan.r0) / (n_r - 1)))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _smooth_field(shape, rng, sigma) -> np.ndarray:
    """Smooth random field in (0, 1) (low-frequency tissue texture)."""
    f = fpmath.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    f = (f - f.mean()) / (f.std() + 1e-9)
    return 1.0 / (1.0 + fpmath.exp(-1.5 * f))


def _background(grid: _Grid, rng) -> np.ndarray:
    """Maternal tissue echogenicity on the polar grid (fixed per subject): smooth texture plus
    layered abdominal wall bands in the near field."""
    n_r, n_t = grid.x.shape
    texture = _smooth_field((n_r, n_t), rng, sigma=(6.0, 14.0))
    fine = _smooth_field((n_r, n_t), rng, sigma=(1.5, 4.0))
    base = 0.08 + 0.25 * texture + 0.06 * (fine - 0.5)
    depth = grid.depth[:, 0]
    wall = np.zeros(n_r)
    for _ in range(int(rng.integers(2, 5))):
        centre = rng.uniform(0.02, 0.2)
        gain = rng.uniform(0.25, 0.6)
        wall += gain * fpmath.exp(-((depth - centre) / rng.uniform(0.006, 0.02)) ** 2)
    wiggle = 1.0 + 0.25 * (_smooth_field((1, n_t), rng, sigma=(1.0, 20.0)) - 0.5)
    return base + wall[:, None] * wiggle


@dataclass
class _Local:
    """Head-aligned coordinates on the block of the polar grid around the head."""

    u: np.ndarray                # along the major axis (px)
    v: np.ndarray                # along the minor axis (px)
    rho: np.ndarray              # elliptical radius, 1 on the outer skull border
    gx: np.ndarray               # gradient direction of the ellipse equation
    gy: np.ndarray
    gnorm: np.ndarray
    dist: np.ndarray             # ~ signed distance to the outer ellipse (px)
    ca: float                    # cos and sin of the head angle
    sa: float


def _local_coords(grid: _Grid, head: Head, pose) -> tuple[tuple, _Local]:
    """The block of the grid around the head (out to its fluid halo) and the head-aligned
    coordinates there."""
    cx, cy, angle = pose
    a, b = head.semi_a, head.semi_b
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = grid.x - cx, grid.y - cy
    u = dx * ca + dy * sa           # along the major axis (px)
    v = -dx * sa + dy * ca          # along the minor axis (px)
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    reach = 1.0 + sum(amp for amp, _, _ in head.fluid) + 0.1
    rows, cols = np.nonzero(rho < reach)
    block = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    u, v, rho = u[block], v[block], rho[block]
    gx, gy = u / a ** 2, v / b ** 2
    gnorm = np.sqrt(gx * gx + gy * gy) + 1e-12
    dist = (rho - 1.0) * rho / gnorm          # ~ signed distance to the outer ellipse (px)
    return block, _Local(u=u, v=v, rho=rho, gx=gx, gy=gy, gnorm=gnorm, dist=dist, ca=ca, sa=sa)


def _bone(loc: _Local, head: Head, beam_x: np.ndarray, beam_y: np.ndarray) -> np.ndarray:
    """Skull: plateau over [-t, 0] with soft edges, brightest where the beam hits it square,
    dimmed in the gaps."""
    a, b, t = head.semi_a, head.semi_b, head.skull_px
    ca, sa, gx, gy = loc.ca, loc.sa, loc.gx, loc.gy
    phi = fpmath.arctan2(loc.v / b, loc.u / a)
    bone = _smoothstep((loc.dist + t) / 1.2 + 0.5) * _smoothstep(-loc.dist / 1.2 + 0.5)
    incidence = np.abs((gx * ca - gy * sa) * beam_x + (gx * sa + gy * ca) * beam_y) / loc.gnorm
    bone *= (0.35 + 0.65 * incidence) * head.skull_gain * head.skull_level
    for centre, width, depth in head.gaps:
        off = np.abs((phi - centre + np.pi) % (2 * np.pi) - np.pi)
        bone *= 1.0 - depth * (1.0 - _smoothstep((off - width) / width + 1.0))
    return bone


def _brain(loc: _Local, head: Head, front: float) -> np.ndarray:
    """Inside the skull: brain, midline, cavum, thalami, choroid plexus."""
    a, b, t = head.semi_a, head.semi_b, head.skull_px
    u, v, rho, dist = loc.u, loc.v, loc.rho, loc.dist
    un, vn = front * u / a, v / b
    inner = _smoothstep((-dist - t) / 1.5)
    lo, hi, half = head.csp
    in_csp = (un > lo) & (un < hi)
    csp_w = half * b
    mid_line = np.where(in_csp, 0.8 * fpmath.exp(-((np.abs(v) - csp_w) / 0.8) ** 2),
                        fpmath.exp(-(v / 0.9) ** 2) * (np.abs(un) < 0.9)) * head.midline
    csp_dark = _smoothstep((csp_w - np.abs(v)) / 1.5) * in_csp
    thal = fpmath.exp(-(((un + 0.02) / 0.17) ** 2 + ((np.abs(vn) - 0.17) / 0.14) ** 2))
    chor = fpmath.exp(-(((un + 0.5) / 0.13) ** 2 + ((np.abs(vn) - 0.36) / 0.07) ** 2))
    inside = head.brain * (0.8 + 0.4 * rho) * (1 - 0.8 * csp_dark) * (1 - 0.55 * thal)
    return (inside + head.choroid * chor + mid_line) * inner


def _surroundings(loc: _Local, head: Head) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outside the skull: (fluid, scalp, outside): a scalp band and a dark amniotic fluid halo
    whose width varies around the head."""
    a, b, t = head.semi_a, head.semi_b, head.skull_px
    u, v, rho, dist = loc.u, loc.v, loc.rho, loc.dist
    cos1, sin1 = u / a / np.maximum(rho, 1e-6), v / b / np.maximum(rho, 1e-6)
    cos_k, sin_k, order, width = 1.0, 0.0, 0, 0.0
    for amp, k, ph in head.fluid:        # orders 0, 1, 2, ...: cos(k phi - ph) by recursion
        while order < k:
            cos_k, sin_k = cos_k * cos1 - sin_k * sin1, sin_k * cos1 + cos_k * sin1
            order += 1
        width = width + amp * (cos_k * math.cos(ph) + sin_k * math.sin(ph))
    halo = 1.0 + np.maximum(width, 0.0)
    fluid = 1.0 - _smoothstep((rho - halo) / 0.12 + 0.5)
    scalp = 0.07 * fpmath.exp(-((dist - 0.6 * t) / (0.5 * t)) ** 2)
    outside = _smoothstep(dist / 1.2 + 0.5)
    return fluid, scalp, outside


def _head_model(grid: _Grid, head: Head, pose, front: float):
    """Reflectivity of the head on the polar grid -> (inside, bone, fluid, scalp, outside), full
    grid arrays; the bone separately so that it can cast a shadow. ``front`` (+1/-1) says which
    end of the major axis is frontal (where the cavum lies). Only the block of the grid around
    the head (out to its fluid halo) is computed."""
    block, loc = _local_coords(grid, head, pose)
    beam_x, beam_y = grid.beam_x[:, block[1]], grid.beam_y[:, block[1]]
    bone = _bone(loc, head, beam_x, beam_y)
    inside = _brain(loc, head, front)
    fluid, scalp, outside = _surroundings(loc, head)
    out = []
    for part, fill in ((inside, 0.0), (bone, 0.0), (fluid, 0.0), (scalp, 0.0), (outside, 1.0)):
        full = np.full(grid.x.shape, fill, dtype=np.float32)
        full[block] = part
        out.append(full)
    return tuple(out)


def _speckle(shape, rng) -> np.ndarray:
    """Fully developed speckle: |complex Gaussian| (Rayleigh), correlated over about one sample
    axially and two laterally, mean 1."""
    re = fpmath.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), (1.0, 1.8),
                                 mode="wrap")
    im = fpmath.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), (1.0, 1.8),
                                 mode="wrap")
    mag = fpmath.hypot(re, im)
    return mag / mag.mean()


def render_frame(grid: _Grid, background: np.ndarray, head: Head, pose, front: float,
                 quality: str, look: dict, rng: np.random.Generator) -> np.ndarray:
    """One uint8 frame (H, W): reflectivity -> shadowing, attenuation and speckle on the polar
    grid, log compression, scan conversion, then the frame's quality degradation."""
    inside, bone, fluid, scalp, outside = _head_model(grid, head, pose, front)
    tissue = background * (1.0 - (1.0 - look["fluid_level"]) * fluid) + scalp
    refl = inside + tissue * outside * (1.0 - np.clip(bone, 0, 1)) + bone
    # acoustic shadow: transmission falls with the bone already crossed along each beam
    crossed = (np.cumsum(bone, axis=0) - bone) * grid.dr / max(head.skull_px, 1.0)
    shadow = np.maximum(fpmath.exp(-look["shadow"] * crossed), 0.15)
    atten = fpmath.exp(-look["atten"] * grid.depth)
    env = refl * shadow * atten * _speckle(refl.shape, rng)
    db = 20.0 * fpmath.log10(np.maximum(env, 1e-6) / look["ref"])
    polar = np.clip((db + look["range_db"]) / look["range_db"], 0.0, 1.0)
    img = ndimage.map_coordinates(polar, grid.map_coords, order=1, mode="nearest")
    img = img.reshape(grid.inside.shape)
    if quality == "low_contrast":
        img = look["haze"] + look["contrast"] * (img - look["haze"])
    elif quality == "blurred":
        img = fpmath.gaussian_filter(img, look["blur"], mode="nearest")
    elif quality != "good":
        raise ValueError(f"unknown frame quality {quality!r}; choose one of {list(QUALITIES)}")
    img = np.where(grid.inside, img, 0.0)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)

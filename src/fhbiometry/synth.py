"""The synthetic fetal head cine generator (stage `synthesize`, the embedded default data set).

Every subject is one fetal head seen through a convex probe: a sector (fan) field of view on
black with its apex above the top centre, an elliptical skull ring with a few gaps (dropout), a
midline echo with a cavum-like box, faint thalamus- and choroid-like blobs, maternal tissue and
amniotic fluid around the head, multiplicative Rayleigh speckle, depth attenuation and acoustic
shadowing distal to the bright skull.  The image is built on a polar (depth x beam angle) grid,
where speckle, attenuation and shadowing are natural, then log-compressed and scan-converted.

Geometry (``geometry.ellipse_landmarks``): the OUTER border of the skull ring is the ellipse
``(cx, cy, semi_a, semi_b, angle)`` with ``semi_a`` the major (OFD) semi-axis; OFD = the ends of
its major axis, BPD = the ends of its minor axis, exact to floating point.

Sizes: gestational age uniform in ``ga_weeks`` -> BPD from the inverted Hadlock (1982) formula
``GA = 9.54 + 1.482 BPD + 0.1676 BPD^2`` (BPD in cm) times a small biological variation;
BPD/OFD ratio uniform in ``ratio``; the OFD spans a fraction (uniform in ``head_fraction``) of
the frame height, which sets the pixel spacing (rounded to 6 decimals, the same value in every
file format and in truth.csv).

Randomness: every subject has its own stream (``SeedSequence([seed, 1, index])``: anatomy,
motion, quality, noise), so the format a subject is stored in, or the number of subjects after
it, never changes its images.  Format allocation and label faults have streams of their own.

Outputs (``generate``), byte-identical for identical parameters:

* ``dicom/subNNN.dcm``: Ultrasound Multi-frame Image Storage, MONOCHROME2, 8 bit,
  PixelSpacing and SequenceOfUltrasoundRegions, PatientID = subject id, UIDs derived from the
  seed and subject id, no dates;
* ``video/subNNN.mp4`` (H.264, yuv420p, one encoder thread) + ``video/subNNN.json``
  ``{"pixel_spacing_mm": s, "subject_id": "subNNN"}``;
* ``stills/subNNN_HC.png``, ``subNNN_2HC.png``, ... + ``<stem>.json`` ``{"pixel_spacing_mm": s}``;
* ``landmarks.csv`` (one row per frame; a share ``label_faults`` of rows corrupted on purpose),
  ``truth.csv`` (exact ellipse, landmarks, sizes, quality and injected fault per frame),
  ``README.md``.
"""
from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from .geometry import COORD_COLUMNS, ellipse_landmarks
from .params import ParamError
from .store import write_csv, write_json

log = logging.getLogger(__name__)

FORMATS = ("dicom", "video", "png")
QUALITIES = ("good", "low_contrast", "blurred")
FAULT_KINDS = ("swapped_names", "point_off_skull", "outside_image")
US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
FRAME_RATE = 25  # cine frames per second (DICOM FrameTime, video rate)

# random streams: [seed, stream, index]
_STREAM_SUBJECT = 1
_STREAM_FORMATS = 2
_STREAM_FAULTS = 3

LANDMARK_COLUMNS = ("image_name", "frame") + COORD_COLUMNS
TRUTH_COLUMNS = ("image_name", "frame", "subject_id", "format", "cx", "cy", "semi_a", "semi_b",
                 "angle_deg", "skull_px", "spacing_mm", "bpd_mm", "ofd_mm", "ratio", "ga_weeks",
                 "quality", "label_fault") + COORD_COLUMNS


# ----------------------------------------------------------------------------- parameters

def _pair(cfg: dict, key: str, lo_ok: float, hi_ok: float) -> tuple[float, float]:
    value = cfg.get(key)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; write two numbers "
                         "[low, high]")
    if not (lo_ok <= lo <= hi <= hi_ok):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; need {lo_ok} <= low <= high "
                         f"<= {hi_ok}")
    return lo, hi


def _number(cfg: dict, key: str, lo_ok: float, hi_ok: float) -> float:
    value = cfg.get(key)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; write a number")
    if not (lo_ok <= v <= hi_ok):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; need {lo_ok} <= value "
                         f"<= {hi_ok}")
    return v


def check_config(cfg: dict) -> dict:
    """Validate the ``synthesize`` params section; return a copy with parsed numbers.

    Raises ``ParamError`` naming the key and the allowed values."""
    if not isinstance(cfg, dict):
        raise ParamError("params.yaml: section 'synthesize' must be a mapping")
    for key in ("subjects", "frames_per_subject", "width", "height", "formats", "ga_weeks",
                "ratio", "head_fraction", "motion_px", "motion_deg", "poor_frame_rate",
                "label_faults", "video_crf"):
        if key not in cfg:
            raise ParamError(f"params.yaml: missing key 'synthesize.{key}' (see README, section "
                             "Parameters)")
    out = dict(cfg)
    subjects = _number(cfg, "subjects", 1, 999)
    lo, hi = _pair(cfg, "frames_per_subject", 1, 1000)
    if subjects != int(subjects) or lo != int(lo) or hi != int(hi):
        raise ParamError("params.yaml: synthesize.subjects and frames_per_subject must be whole "
                         "numbers")
    out["subjects"] = int(subjects)
    out["frames_per_subject"] = (int(lo), int(hi))
    for key in ("width", "height"):
        v = _number(cfg, key, 32, 4096)
        if v != int(v) or int(v) % 2:
            raise ParamError(f"params.yaml: synthesize.{key} = {cfg[key]!r}; use an even whole "
                             "number (H.264 yuv420p video needs even frame sizes)")
        out[key] = int(v)
    formats = cfg["formats"]
    if not isinstance(formats, dict) or not formats:
        raise ParamError(f"params.yaml: synthesize.formats = {formats!r}; write a mapping like "
                         "{dicom: 0.7, video: 0.15, png: 0.15}")
    shares = {}
    for name, share in formats.items():
        if name not in FORMATS:
            raise ParamError(f"params.yaml: synthesize.formats has {name!r}; choose from "
                             f"{list(FORMATS)}")
        try:
            share = float(share)
        except (TypeError, ValueError):
            share = -1.0
        if not (math.isfinite(share) and share >= 0):
            raise ParamError(f"params.yaml: synthesize.formats.{name} = {formats[name]!r}; write a "
                             "share >= 0")
        shares[name] = share
    if sum(shares.values()) <= 0:
        raise ParamError("params.yaml: synthesize.formats shares are all 0; give at least one a "
                         "positive share")
    out["formats"] = shares
    out["ga_weeks"] = _pair(cfg, "ga_weeks", 12, 42)
    out["ratio"] = _pair(cfg, "ratio", 0.5, 1.0)
    out["head_fraction"] = _pair(cfg, "head_fraction", 0.1, 0.8)
    out["motion_px"] = _number(cfg, "motion_px", 0, 50)
    out["motion_deg"] = _number(cfg, "motion_deg", 0, 45)
    out["poor_frame_rate"] = _number(cfg, "poor_frame_rate", 0, 1)
    out["label_faults"] = _number(cfg, "label_faults", 0, 1)
    out["video_crf"] = int(_number(cfg, "video_crf", 0, 51))
    return out


# ----------------------------------------------------------------------------- sizes and streams

def bpd_mm_from_ga(ga_weeks):
    """BPD (outer, mm) for a gestational age (weeks): the inverted Hadlock (1982) formula
    ``GA = 9.54 + 1.482 BPD + 0.1676 BPD^2`` with BPD in cm (24 mm at 14, 98 mm at 40 weeks)."""
    ga = np.asarray(ga_weeks, dtype=np.float64)
    a, b, c = 0.1676, 1.482, 9.54 - ga
    return 10.0 * (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)


def subject_id(index: int) -> str:
    """``sub`` + 3 digits, 1-based: index 0 -> ``sub001``."""
    return f"sub{index + 1:03d}"


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, index])


def allocate_formats(n_subjects: int, shares: dict, seed: int) -> list[str]:
    """The file format of every subject: counts by largest remainder of the normalised
    ``shares``, subjects assigned by a seeded permutation (a stream of its own)."""
    names = [f for f in FORMATS if shares.get(f, 0) > 0]
    total = sum(shares[f] for f in names)
    exact = [n_subjects * shares[f] / total for f in names]
    counts = [int(math.floor(e)) for e in exact]
    by_remainder = sorted(range(len(names)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n_subjects - sum(counts)]:
        counts[i] += 1
    order = _rng(seed, _STREAM_FORMATS).permutation(n_subjects)
    out = [""] * n_subjects
    pos = 0
    for name, count in zip(names, counts):
        for idx in order[pos:pos + count]:
            out[int(idx)] = name
        pos += count
    return out


def choose_faults(n_frames: int, rate: float, seed: int) -> dict[int, str]:
    """Exactly ``round(rate * n_frames)`` frame indices (rows of landmarks.csv) mapped to a fault
    kind; the kinds take turns (``FAULT_KINDS`` from a seeded start) in a seeded order."""
    n = int(round(rate * n_frames))
    if n == 0:
        return {}
    rng = _rng(seed, _STREAM_FAULTS)
    picked = rng.choice(n_frames, size=n, replace=False)
    start = int(rng.integers(len(FAULT_KINDS)))
    return {int(row): FAULT_KINDS[(start + k) % len(FAULT_KINDS)] for k, row in enumerate(picked)}


def corrupt_points(points: np.ndarray, kind: str, width: int, height: int,
                   rng: np.random.Generator) -> np.ndarray:
    """A deliberately wrong copy of (4, 2) canonical landmarks, as a careless label would be:

    * ``swapped_names``: the OFD and BPD pairs exchanged (columns named the wrong way round);
    * ``point_off_skull``: one point pulled 70-90 % of the way to the head centre (still inside
      the image, far from the skull ring);
    * ``outside_image``: one point moved 5-40 px beyond the image border nearest to it.
    """
    p = np.array(points, dtype=np.float64)
    if kind == "swapped_names":
        return p[[2, 3, 0, 1]]
    k = int(rng.integers(4))
    if kind == "point_off_skull":
        centre = p[:2].mean(axis=0)
        p[k] = p[k] + rng.uniform(0.7, 0.9) * (centre - p[k])
        return p
    if kind == "outside_image":
        x, y = p[k]
        gaps = {"left": x, "right": width - 1 - x, "top": y, "bottom": height - 1 - y}
        side = min(gaps, key=gaps.get)
        beyond = rng.uniform(5.0, 40.0)
        if side == "left":
            p[k, 0] = -beyond
        elif side == "right":
            p[k, 0] = width - 1 + beyond
        elif side == "top":
            p[k, 1] = -beyond
        else:
            p[k, 1] = height - 1 + beyond
        return p
    raise ValueError(f"unknown label fault {kind!r}; choose one of {list(FAULT_KINDS)}")


# ----------------------------------------------------------------------------- anatomy

@dataclass
class Fan:
    """Sector field of view: apex (ax, ay) above the frame, radii r0..r1, half-angle (rad)."""

    ax: float
    ay: float
    r0: float
    r1: float
    half: float

    def contains(self, x, y, margin: float = 0.0):
        dx = np.asarray(x, dtype=np.float64) - self.ax
        dy = np.asarray(y, dtype=np.float64) - self.ay
        r = np.hypot(dx, dy)
        theta = np.arctan2(dx, dy)
        ang_margin = margin / np.maximum(r, 1.0)
        return ((r >= self.r0 + margin) & (r <= self.r1 - margin)
                & (np.abs(theta) <= self.half - ang_margin))


@dataclass
class Head:
    """Per-subject anatomy (pixels) and appearance; ``semi_a`` >= ``semi_b`` are the outer skull
    semi-axes, ``skull_px`` the ring thickness."""

    ga_weeks: float
    bpd_mm: float
    ratio: float
    spacing_mm: float
    semi_a: float
    semi_b: float
    skull_px: float
    skull_gain: float = 1.0
    skull_level: float = 1.2                       # bone reflectivity (tissue ~0.1-0.4)
    gaps: list = field(default_factory=list)       # (centre angle, half width, depth)
    brain: float = 0.06
    midline: float = 0.45
    csp: tuple = (0.25, 0.5, 0.07)                 # cavum: u from, u to (/a), half width (/b)
    choroid: float = 0.3
    fluid: tuple = ((0.25, 0.0, 0.0),)             # halo width: (amplitude, order, phase) terms

    @property
    def ofd_mm(self) -> float:
        return 2.0 * self.semi_a * self.spacing_mm


def _fan_for(width: int, height: int, rng: np.random.Generator) -> Fan:
    ay = -height * rng.uniform(0.10, 0.16)
    r0 = -ay + height * rng.uniform(0.03, 0.06)
    r1 = height * 0.985 - ay
    half = math.radians(rng.uniform(38.0, 45.0))
    return Fan(ax=(width - 1) / 2.0, ay=ay, r0=r0, r1=r1, half=half)


def _draw_head(cfg: dict, rng: np.random.Generator) -> Head:
    ga = rng.uniform(*cfg["ga_weeks"])
    bpd_drawn = float(bpd_mm_from_ga(ga) * np.clip(rng.normal(1.0, 0.025), 0.95, 1.05))
    ratio = rng.uniform(*cfg["ratio"])
    fraction = rng.uniform(*cfg["head_fraction"])
    spacing = round(bpd_drawn / ratio / (fraction * cfg["height"]), 6)
    semi_a = bpd_drawn / ratio / spacing / 2.0
    semi_b = bpd_drawn / spacing / 2.0
    skull_mm = 1.5 + 0.03 * bpd_drawn * rng.uniform(0.85, 1.15)
    skull_px = max(2.5, min(skull_mm / spacing, 0.12 * semi_b))
    gaps = []
    for _ in range(int(rng.integers(2, 5))):
        width = math.radians(rng.uniform(4.0, 10.0))
        # the four axis ends (the landmarks) stay on bone: gap centres >= width + 12 deg away
        while True:
            centre = rng.uniform(0, 2 * math.pi)
            off = abs((centre + math.pi / 4) % (math.pi / 2) - math.pi / 4)
            if off >= width + math.radians(12.0):
                break
        gaps.append((centre, width, float(rng.uniform(0.85, 0.97))))
    return Head(
        ga_weeks=float(ga), bpd_mm=2.0 * semi_b * spacing, ratio=semi_b / semi_a,
        spacing_mm=spacing, semi_a=float(semi_a), semi_b=float(semi_b), skull_px=float(skull_px),
        skull_gain=float(rng.uniform(0.85, 1.0)), gaps=gaps,
        brain=float(rng.uniform(0.04, 0.08)), midline=float(rng.uniform(0.35, 0.55)),
        csp=(float(rng.uniform(0.18, 0.28)), float(rng.uniform(0.42, 0.52)),
             float(rng.uniform(0.05, 0.08))),
        choroid=float(rng.uniform(0.22, 0.38)),
        fluid=((float(rng.uniform(0.05, 0.35)), 0, 0.0),
               *((float(rng.uniform(0.0, 0.3 / k)), k, float(rng.uniform(0, 2 * math.pi)))
                 for k in (1, 2, 3, 4))),
    )


def _outline(cx, cy, a, b, angle, n: int = 96) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ca, sa = math.cos(angle), math.sin(angle)
    x = cx + a * np.cos(t) * ca - b * np.sin(t) * sa
    y = cy + a * np.cos(t) * sa + b * np.sin(t) * ca
    return np.stack([x, y], axis=-1)


def head_fits(cx, cy, head: Head, angle, fan: Fan, width: int, height: int,
              margin: float = 3.0) -> bool:
    """True when the outer skull ellipse (plus ``margin`` px) lies inside the frame and the fan."""
    pts = _outline(cx, cy, head.semi_a + margin, head.semi_b + margin, angle)
    inside = ((pts[:, 0] >= 0) & (pts[:, 0] <= width - 1) & (pts[:, 1] >= 0)
              & (pts[:, 1] <= height - 1))
    return bool(inside.all() and fan.contains(pts[:, 0], pts[:, 1], margin).all())


def _initial_pose(head: Head, fan: Fan, width: int, height: int, rng, tries: int = 2000):
    """A random angle and a random centre that keep the head inside the fan and the frame."""
    for _ in range(tries):
        angle = rng.uniform(0, 2 * math.pi)
        cx = rng.uniform(0, width - 1)
        cy = rng.uniform(0, height - 1)
        if head_fits(cx, cy, head, angle, fan, width, height, margin=6.0):
            return cx, cy, angle
    raise ParamError(
        f"params.yaml: synthesize.head_fraction: a head with OFD {2 * head.semi_a:.0f} px does not "
        f"fit into the {width}x{height} fan ({tries} tries); lower the upper bound of "
        "head_fraction")


def _walk(pose, head: Head, fan: Fan, cfg: dict, rng, tries: int = 20):
    """One random-walk step of the probe; a step that leaves the fan is redrawn (else no motion)."""
    cx, cy, angle = pose
    for _ in range(tries):
        nx = cx + rng.normal(0, cfg["motion_px"])
        ny = cy + rng.normal(0, cfg["motion_px"])
        na = angle + math.radians(rng.normal(0, cfg["motion_deg"]))
        if head_fits(nx, ny, head, na, fan, cfg["width"], cfg["height"]):
            return nx, ny, na
    return pose


# ----------------------------------------------------------------------------- rendering

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
    bx, by = np.sin(theta), np.cos(theta)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    pr = np.hypot(xx - fan.ax, yy - fan.ay)
    pt = np.arctan2(xx - fan.ax, yy - fan.ay)
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
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    f = (f - f.mean()) / (f.std() + 1e-9)
    return 1.0 / (1.0 + np.exp(-1.5 * f))


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
        wall += rng.uniform(0.25, 0.6) * np.exp(-((depth - centre) / rng.uniform(0.006, 0.02)) ** 2)
    wiggle = 1.0 + 0.25 * (_smooth_field((1, n_t), rng, sigma=(1.0, 20.0)) - 0.5)
    return base + wall[:, None] * wiggle


def _head_model(grid: _Grid, head: Head, pose, front: float):
    """Reflectivity of the head on the polar grid -> (inside, bone, fluid, scalp, outside), full
    grid arrays; the bone separately so that it can cast a shadow. ``front`` (+1/-1) says which
    end of the major axis is frontal (where the cavum lies). Only the block of the grid around
    the head (out to its fluid halo) is computed."""
    cx, cy, angle = pose
    a, b, t = head.semi_a, head.semi_b, head.skull_px
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = grid.x - cx, grid.y - cy
    u = dx * ca + dy * sa           # along the major axis (px)
    v = -dx * sa + dy * ca          # along the minor axis (px)
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    reach = 1.0 + sum(amp for amp, _, _ in head.fluid) + 0.1
    rows, cols = np.nonzero(rho < reach)
    block = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    u, v, rho = u[block], v[block], rho[block]
    beam_x, beam_y = grid.beam_x[:, block[1]], grid.beam_y[:, block[1]]

    gx, gy = u / a ** 2, v / b ** 2
    gnorm = np.sqrt(gx * gx + gy * gy) + 1e-12
    dist = (rho - 1.0) * rho / gnorm          # ~ signed distance to the outer ellipse (px)
    phi = np.arctan2(v / b, u / a)

    # skull: plateau over [-t, 0] with soft edges, brightest where the beam hits it square
    bone = _smoothstep((dist + t) / 1.2 + 0.5) * _smoothstep(-dist / 1.2 + 0.5)
    incidence = np.abs((gx * ca - gy * sa) * beam_x + (gx * sa + gy * ca) * beam_y) / gnorm
    bone *= (0.35 + 0.65 * incidence) * head.skull_gain * head.skull_level
    for centre, width, depth in head.gaps:
        off = np.abs((phi - centre + np.pi) % (2 * np.pi) - np.pi)
        bone *= 1.0 - depth * (1.0 - _smoothstep((off - width) / width + 1.0))

    # inside the skull: brain, midline, cavum, thalami, choroid plexus
    un, vn = front * u / a, v / b
    inner = _smoothstep((-dist - t) / 1.5)
    lo, hi, half = head.csp
    in_csp = (un > lo) & (un < hi)
    csp_w = half * b
    mid_line = np.where(in_csp, 0.8 * np.exp(-((np.abs(v) - csp_w) / 0.8) ** 2),
                        np.exp(-(v / 0.9) ** 2) * (np.abs(un) < 0.9)) * head.midline
    csp_dark = _smoothstep((csp_w - np.abs(v)) / 1.5) * in_csp
    thal = np.exp(-(((un + 0.02) / 0.17) ** 2 + ((np.abs(vn) - 0.17) / 0.14) ** 2))
    chor = np.exp(-(((un + 0.5) / 0.13) ** 2 + ((np.abs(vn) - 0.36) / 0.07) ** 2))
    inside = head.brain * (0.8 + 0.4 * rho) * (1 - 0.8 * csp_dark) * (1 - 0.55 * thal)
    inside = (inside + head.choroid * chor + mid_line) * inner

    # outside: scalp band and a dark amniotic fluid halo whose width varies around the head
    cos1, sin1 = u / a / np.maximum(rho, 1e-6), v / b / np.maximum(rho, 1e-6)
    cos_k, sin_k, order, width = 1.0, 0.0, 0, 0.0
    for amp, k, ph in head.fluid:        # orders 0, 1, 2, ...: cos(k phi - ph) by recursion
        while order < k:
            cos_k, sin_k = cos_k * cos1 - sin_k * sin1, sin_k * cos1 + cos_k * sin1
            order += 1
        width = width + amp * (cos_k * math.cos(ph) + sin_k * math.sin(ph))
    halo = 1.0 + np.maximum(width, 0.0)
    fluid = 1.0 - _smoothstep((rho - halo) / 0.12 + 0.5)
    scalp = 0.07 * np.exp(-((dist - 0.6 * t) / (0.5 * t)) ** 2)
    outside = _smoothstep(dist / 1.2 + 0.5)

    out = []
    for part, fill in ((inside, 0.0), (bone, 0.0), (fluid, 0.0), (scalp, 0.0), (outside, 1.0)):
        full = np.full(grid.x.shape, fill, dtype=np.float32)
        full[block] = part
        out.append(full)
    return tuple(out)


def _speckle(shape, rng) -> np.ndarray:
    """Fully developed speckle: |complex Gaussian| (Rayleigh), correlated over about one sample
    axially and two laterally, mean 1."""
    re = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), (1.0, 1.8),
                                 mode="wrap")
    im = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), (1.0, 1.8),
                                 mode="wrap")
    mag = np.hypot(re, im)
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
    shadow = np.maximum(np.exp(-look["shadow"] * crossed), 0.15)
    atten = np.exp(-look["atten"] * grid.depth)
    env = refl * shadow * atten * _speckle(refl.shape, rng)
    db = 20.0 * np.log10(np.maximum(env, 1e-6) / look["ref"])
    polar = np.clip((db + look["range_db"]) / look["range_db"], 0.0, 1.0)
    img = ndimage.map_coordinates(polar, grid.map_coords, order=1, mode="nearest")
    img = img.reshape(grid.inside.shape)
    if quality == "low_contrast":
        img = look["haze"] + look["contrast"] * (img - look["haze"])
    elif quality == "blurred":
        img = ndimage.gaussian_filter(img, look["blur"], mode="nearest")
    elif quality != "good":
        raise ValueError(f"unknown frame quality {quality!r}; choose one of {list(QUALITIES)}")
    img = np.where(grid.inside, img, 0.0)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- subjects

@dataclass
class Subject:
    """One generated subject: frames (N, H, W) uint8, the pose (cx, cy, angle) and quality of
    every frame."""

    index: int
    subject_id: str
    head: Head
    frames: np.ndarray
    poses: list
    qualities: list

    def landmarks(self, k: int) -> np.ndarray:
        """Exact (4, 2) canonical landmarks of frame ``k``."""
        cx, cy, angle = self.poses[k]
        return ellipse_landmarks(cx, cy, self.head.semi_a, self.head.semi_b, angle)


def make_subject(index: int, cfg: dict, seed: int) -> Subject:
    """Generate subject ``index`` (0-based) from its own random stream."""
    cfg = check_config(cfg)
    geo_seq, noise_seq = np.random.SeedSequence([int(seed), _STREAM_SUBJECT, index]).spawn(2)
    rng, noise = np.random.default_rng(geo_seq), np.random.default_rng(noise_seq)
    width, height = cfg["width"], cfg["height"]
    lo, hi = cfg["frames_per_subject"]
    n_frames = int(rng.integers(lo, hi + 1))
    fan = _fan_for(width, height, rng)
    head = _draw_head(cfg, rng)
    front = 1.0 if rng.random() < 0.5 else -1.0
    poses = [_initial_pose(head, fan, width, height, rng)]
    for _ in range(n_frames - 1):
        poses.append(_walk(poses[-1], head, fan, cfg, rng))
    qualities = []
    for _ in range(n_frames):
        poor = rng.random() < cfg["poor_frame_rate"]
        qualities.append(("low_contrast", "blurred")[int(rng.integers(2))] if poor else "good")
    look = {
        "shadow": rng.uniform(0.5, 0.8), "atten": rng.uniform(0.4, 0.9),
        "ref": rng.uniform(1.0, 1.3), "range_db": rng.uniform(40.0, 48.0),
        "fluid_level": rng.uniform(0.01, 0.03), "haze": rng.uniform(0.25, 0.4),
        "contrast": rng.uniform(0.3, 0.45), "blur": rng.uniform(1.3, 2.3),
    }
    grid = _polar_grid(fan, width, height)
    background = _background(grid, noise)
    frames = np.stack([render_frame(grid, background, head, pose, front, q, look, noise)
                       for pose, q in zip(poses, qualities)])
    return Subject(index=index, subject_id=subject_id(index), head=head, frames=frames,
                   poses=poses, qualities=qualities)


# ----------------------------------------------------------------------------- writers

def _uid(seed: int, *parts) -> str:
    """A DICOM UID ``2.25.<UUID as integer>`` with a name-based UUID (version 5) of ``seed`` and
    ``parts``: the same inputs always give the same UID."""
    name = "/".join(["fhbiometry-synth", str(int(seed)), *(str(p) for p in parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, name).int}"


def write_dicom(path, frames: np.ndarray, spacing_mm: float, patient_id: str, seed: int) -> Path:
    """Multi-frame ultrasound DICOM (uncompressed, explicit VR little endian) with PixelSpacing
    (mm), SequenceOfUltrasoundRegions (cm) and UIDs derived from ``seed`` and ``patient_id``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, rows, cols = frames.shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sop_uid = _uid(seed, patient_id, "sop")
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.ImplementationClassUID = _uid(0, "implementation")
    meta.ImplementationVersionName = "FHBIOMETRY_1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = US_MULTIFRAME_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(seed, patient_id, "study")
    ds.SeriesInstanceUID = _uid(seed, patient_id, "series")
    ds.Modality = "US"
    ds.Manufacturer = "fhbiometry synthetic"
    ds.SeriesDescription = "synthetic fetal head cine"
    ds.PatientName = f"Synthetic^{patient_id}"
    ds.PatientID = patient_id
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = n
    ds.FrameTime = 1000.0 / FRAME_RATE
    ds.FrameIncrementPointer = 0x00181063  # (0018,1063) FrameTime
    ds.PixelSpacing = [float(spacing_mm), float(spacing_mm)]
    region = Dataset()
    region.RegionSpatialFormat = 1          # 2-D
    region.RegionDataType = 1               # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0 = 0
    region.RegionLocationMinY0 = 0
    region.RegionLocationMaxX1 = cols - 1
    region.RegionLocationMaxY1 = rows - 1
    region.PhysicalUnitsXDirection = 3      # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = float(spacing_mm) / 10.0
    region.PhysicalDeltaY = float(spacing_mm) / 10.0
    ds.SequenceOfUltrasoundRegions = [region]
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# x264 with macroblock-tree rate control wrote different bytes for the same frames in different
# processes (PyAV 18, x264 core 165, even with one thread); with mbtree=0 the bytes are stable.
X264_OPTIONS = {"threads": "1", "x264-params": "mbtree=0"}


def write_video(path, frames: np.ndarray, crf: int) -> Path:
    """H.264 (libx264, yuv420p, ``crf``, ``X264_OPTIONS``) MP4 of (N, H, W) uint8 gray frames,
    byte-identical for identical frames."""
    import av

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FRAME_RATE,
                                options={"crf": str(int(crf)), **X264_OPTIONS})
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for f in frames:
            vf = av.VideoFrame.from_ndarray(f, format="gray").reformat(format="yuv420p")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_still(path, frame: np.ndarray) -> Path:
    """8-bit grayscale PNG (Pillow writes no timestamp or software chunk)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(path, format="PNG")
    return path


def still_names(sid: str, n: int) -> list[str]:
    """HC18-like names: ``sid_HC.png``, ``sid_2HC.png``, ``sid_3HC.png``, ..."""
    return [f"{sid}_HC.png" if k == 0 else f"{sid}_{k + 1}HC.png" for k in range(n)]


def write_subject(out_dir, subject: Subject, fmt: str, crf: int, seed: int) -> list[tuple]:
    """Write one subject's file(s) in format ``fmt``; return (image_name, frame index) per frame."""
    out_dir = Path(out_dir)
    sid, s = subject.subject_id, subject.head.spacing_mm
    n = len(subject.frames)
    if fmt == "dicom":
        write_dicom(out_dir / "dicom" / f"{sid}.dcm", subject.frames, s, sid, seed)
        return [(f"{sid}.dcm", k) for k in range(n)]
    if fmt == "video":
        write_video(out_dir / "video" / f"{sid}.mp4", subject.frames, crf)
        write_json(out_dir / "video" / f"{sid}.json", {"pixel_spacing_mm": s, "subject_id": sid})
        return [(f"{sid}.mp4", k) for k in range(n)]
    if fmt == "png":
        names = still_names(sid, n)
        for name, frame in zip(names, subject.frames):
            write_still(out_dir / "stills" / name, frame)
            write_json(out_dir / "stills" / f"{Path(name).stem}.json", {"pixel_spacing_mm": s})
        return [(name, 0) for name in names]
    raise ParamError(f"params.yaml: synthesize.formats has {fmt!r}; choose from {list(FORMATS)}")


def _readme(cfg: dict, seed: int, summary: dict) -> str:
    counts, faults, quality = summary["subjects"], summary["label_faults"], summary["qualities"]
    return "\n".join([
        "# Synthetic fetal head ultrasound (generated; do not edit)",
        "",
        "Written by `python stages/synthesize.py` (`fhbiometry.synth`) from params.yaml "
        f"(seed {seed}, section `synthesize`); the same params give byte-identical files.",
        "",
        f"- {sum(counts.values())} subjects, {summary['frames']} frames of "
        f"{cfg['width']}x{cfg['height']} px (cine of {cfg['frames_per_subject'][0]} to "
        f"{cfg['frames_per_subject'][1]} frames per subject)",
        f"- {counts.get('dicom', 0)} subjects as multi-frame ultrasound DICOM (`dicom/subNNN.dcm`, "
        f"PixelSpacing, PatientID), {counts.get('video', 0)} as H.264 MP4 with a JSON sidecar "
        f"(`video/`), {counts.get('png', 0)} as PNG stills with JSON sidecars (`stills/`, "
        "HC18-like names `subNNN_HC.png`, `subNNN_2HC.png`, ...)",
        f"- gestational age {cfg['ga_weeks'][0]:g} to {cfg['ga_weeks'][1]:g} weeks (BPD from the "
        f"inverted Hadlock formula), BPD/OFD {cfg['ratio'][0]:g} to {cfg['ratio'][1]:g}, OFD "
        f"{cfg['head_fraction'][0]:g} to {cfg['head_fraction'][1]:g} of the frame height",
        "- frame quality: " + ", ".join(f"{quality[q]} {q}" for q in QUALITIES),
        f"- label faults injected into landmarks.csv on purpose: {sum(faults.values())} ("
        + ", ".join(f"{v} {k}" for k, v in faults.items()) + ")",
        "",
        "Files:",
        "",
        "- `landmarks.csv`: one row per frame: `image_name` (file name), `frame` (0-based index "
        "in the file, 0 for stills), `ofd_1_x ... bpd_2_y` in pixels (x right, y down, pixel "
        "centres at integers). OFD = major axis ends of the outer skull ellipse, BPD = minor "
        "axis ends, in canonical order.",
        "- `truth.csv`: per frame the exact outer skull ellipse (`cx, cy, semi_a, semi_b` px, "
        "`angle_deg` of the major axis from +x), skull thickness `skull_px`, `spacing_mm`, "
        "`bpd_mm`, `ofd_mm`, `ga_weeks`, `quality` and `label_fault` (empty = the landmarks.csv "
        "row is exact), and the exact landmarks. For tests and QC evaluation; the pipeline reads "
        "landmarks.csv.",
        "",
    ])


def generate(out_dir, cfg: dict, seed: int, progress: bool = True) -> dict:
    """Write the synthetic data set into ``out_dir`` (created if absent; the stage empties it).

    Returns a summary: subjects per format, frames, frame qualities, label faults per kind,
    files written."""
    from tqdm import tqdm

    cfg = check_config(cfg)
    if int(seed) != seed or int(seed) < 0:
        raise ParamError(f"params.yaml: seed = {seed!r}; use a whole number >= 0")
    seed = int(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = allocate_formats(cfg["subjects"], cfg["formats"], seed)
    rows, points = [], []
    for i in tqdm(range(cfg["subjects"]), desc="synthesize", unit="subject", disable=not progress):
        subject = make_subject(i, cfg, seed)
        names = write_subject(out_dir, subject, formats[i], cfg["video_crf"], seed)
        h = subject.head
        for k, (name, frame_index) in enumerate(names):
            cx, cy, angle = subject.poses[k]
            rows.append({
                "image_name": name, "frame": frame_index, "subject_id": subject.subject_id,
                "format": formats[i], "cx": cx, "cy": cy, "semi_a": h.semi_a, "semi_b": h.semi_b,
                "angle_deg": math.degrees(angle) % 180.0, "skull_px": h.skull_px,
                "spacing_mm": h.spacing_mm, "bpd_mm": h.bpd_mm, "ofd_mm": h.ofd_mm,
                "ratio": h.ratio, "ga_weeks": h.ga_weeks, "quality": subject.qualities[k],
                "label_fault": "",
            })
            points.append(subject.landmarks(k))
    faults = choose_faults(len(rows), cfg["label_faults"], seed)
    fault_rng = _rng(seed, _STREAM_FAULTS, 1)
    labels = []
    for j, (row, pts) in enumerate(zip(rows, points)):
        row.update(zip(COORD_COLUMNS, (float(v) for v in pts.ravel())))
        if j in faults:
            row["label_fault"] = faults[j]
            pts = corrupt_points(pts, faults[j], cfg["width"], cfg["height"], fault_rng)
        labels.append([row["image_name"], row["frame"], *(float(v) for v in pts.ravel())])
    write_csv(pd.DataFrame(labels, columns=list(LANDMARK_COLUMNS)), out_dir / "landmarks.csv",
              digits=2)
    truth = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    write_csv(truth, out_dir / "truth.csv", digits=6)
    summary = {
        "subjects": {f: formats.count(f) for f in FORMATS},
        "frames": len(rows),
        "qualities": {q: int((truth["quality"] == q).sum()) for q in QUALITIES},
        "label_faults": {k: sum(1 for v in faults.values() if v == k) for k in FAULT_KINDS},
    }
    (out_dir / "README.md").write_text(_readme(cfg, seed, summary))
    summary["files"] = sum(1 for p in out_dir.rglob("*") if p.is_file())
    log.info("wrote %d files (%d frames) to %s", summary["files"], summary["frames"], out_dir)
    return summary

"""Anatomy and probe motion: the fan (field of view), the head drawn per subject (sizes from
gestational age, skull, gaps, brain structures), and the poses (centre, angle) of a cine."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import fpmath


def bpd_mm_from_ga(ga_weeks):
    """BPD (outer, mm) for a gestational age (weeks): the inverted Hadlock (1982) formula
    ``GA = 9.54 + 1.482 BPD + 0.1676 BPD^2`` with BPD in cm (24 mm at 14, 98 mm at 40 weeks)."""
    ga = np.asarray(ga_weeks, dtype=np.float64)
    a, b, c = 0.1676, 1.482, 9.54 - ga
    return 10.0 * (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)



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
        r = fpmath.hypot(dx, dy)
        theta = fpmath.arctan2(dx, dy)
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
    sin_t, cos_t = fpmath.sin_cos(np.linspace(0, 2 * np.pi, n, endpoint=False))
    ca, sa = math.cos(angle), math.sin(angle)
    x = cx + a * cos_t * ca - b * sin_t * sa
    y = cy + a * cos_t * sa + b * sin_t * ca
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
    raise ValueError(
        f"synthesize: a head with OFD {2 * head.semi_a:.0f} px does not fit into the "
        f"{width}x{height} fan ({tries} tries); in params.yaml lower the upper bound of "
        "synthesize.head_fraction (or raise synthesize.width)")


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

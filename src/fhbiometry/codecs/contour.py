"""Contour codec (kind ``contour``): the four landmark heatmaps of ``HeatmapCodec`` plus one
channel, a Gaussian band along the skull ellipse, decoded by one ellipse fitted to the band.

Encoding: channels 0-3 are the heatmap codec's targets; channel 4 is
``peak * exp(-d^2 / (2 sigma^2))`` with ``d`` the (Sampson) distance of each cell to the
ellipse through the four landmarks: centre the midpoint of the OFD ends, semi-axes half the
OFD and half the BPD, angle the OFD's direction (for clean labels the annotated skull ellipse;
``core.geometry.ellipse_landmarks`` is its inverse). NaN landmarks give an empty band.

Decoding (``source``): the landmark heatmaps decoded as ``HeatmapCodec`` does (``decode.method``,
``decode.pairs``) seed the fit: rays from their centre give one sub-cell ridge point of the band
each (``ellipse_fit.ridge_points``); the points above ``threshold`` times the channel's maximum
(less those beside a gap, ``ellipse_fit.trim_gap_edges``, and those narrower than ``MIN_WIDTH``
sigma: specks), weighted by their values, and the four decoded landmarks (``both``; each with the weight of
``LANDMARK_RAYS`` ridge points times its peak) are fitted by one weighted direct least-squares
ellipse with one robust reweighting pass (``ellipse_fit.robust_fit``). The four landmarks are the
fitted ellipse's axis ends: the axis nearer the decoded OFD's direction is the OFD, and each end
goes to the channel whose decoded point is nearer. Where the fit fails or disagrees grossly with
the landmarks (``plausible``), the frame keeps the landmark decoding. ``landmarks``: no fit;
``contour``: the ridge points alone (the landmarks still seed the rays and order the ends).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar

import numpy as np

from fhbiometry.codecs.base import Decoded
from fhbiometry.codecs.ellipse_fit import (MIN_POINTS, Ellipse, band_distance, ridge_points, robust_fit,
                                           trim_gap_edges)
from fhbiometry.codecs.heatmap import HeatmapCodec
from fhbiometry.codecs.losses import heatmap_loss
from fhbiometry.core.choices import CONTOUR_SOURCES

SOURCES = CONTOUR_SOURCES  # what the ellipse is fitted to (params decode.contour)
LANDMARK_RAYS = 8.0     # weight of one decoded landmark in the fit, in ridge points (times its peak)
MIN_WIDTH = 0.5        # ridge points narrower than this share of sigma (bright specks) are dropped
MAX_AXIS_RATIO = 2.0    # a fitted semi-axis off the landmarks' by more than this factor: fall back
MAX_CENTRE_SHIFT = 0.5  # a fitted centre farther than this share of the landmark OFD: fall back


def landmark_ellipse(cells) -> tuple[np.ndarray, float, float, float]:
    """(centre, a, b, angle) of the ellipse through four landmarks (cells): OFD midpoint, half
    the OFD and half the BPD, the OFD's direction."""
    p = np.asarray(cells, np.float64)
    d = p[1] - p[0]
    a = 0.5 * float(np.hypot(*d))
    b = 0.5 * float(np.hypot(*(p[3] - p[2])))
    return 0.5 * (p[0] + p[1]), a, b, float(np.arctan2(d[1], d[0]))


def order_ends(ellipse: Ellipse, seeds) -> np.ndarray:
    """(4, 2) axis ends of ``ellipse`` in the landmark order of ``seeds`` (4, 2): the axis nearer
    the seeds' OFD direction is the OFD; within each pair, the end assignment nearer the seeds."""
    seeds = np.asarray(seeds, np.float64)
    ends = ellipse.ends()
    ofd_dir = seeds[1] - seeds[0]
    ofd_axis = 0 if abs(ofd_dir @ ellipse.axes[0]) >= abs(ofd_dir @ ellipse.axes[1]) else 1
    out = []
    for pair, axis in zip(((0, 1), (2, 3)), (ofd_axis, 1 - ofd_axis)):
        e0, e1 = ends[axis]
        s0, s1 = seeds[pair[0]], seeds[pair[1]]
        keep = np.hypot(*(e0 - s0)) + np.hypot(*(e1 - s1)) <= np.hypot(*(e1 - s0)) + np.hypot(*(e0 - s1))
        out.extend([e0, e1] if keep else [e1, e0])
    return np.stack(out)


def plausible(ellipse: Ellipse, seeds) -> bool:
    """The fit agrees with the landmarks up to ``MAX_AXIS_RATIO`` and ``MAX_CENTRE_SHIFT``."""
    centre, a, b, _ = landmark_ellipse(seeds)
    semi = np.sort(ellipse.semi)[::-1]
    ref = np.sort([a, b])[::-1]
    if not (np.isfinite(ellipse.centre).all() and (ref > 0).all() and (semi > 0).all()):
        return False
    ratio = semi / ref
    shift = np.hypot(*(ellipse.centre - centre))
    return bool((ratio < MAX_AXIS_RATIO).all() and (ratio > 1 / MAX_AXIS_RATIO).all()
                and shift <= MAX_CENTRE_SHIFT * 2 * ref[0])


@dataclass(frozen=True)
class ContourCodec(HeatmapCodec):
    threshold: float = 0.3      # ridge points below this fraction of the channel's maximum are dropped
    source: str = "both"        # what the ellipse is fitted to (SOURCES)
    contour_weight: float = 1.0  # the band channel's weight in the loss; 0: untrained, decode from the landmarks
    kind: ClassVar[str] = "contour"

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.threshold < 1:
            raise ValueError(f"contour threshold must be >= 0 and < 1, got {self.threshold}")
        if self.source not in SOURCES:
            raise ValueError(f"contour source {self.source!r}: choose one of {list(SOURCES)}")
        if not self.contour_weight >= 0:
            raise ValueError(f"contour band weight must be >= 0, got {self.contour_weight}")

    @classmethod
    def from_params(cls, input_size: int, codec: dict, decode: dict) -> "ContourCodec":
        """The heatmap codec's settings plus ``codec.contour_weight`` (``schema.model_codec_params``)
        and ``decode.contour``."""
        base = super().from_params(input_size, codec, decode)
        return replace(base, contour_weight=float(codec.get("contour_weight", 1.0)),
                       source=decode.get("contour", base.source))

    def settings(self) -> dict:
        return {**super().settings(), "contour_weight": self.contour_weight}

    # ---- encode ----------------------------------------------------------------------
    def encode_band(self, points_in) -> np.ndarray:
        """(4, 2) input points -> (H, H) float32 Gaussian band along their ellipse."""
        n = self.heatmap_size
        cells = self.to_cells(points_in)
        if not np.isfinite(cells).all():
            return np.zeros((n, n), np.float32)
        centre, a, b, angle = landmark_ellipse(cells)
        if not (a > 0 and b > 0):
            return np.zeros((n, n), np.float32)
        d = band_distance((n, n), centre, a, b, angle)
        return (self.peak * np.exp(-d ** 2 / (2 * self.sigma ** 2))).astype(np.float32)

    def encode_one(self, points_in) -> np.ndarray:
        """(4, 2) input points -> (5, H, H) float32: four landmark heatmaps and the band."""
        return np.concatenate([super().encode_one(points_in), self.encode_band(points_in)[None]])

    # ---- decode ----------------------------------------------------------------------
    def fit_frame(self, band, seeds, peak, source: str) -> np.ndarray | None:
        """The four landmarks (cells) of the ellipse fitted to one frame's band, or None."""
        centre, a, b, angle = landmark_ellipse(seeds)
        if not (a > 0 and b > 0 and np.isfinite([a, b, angle]).all() and np.isfinite(centre).all()):
            return None
        pts, vals, width = ridge_points(band, centre, a, b, angle)
        top = float(np.max(band))
        keep = trim_gap_edges((vals > self.threshold * top) & (vals > 0), max(a, b))
        keep &= width > MIN_WIDTH * self.sigma
        if keep.sum() < MIN_POINTS:
            return None
        pts, w = pts[keep], vals[keep]
        if source == "both":
            lw = LANDMARK_RAYS * float(w.mean()) * np.clip(np.nan_to_num(peak) / self.peak, 0.0, 1.0)
            pts, w = np.concatenate([pts, seeds]), np.concatenate([w, lw])
        ellipse = robust_fit(pts, w)
        if ellipse is None or not plausible(ellipse, seeds):
            return None
        return order_ends(ellipse, seeds)

    def decode(self, outputs, method: str | None = None, pairs=None, source: str | None = None) -> Decoded:
        """(N, 5, H, W) outputs -> ``Decoded``: the landmark decoding (``method``, ``pairs`` as the
        heatmap codec's) moved onto the fitted ellipse's axis ends (``source``, default the codec's)."""
        outputs = np.asarray(outputs, np.float64)
        marks = HeatmapCodec.decode(self, outputs[:, :4], method, pairs)
        source = source or (self.source if self.contour_weight > 0 else "landmarks")
        if source == "landmarks":
            return marks
        seeds = self.to_cells(marks.points)
        cells = seeds.copy()
        for i in range(len(outputs)):
            fitted = self.fit_frame(outputs[i, 4], seeds[i], marks.peak[i], source)
            if fitted is not None:
                cells[i] = fitted
        return Decoded(self.from_cells(cells), marks.peak)

    def with_decoding(self, decode: dict) -> "ContourCodec":
        return replace(super().with_decoding(decode), source=decode.get("contour", self.source))

    def report(self) -> dict:
        return {**super().report(), "decode_contour": self.source if self.contour_weight > 0 else "landmarks",
                "contour_weight": self.contour_weight}

    def variants(self, outputs) -> dict:
        """The heatmap codec's sections (each through the ellipse fit) and ``contour``: the fit to
        both, to the contour alone, and the landmark decoding alone."""
        out = super().variants(outputs)
        out["contour"] = {s: self.decode(outputs, source=s).points for s in SOURCES}
        return out

    # ---- training --------------------------------------------------------------------
    def make_loss(self, cfg: dict):
        """The heatmap loss on all five channels, the band's scaled by ``contour_weight``."""
        return partial(heatmap_loss, peak=self.peak, foreground_weight=cfg["foreground_weight"],
                       weight=cfg["heatmap_loss_weight"],
                       channel_weights=(1.0, 1.0, 1.0, 1.0, self.contour_weight))

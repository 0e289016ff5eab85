"""Heatmap codec: one Gaussian heatmap per landmark, decoded with sub-pixel precision.

Heatmap cell ``k`` covers input pixels ``[k*stride, (k+1)*stride)``; its centre is input pixel
``k*stride + (stride-1)/2``. A target is an unnormalised Gaussian with peak ``peak`` at the
sub-pixel landmark position and standard deviation ``sigma`` cells. Decoding: the peak cell
(``decode.pairs``: the two ends of each diameter found jointly, see ``decoders.joint_pair_peaks``)
refined by ``decode.method`` (the registry ``core.choices.DECODERS``; ``ellipse``: the quadratic points moved
onto the axis ends of one fitted ellipse, ``decoders.fit_ellipse_axes``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar

import numpy as np

from fhbiometry.codecs.base import Decoded, KeypointCodec
from fhbiometry.codecs.decoders import decode_cells
from fhbiometry.codecs.losses import heatmap_loss
from fhbiometry.core.choices import DECODERS
from fhbiometry.core.geometry import BPD, OFD


@dataclass(frozen=True)
class HeatmapCodec(KeypointCodec):
    input_size: int = 128
    stride: int = 4
    sigma: float = 2.0
    peak: float = 1.0
    method: str = "quadratic"
    pairs: bool = True
    kind: ClassVar[str] = "heatmap"

    def __post_init__(self):
        if self.stride <= 0 or self.input_size % self.stride:
            raise ValueError(f"input.size ({self.input_size}) must be a positive multiple of "
                             f"codec.stride ({self.stride})")
        if self.sigma <= 0:
            raise ValueError(f"codec.sigma must be > 0, got {self.sigma}")
        DECODERS.check(self.method)

    @classmethod
    def from_params(cls, input_size: int, codec: dict, decode: dict) -> "HeatmapCodec":
        return cls(input_size=input_size, stride=int(codec["stride"]), sigma=float(codec["sigma"]),
                   peak=float(codec["peak"]), method=decode.get("method", "quadratic"),
                   pairs=bool(decode.get("pairs", True)))

    def settings(self) -> dict:
        return {"kind": self.kind, "input_size": self.input_size, "stride": self.stride,
                "sigma": self.sigma, "peak": self.peak}

    @property
    def heatmap_size(self) -> int:
        return self.input_size // self.stride

    @property
    def pair_radius(self) -> float:
        """Joint pair decoding: the second end is sought beyond this many cells from the first."""
        return 3.0 * self.sigma

    # ---- coordinates -----------------------------------------------------------------
    def to_cells(self, points_in) -> np.ndarray:
        return (np.asarray(points_in, dtype=np.float64) - (self.stride - 1) / 2) / self.stride

    def from_cells(self, cells) -> np.ndarray:
        return np.asarray(cells, dtype=np.float64) * self.stride + (self.stride - 1) / 2

    # ---- encode ----------------------------------------------------------------------
    def encode_one(self, points_in) -> np.ndarray:
        """(K, 2) input points -> (K, H, H) float32 Gaussian targets (NaN points give zeros)."""
        cells = self.to_cells(points_in)
        n = self.heatmap_size
        grid = np.arange(n, dtype=np.float64)
        out = np.zeros((len(cells), n, n), dtype=np.float32)
        for k, (u, v) in enumerate(cells):
            if not (np.isfinite(u) and np.isfinite(v)):
                continue
            gx = np.exp(-((grid - u) ** 2) / (2 * self.sigma ** 2))
            gy = np.exp(-((grid - v) ** 2) / (2 * self.sigma ** 2))
            out[k] = (self.peak * gy[:, None] * gx[None, :]).astype(np.float32)
        return out

    def encode(self, points_in) -> np.ndarray:
        """(B, K, 2) input points -> (B, K, H, H) float32 targets."""
        return np.stack([self.encode_one(p) for p in points_in]).astype(np.float32)

    # ---- decode ----------------------------------------------------------------------
    def decode(self, outputs, method: str | None = None, pairs=None) -> Decoded:
        """(N, K, H, W) heatmaps -> ``Decoded``. ``method`` and ``pairs`` (channel index pairs
        decoded jointly; ``()`` = every channel on its own) default to the codec's settings."""
        if pairs is None:
            pairs = (OFD, BPD) if self.pairs and np.shape(outputs)[1] == 4 else ()
        cells, peak = decode_cells(outputs, method or self.method, pairs, self.pair_radius)
        return Decoded(self.from_cells(cells), peak)

    def with_decoding(self, decode: dict) -> "HeatmapCodec":
        """A copy with params ``decode`` (``method``, ``pairs``)."""
        return replace(self, method=decode.get("method", self.method), pairs=bool(decode.get("pairs", self.pairs)))

    def report(self) -> dict:
        """The decoding settings in metrics/eval, named as params ``decode.method``, ``decode.pairs``."""
        return {"decode_method": self.method, "decode_pairs": bool(self.pairs)}

    def variants(self, outputs) -> dict:
        """Alternative decodings evaluation compares: every method (with the pair setting), and
        the method with and without joint pairs. {section: {name: (N, 4, 2) input points}}."""
        joint = None if self.pairs else (OFD, BPD)
        return {"decode": {m: self.decode(outputs, m).points for m in DECODERS.names()},
                "pairs": {"joint": self.decode(outputs, self.method, joint).points,
                          "independent": self.decode(outputs, self.method, ()).points}}

    # ---- training --------------------------------------------------------------------
    def make_loss(self, cfg: dict):
        return partial(heatmap_loss, peak=self.peak, foreground_weight=cfg["foreground_weight"],
                       weight=cfg["heatmap_loss_weight"])

    def mean_output(self, points_in):
        return None

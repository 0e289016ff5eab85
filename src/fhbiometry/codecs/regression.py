"""Regression codec: the four landmarks as eight numbers.

Targets are the input coordinates either ``normalised`` to [0, 1] (pixel edges of the square at
0 and 1; the default) or in raw input ``pixels`` (the seed's recipe, kept for the ablation),
flattened ``(x1, y1, x2, y2, ...)``. The modes are the registry ``core.choices.COORDINATES``:
one class each with ``encode``, ``decode`` and ``unit`` (the targets' unit in input pixels).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np

from fhbiometry.codecs.base import Decoded, KeypointCodec
from fhbiometry.codecs.losses import SMOOTH_L1_BETA, regression_loss
from fhbiometry.core.choices import COORDINATES


class Normalised:
    """Input pixels -> [0, 1] (pixel edges of the square at 0 and 1)."""

    @staticmethod
    def encode(points, size: int):
        return (points + 0.5) / size

    @staticmethod
    def decode(values, size: int):
        return values * size - 0.5

    @staticmethod
    def unit(size: int) -> float:
        return 1.0


class Pixels:
    """Input pixels as they are."""

    @staticmethod
    def encode(points, size: int):
        return points

    @staticmethod
    def decode(values, size: int):
        return values

    @staticmethod
    def unit(size: int) -> float:
        return float(size)


@dataclass(frozen=True)
class RegressionCodec(KeypointCodec):
    input_size: int = 128
    coordinates: str = "normalised"
    kind: ClassVar[str] = "regression"
    stride: ClassVar[None] = None      # no spatial output
    peak: ClassVar[float] = 1.0        # no heatmap

    def __post_init__(self):
        COORDINATES.check(self.coordinates)

    @classmethod
    def from_params(cls, input_size: int, codec: dict, decode: dict) -> "RegressionCodec":
        return cls(input_size=input_size, coordinates=codec["coordinates"])

    def settings(self) -> dict:
        return {"kind": self.kind, "input_size": self.input_size, "coordinates": self.coordinates}

    def normalise(self, points_in) -> np.ndarray:
        """Input pixel coordinates -> [0, 1] (pixel edges of the square at 0 and 1)."""
        return Normalised.encode(np.asarray(points_in, dtype=np.float64), self.input_size)

    def denormalise(self, values) -> np.ndarray:
        return Normalised.decode(np.asarray(values, dtype=np.float64), self.input_size)

    def encode64(self, points_in) -> np.ndarray:
        """(..., K, 2) input points -> (..., 2K) float64 targets in ``self.coordinates``."""
        p = np.asarray(points_in, dtype=np.float64)
        values = COORDINATES.get(self.coordinates).encode(p, self.input_size)
        return values.reshape(p.shape[:-2] + (-1,))

    def encode(self, points_in) -> np.ndarray:
        """(B, K, 2) input points -> (B, 2K) float32 targets."""
        return self.encode64(points_in).astype(np.float32)

    def decode(self, outputs) -> Decoded:
        """(N, 2K) outputs -> ``Decoded`` with (N, K, 2) input points."""
        v = np.asarray(outputs, dtype=np.float64)
        v = v.reshape(v.shape[:-1] + (-1, 2))
        return Decoded(COORDINATES.get(self.coordinates).decode(v, self.input_size), None)

    def with_decoding(self, decode: dict) -> "RegressionCodec":
        return self

    def report(self) -> dict:
        return {}

    def variants(self, outputs) -> dict:
        return {}

    def make_loss(self, cfg: dict):
        beta = SMOOTH_L1_BETA * COORDINATES.get(self.coordinates).unit(self.input_size)
        return partial(regression_loss, loss=cfg["loss"], pair_invariant=cfg["pair_invariant_loss"], beta=beta)

    def mean_output(self, points_in):
        """The encoded mean of (N, K, 2) training points: where a regression head may start."""
        return self.encode64(np.asarray(points_in, np.float64).mean(axis=0))

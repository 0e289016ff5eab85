"""The interface every codec declares (as MMPose's ``BaseKeypointCodec``) and what ``decode`` returns.

Training, evaluation and inference hold a ``KeypointCodec`` and use only what it declares here:
they never probe for an attribute (``getattr(codec, "stride", 4)``) or ask which kind it is.
A codec is registered by its kind in ``core.choices.KINDS``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Decoded:
    points: np.ndarray          # (N, 4, 2) network-input pixels
    peak: np.ndarray | None     # (N, 4) heatmap value at each decoded point; None without heatmaps


class KeypointCodec(ABC):
    """Landmarks <-> network targets for one model kind.

    Declared attributes: ``kind`` (its name in ``core.choices.KINDS``), ``input_size`` (network
    input pixels), ``stride`` (the output stride the network must have; None: no spatial output)
    and ``peak`` (a target's value at a landmark, by which confidence scales decoded peaks; 1.0
    for codecs without heatmaps)."""

    kind: ClassVar[str]
    input_size: int
    stride: int | None
    peak: float

    @classmethod
    @abstractmethod
    def from_params(cls, input_size: int, codec: dict, decode: dict) -> "KeypointCodec":
        """The codec of params ``codec`` (and ``decode``) for inputs of ``input_size`` pixels."""

    @abstractmethod
    def settings(self) -> dict:
        """What a checkpoint stores to rebuild the codec (``kind`` plus the constructor's keywords)."""

    @abstractmethod
    def encode(self, points_in) -> np.ndarray:
        """(B, K, 2) network-input points -> float32 training targets."""

    @abstractmethod
    def decode(self, outputs) -> Decoded:
        """Network outputs -> ``Decoded`` (points in network-input pixels)."""

    @abstractmethod
    def with_decoding(self, decode: dict) -> "KeypointCodec":
        """A copy with the decoding settings of params ``decode``."""

    @abstractmethod
    def report(self) -> dict:
        """The decoding settings as entries of the evaluation metrics."""

    @abstractmethod
    def variants(self, outputs) -> dict:
        """Alternative decodings evaluation compares: {section: {name: (N, 4, 2) points}}."""

    @abstractmethod
    def make_loss(self, cfg: dict):
        """The training loss ``loss(pred, target)`` for the model settings ``cfg``."""

    @abstractmethod
    def mean_output(self, points_in):
        """The encoded mean shape a regression head can start at (None: no such output)."""

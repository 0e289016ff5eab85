"""Codecs: landmarks <-> network targets, one per target type (as MMPose's ``codecs``).

Every codec implements ``base.KeypointCodec`` (declared attributes ``kind``, ``input_size``,
``stride``, ``peak``) and is registered by its kind in ``core.choices.KINDS``, so training,
evaluation and inference never ask which kind of model they hold:

* ``encode(points_in)``: (B, 4, 2) network-input points -> float32 training targets;
* ``decode(outputs)``: network outputs -> ``Decoded`` (points in input pixels, and a per-landmark
  ``peak`` where the codec has one);
* ``make_loss(cfg)``: the training loss for the model settings ``cfg``;
* ``mean_output(points_in)``: the encoded mean shape a regression head can start at (None if
  the codec has no such output);
* ``with_decoding(decode)``, ``report()``, ``variants(outputs)``: the decoding settings (params
  ``decode``), their entries in the evaluation metrics, and the alternative decodings evaluation
  compares;
* ``settings()``: what a checkpoint stores to rebuild the codec (``codec_from_settings``).

The image <-> network input mapping is not a codec's job: ``core.letterbox.Letterbox``. Also owns
the losses (``losses``), which each codec's ``make_loss`` chooses, and the ellipse fitting of the
contour codec (``ellipse_fit``).

Never imports: models, training, inference, evaluation, measure, reporting, tools.
"""
from __future__ import annotations

from fhbiometry.codecs.base import Decoded, KeypointCodec
from fhbiometry.codecs.contour import ContourCodec
from fhbiometry.codecs.heatmap import HeatmapCodec
from fhbiometry.codecs.regression import RegressionCodec
from fhbiometry.core.choices import KINDS


def make_codec(kind: str, input_size: int, codec_params: dict, decode: dict | None = None) -> KeypointCodec:
    """The codec of a model ``kind`` from params ``codec`` (and ``decode`` for heatmaps)."""
    return KINDS.get(kind).from_params(int(input_size), codec_params, decode or {})


def codec_from_settings(settings: dict) -> KeypointCodec:
    """Rebuild a codec from ``codec.settings()`` (as stored in a checkpoint)."""
    settings = dict(settings)
    kind = settings.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"codec settings name kind {kind!r}; expected one of {list(KINDS.names())}")
    return KINDS.get(kind)(**settings)


__all__ = ["ContourCodec", "Decoded", "HeatmapCodec", "KeypointCodec", "RegressionCodec", "codec_from_settings", "make_codec"]

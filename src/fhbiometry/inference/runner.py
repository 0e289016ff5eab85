"""A trained model from its checkpoint, and landmark prediction in network-input pixels.

The caller holds a model and its codec and never asks which kind they are: ``predict`` runs the
network and ``codec.decode`` turns its outputs into points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fhbiometry.models.checkpoint import CheckpointError, read_checkpoint
from fhbiometry.codecs import codec_from_settings
from fhbiometry.core.choices import DEFAULT_HEAD_CHANNELS, DEFAULT_HEAD_SKIPS
from fhbiometry.core.geometry import BPD, LANDMARKS, OFD
from fhbiometry.core.letterbox import Letterbox
from fhbiometry.inference.tta import tta_points
from fhbiometry.models.networks import build_model, check_input_size, to_tensor


@dataclass
class Loaded:
    model: torch.nn.Module
    codec: object
    letterbox: Letterbox
    meta: dict


def load_model(path, arch: str | None = None, kind: str | None = None, fix: str = "",
               device="cpu") -> Loaded:
    """The model of a checkpoint in eval mode on ``device`` (checkpoints are device-free: trained
    anywhere, loaded anywhere), with its codec and letterbox. ``arch`` / ``kind``, when given, must
    match the checkpoint. Errors name the file and the fix."""
    state, meta = read_checkpoint(path, fix)
    fix = fix or f"rerun `dvc repro train@{getattr(path, 'stem', path)}`"
    for key, wanted in (("arch", arch), ("kind", kind)):
        if wanted is not None and meta[key] != wanted:
            raise CheckpointError(f"{path}: checkpoint {key} is {meta[key]!r}, expected {wanted!r}: {fix}")
    codec = codec_from_settings(meta["codec"])
    letterbox = Letterbox(**meta["input"])
    try:
        model = build_model(meta["arch"], meta["kind"], num_landmarks=len(meta.get("landmarks", LANDMARKS)),
                            head_channels=int(meta.get("head_channels", DEFAULT_HEAD_CHANNELS)),
                            skips=bool(meta.get("head_skips", DEFAULT_HEAD_SKIPS)), stride=codec.stride)
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: the weights do not fit a {meta['kind']} {meta['arch']} model "
                              f"({first}): {fix}") from err
    model.to(device).eval()
    return Loaded(model, codec, letterbox, meta)


def network_outputs(model, images, batch_size: int = 32) -> np.ndarray:
    """Raw float32 outputs of ``model`` for (N, S, S) uint8 input images."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected (N, S, S) images, got shape {images.shape}")
    check_input_size(images.shape[1])
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            outputs.append(model(to_tensor(images[start:start + batch_size]).to(device)).float().cpu().numpy())
    if not outputs:
        with torch.no_grad():
            shape = model(to_tensor(np.zeros((1,) + images.shape[1:], np.uint8))).shape[1:]
        return np.zeros((0,) + tuple(shape), np.float32)
    return np.concatenate(outputs).astype(np.float32)


def predict(model, codec, images, batch_size: int = 32):
    """(N, S, S) uint8 letterboxed images -> ``Decoded`` (points in input pixels) and the raw outputs."""
    images = np.asarray(images)
    if images.ndim == 3 and images.shape[1] != codec.input_size:
        raise ValueError(f"images are {images.shape[1]} px but the model was trained on "
                         f"{codec.input_size} px inputs")
    outputs = network_outputs(model, images, batch_size)
    return codec.decode(outputs), outputs


# ---- backends: who runs the network ----------------------------------------------------------
class TorchBackend:
    """Runs a PyTorch model: ``outputs`` gives the raw network outputs of (N, S, S) uint8 images,
    ``batch_size`` frames at a time. Every backend (``inference.backends.BACKENDS``) has this one method."""

    name = "torch"

    def __init__(self, model, batch_size: int = 32):
        self.model = model
        self.batch_size = int(batch_size)

    @classmethod
    def from_checkpoint(cls, loaded: Loaded, path, batch_size: int = 32) -> "TorchBackend":
        return cls(loaded.model, batch_size)

    def outputs(self, images) -> np.ndarray:
        return network_outputs(self.model, images, self.batch_size)


# registered as backend "torch" in inference/backends.py
# ---- horizontal flip: test-time augmentation and the flip agreement of the confidence -----------
def flip_images(images) -> np.ndarray:
    """(N, S, S) images mirrored left-right."""
    return np.ascontiguousarray(np.asarray(images)[:, :, ::-1])


def unflip_points(points, size: int) -> np.ndarray:
    """Points predicted on a mirrored input, in the unmirrored input: x -> (size - 1) - x (integer
    coordinates are pixel centres, so the mirror axis is at (size - 1) / 2)."""
    p = np.array(points, dtype=np.float64, copy=True)
    p[..., 0] = (size - 1) - p[..., 0]
    return p


def match_ends(reference, points) -> np.ndarray:
    """``points`` with the two ends of each pair swapped where that brings them closer to
    ``reference`` (a mirror exchanges left and right ends, so the canonical order flips)."""
    ref, p = np.asarray(reference, np.float64), np.array(points, dtype=np.float64, copy=True)
    for i, j in (OFD, BPD):
        same = np.linalg.norm(p[:, i] - ref[:, i], axis=-1) + np.linalg.norm(p[:, j] - ref[:, j], axis=-1)
        cross = np.linalg.norm(p[:, j] - ref[:, i], axis=-1) + np.linalg.norm(p[:, i] - ref[:, j], axis=-1)
        swap = cross < same
        p[swap, i], p[swap, j] = p[swap, j], p[swap, i]  # fancy indexing copies
    return p


@dataclass
class FramePrediction:
    """What the network says about N frames, in network-input pixels."""

    points: np.ndarray              # (N, 4, 2) the prediction (the flip mean when flip_test)
    peak: np.ndarray | None         # (N, 4) heatmap peaks of the unflipped pass; None for regressors
    flip_points: np.ndarray | None  # (N, 4, 2) the mirrored input's prediction, unmirrored, ends matched
    outputs: np.ndarray             # raw outputs of the unflipped pass
    tta_points: np.ndarray | None = None  # (T, N, 4, 2) the rotated / zoomed passes, mapped back


def predict_frames(backend, codec, images, flip: bool = True, flip_test: bool = False,
                   tta=()) -> FramePrediction:
    """Predict (N, S, S) letterboxed images with ``backend`` and decode with ``codec``. ``flip``:
    also predict the mirrored images (one more forward pass) for ``flip_points``; ``flip_test``:
    the prediction is the mean of the frame's and the unmirrored mirror's points; ``tta``:
    (degrees, zoom) transforms, one more pass each, for ``tta_points`` (inference/tta.py)."""
    images = np.asarray(images)
    outputs = backend.outputs(images)
    decoded = codec.decode(outputs)
    points, flipped = np.asarray(decoded.points, np.float64), None
    if flip or flip_test:
        mirrored = codec.decode(backend.outputs(flip_images(images))).points
        flipped = match_ends(points, unflip_points(mirrored, images.shape[-1]))
    if flip_test:
        points = 0.5 * (points + flipped)
    augmented = None
    if tta:
        augmented = tta_points(backend, codec, images, tta)
    return FramePrediction(points, decoded.peak, flipped, outputs, augmented)

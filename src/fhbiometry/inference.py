"""A trained model from its checkpoint, and landmark prediction in network-input pixels.

The caller holds a model and its codec and never asks which kind they are: ``predict`` runs the
network and ``codec.decode`` turns its outputs into points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import CheckpointError, read_checkpoint
from .codecs import codec_from_settings
from .geometry import LANDMARKS
from .letterbox import Letterbox
from .models import build_model, check_input_size, to_tensor


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
                            head_channels=int(meta.get("head_channels", 128)),
                            skips=bool(meta.get("head_skips", True)),
                            stride=int(meta["codec"].get("stride", 4)))
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

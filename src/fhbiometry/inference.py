"""Loading a checkpoint (contract 6) and predicting landmarks in network-input pixels."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from .codec import Codec
from .geometry import LANDMARKS
from .models import build_model, check_input_size, to_tensor

REQUIRED_KEYS = ("arch", "kind", "state_dict", "codec")


def load_checkpoint(path, arch: str | None = None, kind: str | None = None):
    """Return (model in eval mode, checkpoint dict).

    ``arch`` / ``kind``, when given, must match the checkpoint. Errors name the file and say
    which stage rebuilds it.
    """
    path = Path(path)
    fix = f"rerun `dvc repro train@{path.stem}`"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {fix}")
    # Our own files (written by the train stage); they hold numpy arrays and plain dicts.
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        have = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a fhbiometry checkpoint (needs keys {list(REQUIRED_KEYS)}, "
                         f"has {have}): {fix}")
    for key, wanted in (("arch", arch), ("kind", kind)):
        if wanted is not None and ckpt[key] != wanted:
            raise ValueError(f"{path}: checkpoint {key} is {ckpt[key]!r}, expected {wanted!r}: {fix}")
    codec = Codec(**ckpt["codec"])
    num_landmarks = len(ckpt.get("landmarks", LANDMARKS))
    try:
        model = build_model(ckpt["arch"], ckpt["kind"], num_landmarks=num_landmarks,
                            head_channels=int(ckpt.get("head_channels", 128)),
                            skips=bool(ckpt.get("head_skips", True)),
                            stride=int(ckpt.get("stride", codec.stride)))
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{path}: the weights do not fit a {ckpt['kind']} {ckpt['arch']} model "
                         f"({first}): {fix}") from err
    model.eval()
    return model, ckpt


def predict(model, ckpt: dict, images, batch_size: int = 32, decode: str | None = None,
            return_heatmaps: bool = False, pair_decode: bool | None = None) -> dict:
    """Predict (N, S, S) uint8 letterboxed images.

    Returns ``points`` (N, 4, 2) float64 input pixels, ``heatmaps`` (N, 4, h, h) float32 (heatmap
    models with ``return_heatmaps``, else None) and ``peak`` (N, 4) (heatmap models, else None).
    Heatmaps are decoded with ``decode`` / ``pair_decode`` or the checkpoint codec's settings; regression outputs
    with ``Codec.decode_coordinates``. Leaves the model in eval mode.
    """
    images = np.asarray(images)
    codec = Codec(**ckpt["codec"])
    if pair_decode is not None:
        codec = dataclasses.replace(codec, pair_decode=bool(pair_decode))
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected (N, S, S) images, got shape {images.shape}")
    size = int(ckpt.get("input_size", codec.input_size))
    if images.shape[1] != size:
        raise ValueError(f"images are {images.shape[1]} px but the model was trained on {size} px inputs")
    check_input_size(size)
    heatmap = ckpt["kind"] == "heatmap"
    n = len(images)
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            outputs.append(model(to_tensor(images[start:start + batch_size])).numpy())
    if heatmap:
        h = codec.heatmap_size
        maps = (np.concatenate(outputs) if outputs else np.zeros((0, 4, h, h), np.float32)).astype(np.float32)
        points, peak = codec.decode_heatmaps(maps, decode or codec.decode)
        return {"points": points.astype(np.float64), "heatmaps": maps if return_heatmaps else None,
                "peak": peak}
    flat = np.concatenate(outputs) if outputs else np.zeros((0, 8), np.float32)
    points = codec.decode_coordinates(flat.astype(np.float64))
    return {"points": points, "heatmaps": None, "peak": None}

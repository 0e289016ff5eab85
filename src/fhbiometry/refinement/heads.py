"""A model's heads: the four points it predicts on a split's inputs, in original pixels."""
from __future__ import annotations

import numpy as np

from fhbiometry.core.letterbox import to_original


def model_heads(loaded, arrays: dict, decode: dict) -> np.ndarray:
    """(N, 4, 2) points in ORIGINAL pixels that the model ``loaded`` (``runner.Loaded``) predicts
    on the arrays' images (decoding and flip test as params ``decode``)."""
    import torch  # lazy: torch only where a model runs

    from fhbiometry.inference.runner import TorchBackend, predict_frames  # lazy: torch

    codec = loaded.codec.with_decoding(decode)
    with torch.no_grad():
        frames = predict_frames(TorchBackend(loaded.model), codec, np.asarray(arrays["image"]), flip=False,
                                flip_test=bool(decode.get("flip_test", False)))
    return to_original(frames.points, np.asarray(arrays["transform"], np.float64))

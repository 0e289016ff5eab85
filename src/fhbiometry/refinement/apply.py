"""A refinement applied to new frames (``fhbiometry predict`` with a refinement's checkpoint):
the coarse model's heads -> head-normalised crops of the ORIGINAL frames -> the refinement's
points, mapped back to original pixels, as ``evaluate_refine`` measures it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fhbiometry.core.letterbox import to_original
from fhbiometry.refinement.crops import crop_heads


@dataclass
class Refined:
    """The refinement's points on N frames, in original pixels."""

    points: np.ndarray              # (N, 4, 2) the prediction
    flip_points: np.ndarray | None  # (N, 4, 2) the mirrored crop's prediction, unmirrored
    peak: np.ndarray | None         # (N, 4) heatmap peaks of the refinement; None for regressors
    whole_frame: int                # frames whose coarse head was not finite (cropped to the whole frame)
    tta_points: np.ndarray | None = None  # (T, N, 4, 2) the rotated / zoomed crops' predictions


def refine_frames(backend, codec, frames, heads, crop: dict, passes: int = 1, flip: bool = True,
                  flip_test: bool = False, tta=()) -> Refined:
    """The refinement (``backend`` and its ``codec``) on (N, H, W) ``frames`` whose heads the
    coarse model put at ``heads``; ``passes`` 2 cuts once more around the refined heads. ``crop``:
    the refinement's crop settings (its checkpoint's ``refine``); ``tta``: rotated / zoomed
    passes on the last crops (``inference.runner.predict_frames``)."""
    from fhbiometry.inference.runner import predict_frames  # lazy: torch only where a model runs

    if passes not in (1, 2):
        raise ValueError(f"decode.refine_passes must be 1 or 2, got {passes}")
    whole = []
    for i in range(passes):
        images, transforms, bad = crop_heads(list(frames), heads, int(crop["size"]), float(crop["context"]))
        whole.append(bad)
        fp = predict_frames(backend, codec, images, flip=flip, flip_test=flip_test, tta=tta if i == passes - 1 else ())
        heads = to_original(fp.points, transforms)
    flipped = None if fp.flip_points is None else to_original(fp.flip_points, transforms)
    augmented = None if fp.tta_points is None else np.stack([to_original(p, transforms) for p in fp.tta_points])
    return Refined(heads, flipped, fp.peak, whole[0], augmented)

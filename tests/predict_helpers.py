"""Small input files for the predict tests (checkpoints: conftest.untrained_checkpoint)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def head_frames(n: int, height: int = 72, width: int = 96, seed: int = 0) -> np.ndarray:
    """(n, H, W) uint8 frames with a bright elliptical ring (a head) on speckle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for k in range(n):
        cx, cy = width / 2 + k, height / 2
        r = np.hypot((xx - cx) / 30.0, (yy - cy) / 24.0)
        ring = np.exp(-((r - 1.0) / 0.08) ** 2)
        out.append(np.clip(40 + 200 * ring + rng.normal(0, 10, (height, width)), 0, 255).astype(np.uint8))
    return np.stack(out)


def make_inputs(folder) -> dict:
    """A 3-frame DICOM (spacing 0.2 mm, patient P1), a 3-frame MP4 with a sidecar, and two PNG stills
    of subject sub002 with sidecars."""
    from fhbiometry.synth.writers import write_dicom, write_still, write_video

    folder = Path(folder)
    paths = {"dicom": write_dicom(folder / "cine.dcm", head_frames(3), 0.2, "P1", 0),
             "video": write_video(folder / "clip.mp4", head_frames(3, 64, 96, seed=1), 18),
             "still1": write_still(folder / "stills/sub002_HC.png", head_frames(1, seed=2)[0]),
             "still2": write_still(folder / "stills/sub002_2HC.png", head_frames(1, seed=3)[0])}
    for key, spacing in (("video", 0.25), ("still1", 0.15), ("still2", 0.15)):
        paths[key].with_suffix(".json").write_text(json.dumps({"pixel_spacing_mm": spacing}))
    return paths

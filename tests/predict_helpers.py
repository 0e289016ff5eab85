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


def synthetic_head(width: int = 160, height: int = 128, index: int = 3) -> np.ndarray:
    """One frame of a subject of the embedded generator (``fhbiometry.synth``, the default data's
    params at a small size), cut to its bright part (pixels > ``area.DARK``): a head alone."""
    import yaml

    from fhbiometry.measure.area import DARK
    from fhbiometry.synth.subject import make_subject

    repo = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((repo / "params.yaml").read_text())["synthesize"]
    cfg.update(width=width, height=height, frames_per_subject=[1, 1])
    frame = make_subject(index, cfg, 42).frames[0]
    ys, xs = np.nonzero(frame > DARK)
    return np.ascontiguousarray(frame[ys.min():ys.max() + 1, xs.min():xs.max() + 1])


def screen_with(head: np.ndarray, at=(90, 60), size=(400, 300)) -> np.ndarray:
    """A scanner-screen-like frame: ``head`` at ``at`` (x, y) on black, with text lines, a
    caliper mark and a second (Doppler-like) panel of noise."""
    from PIL import Image, ImageDraw

    screen = np.zeros((size[1], size[0]), np.uint8)
    x, y = at
    screen[y:y + head.shape[0], x:x + head.shape[1]] = head
    image = Image.fromarray(screen)
    draw = ImageDraw.Draw(image)
    draw.text((5, 5), "Gen OB  BPD 45.2mm  GA 19w3d", fill=255)
    draw.text((5, size[1] - 18), "MI 0.9  TIS 0.3  C5-1", fill=200)
    draw.line([(x + 60, y + 40), (x + 70, y + 40)], fill=255)     # a caliper "+" on the image
    draw.line([(x + 65, y + 35), (x + 65, y + 45)], fill=255)
    out = np.asarray(image).copy()
    out[200:260, 300:380] = np.random.default_rng(0).integers(30, 200, (60, 80))
    return out


def region_item(bounds, spatial_format: int, data_type: int, delta_cm: float):
    """One SequenceOfUltrasoundRegions item (bounds inclusive, deltas in cm)."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.RegionLocationMinX0, item.RegionLocationMinY0, item.RegionLocationMaxX1, item.RegionLocationMaxY1 = bounds
    item.RegionSpatialFormat, item.RegionDataType = spatial_format, data_type
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = item.PhysicalDeltaY = delta_cm
    return item


def write_screen_dicom(path, frame: np.ndarray, regions: list, modality: str = "US") -> Path:
    """A one-frame DICOM of ``frame`` with the ultrasound ``regions`` (items of ``region_item``),
    no PixelSpacing, and ``modality``."""
    import pydicom

    from fhbiometry.synth.writers import write_dicom

    path = write_dicom(path, frame[None], 0.3, "SCREEN1", 0)
    ds = pydicom.dcmread(path)
    del ds.PixelSpacing
    ds.SequenceOfUltrasoundRegions = regions
    ds.Modality = modality
    ds.save_as(path, enforce_file_format=True)
    return Path(path)

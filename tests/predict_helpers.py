"""Small inputs and checkpoints for the predict tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fhbiometry.models.checkpoint import save_checkpoint
from fhbiometry.codecs import make_codec
from fhbiometry.core.geometry import LANDMARKS

SIZE = 64


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


def make_checkpoint(path, kind: str = "heatmap", arch: str = "resnet18") -> Path:
    """An untrained tiny checkpoint (64 px input) with the metadata ``load_model`` needs."""
    import torch

    from fhbiometry.models.networks import build_model

    codec = make_codec(kind, SIZE, {"coordinates": "normalised", "stride": 4, "sigma": 1.5, "peak": 1.0},
                       {"method": "quadratic", "pairs": True})
    torch.manual_seed(0)
    model = build_model(arch, kind, num_landmarks=4, head_channels=16, stride=4)
    meta = {"arch": arch, "kind": kind, "codec": codec.settings(), "input": {"size": SIZE, "resize": "letterbox"},
            "landmarks": list(LANDMARKS), "head_channels": 16, "head_skips": True, "best_epoch": 0,
            "train_mean_points": np.full((4, 2), SIZE / 2).tolist()}
    return save_checkpoint(path, model.state_dict(), meta)


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


def tiny_split(n: int = 6) -> dict:
    """Prepared test arrays (contract 5 keys that evaluate reads) of ``n`` ring frames, 2 per subject."""
    from fhbiometry.core.geometry import ellipse_landmarks
    from fhbiometry.core.letterbox import Letterbox

    frames = head_frames(n)
    boxed = [Letterbox(size=SIZE).image_to_input(f) for f in frames]
    points = np.stack([ellipse_landmarks(48 + k, 36, 30, 24, 0.0) for k in range(n)])
    return {"image": np.stack([b[0] for b in boxed]), "transform": np.stack([b[1] for b in boxed]),
            "points_orig": points, "spacing_mm": np.full(n, 0.2), "label_ok": np.ones(n, bool),
            "use_for_training": np.ones(n, bool), "frame_id": np.array([f"s{k // 2}_f{k}" for k in range(n)]),
            "subject_id": np.array([f"s{k // 2}" for k in range(n)])}


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

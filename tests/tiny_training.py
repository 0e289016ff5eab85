"""Tiny prepared arrays, params and a stage workspace for the scaling tests (device, torchrun,
resume). Not a test module: imported by tests/test_device.py, test_distributed.py, test_resume.py."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import yaml

from fhbiometry.core.geometry import ellipse_landmarks
from fhbiometry.core.letterbox import Letterbox, to_input
from fhbiometry.core.store import save_npz

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


def fake_prepared(n, seed=0, width=80, height=64):
    """Prepared arrays (stage `prepare`'s contract): a bright elliptical ring on noise."""
    letterbox = Letterbox(size=SIZE, resize="letterbox")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    rows = []
    for i in range(n):
        a = rng.uniform(0.28, 0.36) * height
        b = a * rng.uniform(0.7, 0.9)
        cx, cy = rng.uniform(0.4, 0.6) * width, rng.uniform(0.42, 0.58) * height
        angle = rng.uniform(-0.5, 0.5)
        pts = ellipse_landmarks(cx, cy, a, b, angle)
        u, v = xx - cx, yy - cy
        r = np.hypot((u * np.cos(angle) + v * np.sin(angle)) / a, (-u * np.sin(angle) + v * np.cos(angle)) / b)
        frame = np.clip(rng.uniform(0, 50, (height, width)) + 190 * (np.abs(r - 1) < 0.08), 0, 255)
        image, t = letterbox.image_to_input(frame.astype(np.uint8))
        p_in = to_input(pts, t)
        rows.append(dict(image=image, points=np.asarray(p_in, np.float32), transform=t, points_orig=pts,
                         spacing_mm=rng.uniform(0.1, 0.3), width=width, height=height))
    data = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
    data["frame_id"] = np.asarray([f"f{seed}_{i:03d}" for i in range(n)]).astype("U")
    data["subject_id"] = np.asarray([f"s{i // 3}" for i in range(n)]).astype("U")
    data["label_ok"] = np.ones(n, bool)
    data["use_for_training"] = np.ones(n, bool)
    return data


def tiny_params(epochs=2, batch_size=4, **model) -> dict:
    """The repository's params.yaml at 64 px with one model `m` (resnet18 regression unless
    ``model`` says otherwise), ``epochs`` epochs of ``batch_size``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["threads"] = 1
    params["input"]["size"] = SIZE
    params["train"].update(epochs=epochs, batch_size=batch_size)
    params["models"] = {"m": {"arch": "resnet18", "kind": "regression", **model}}
    return params


def write_workspace(root, params: dict, n_train=12, n_val=4) -> Path:
    """A stage workspace: params.yaml and data/prepared/{train,val}.npz under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    save_npz(root / "data/prepared/train.npz", fake_prepared(n_train, seed=1))
    save_npz(root / "data/prepared/val.npz", fake_prepared(n_val, seed=2))
    return root

"""What many test modules share, as plain functions (``from conftest import tiny_params``): the
one tiny params profile, the one fake prepared split, the one untrained checkpoint writer.

* ``tiny_params``: a params profile that trains and evaluates in seconds;
* ``fake_prepared``: a prepared split (stage ``prepare``'s arrays, docs/architecture.md contract 5)
  of bright elliptical rings (heads) on noise, whose landmarks are the rings' axes;
* ``write_workspace``: a stage workspace (params.yaml, data/prepared/{train,val}.npz);
* ``untrained_model`` / ``untrained_checkpoint``: a seeded, untrained 64 px model and its
  checkpoint with the metadata ``load_model`` and the evaluation check (contract 6).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import yaml

from fhbiometry.config import schema
from fhbiometry.config.params import load_params
from fhbiometry.core.geometry import LANDMARKS, ellipse_landmarks
from fhbiometry.core.letterbox import Letterbox, to_input
from fhbiometry.core.store import save_npz

REPO = Path(__file__).resolve().parents[1]
SIZE = 64                                    # the network input of every tiny profile (pixels)
AUGMENT = {"enabled": True, "rotation_deg": 10, "scale": [0.9, 1.1], "shift": 0.05, "hflip": 0.5,
           "vflip": 0.0, "contrast": 0.2, "blur": 0.2, "speckle": 0.2}
# The knobs of the one-model profile, pinned here rather than read from params.yaml, so that the
# tests of training do not move when the defaults are tuned.
PINNED = {"seed": 7, "input": {"resize": "letterbox"}, "landmarks": {"canonical_order": True},
          "codec": {"coordinates": "normalised", "peak": 1.0}, "decode": {"method": "quadratic", "pairs": True},
          "train": {"lr": 0.001, "schedule": "cosine", "warmup_epochs": 1, "weight_decay": 0.0001,
                    "optimizer": "adamw", "loss": "smooth_l1", "pair_invariant_loss": True,
                    "heatmap_loss_weight": 1.0, "foreground_weight": 10.0, "pretrained": "",
                    "head_init": "mean_shape", "augment": AUGMENT}}
CODEC = {"coordinates": "normalised", "stride": 4, "sigma": 1.5, "peak": 1.0}
DECODE = {"method": "quadratic", "pairs": True}


def tiny_params(base: dict | None = None, *, epochs: int = 2, batch_size: int = 4, **model) -> dict:
    """A params profile that trains and evaluates in seconds.

    ``base`` None: the repository's params.yaml, validated, one torch thread, the knobs of ``PINNED``
    and one model ``m`` (a resnet18 regressor; ``model`` sets or overrides its keys, e.g.
    ``kind="heatmap"``).
    ``base`` a whole profile (params.yaml, or one with a configuration applied, for an end-to-end
    ``dvc repro``): its own models and knobs, as given (not validated).

    Both: 64 px inputs, heatmap cells of 4 px with sigma 1.5, a 16-channel heatmap head (unless
    the one model's keys set one), every model ``epochs`` epochs of ``batch_size`` frames (unless a model sets its
    own batch size), a synthetic data set of 8 subjects of 160 x 128 pixels,
    2 timed frames, 4 QC overlays."""
    if base is not None and model:
        raise TypeError(f"tiny_params: model keys {sorted(model)} apply to the one-model profile (base=None)")
    p = copy.deepcopy(base) if base is not None else load_params(REPO / "params.yaml")
    p["synthesize"].update(subjects=8, frames_per_subject=[2, 3], width=160, height=128)
    p["input"]["size"] = SIZE
    p["codec"].update(stride=4, sigma=1.5)
    p["train"].update(epochs=epochs, batch_size=batch_size)
    p["evaluate"]["timing_frames"] = 2
    p["qc"]["overlay_limit"] = 4
    if base is None:
        p["threads"] = 1
        for section, values in PINNED.items():
            p[section] = {**p[section], **copy.deepcopy(values)} if isinstance(values, dict) else values
        p["models"] = {"m": {"arch": "resnet18", "kind": "regression", **model}}
    for cfg in p["models"].values():
        if base is not None:                  # the profile's own models: epochs and heads shrink too
            cfg["epochs"] = epochs
            cfg.pop("head_channels", None)
        if cfg.get("kind") == "heatmap":
            cfg.setdefault("head_channels", 16)
    return schema.validate_params(p) if base is None else p


def fake_prepared(n: int, seed: int = 0, width: int = 80, height: int = 64, *, vary_size: bool = False,
                  per_subject: int = 3, references: bool = False, qc_failed_last: bool = False) -> dict:
    """A prepared split of ``n`` frames (the keys and dtypes stage ``prepare`` writes): a bright
    elliptical ring on noise at a random position, size and angle, letterboxed to 64 px; the four
    landmarks are the ring's axis ends (OFD, then BPD). ``per_subject`` frames per subject; frame
    ids ``f<seed>_<i>`` (distinct per seed); every label accepted and used for training; no
    reference points (``points_ref`` NaN).

    ``vary_size``: each frame its own size (80-120 x 60-100 pixels), so every frame its own
    letterbox transform. ``references``: an ellipse reference on frames 0-1 (the labels + 0.5 px)
    and a landmark table on frames 0-3 (the labels + 1 px in x; its QC passes on rows 0-2), as
    an ellipse-labelled data set has. ``qc_failed_last``: the last frame's label failed QC."""
    letterbox = Letterbox(size=SIZE, resize="letterbox")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        w, h = (int(rng.integers(80, 121)), int(rng.integers(60, 101))) if vary_size else (width, height)
        a = rng.uniform(0.28, 0.36) * h
        b = a * rng.uniform(0.7, 0.9)
        cx, cy = rng.uniform(0.4, 0.6) * w, rng.uniform(0.42, 0.58) * h
        angle = rng.uniform(-0.5, 0.5)
        pts = ellipse_landmarks(cx, cy, a, b, angle)
        yy, xx = np.mgrid[:h, :w]
        u, v = xx - cx, yy - cy
        r = np.hypot((u * np.cos(angle) + v * np.sin(angle)) / a, (-u * np.sin(angle) + v * np.cos(angle)) / b)
        frame = np.clip(rng.uniform(0, 50, (h, w)) + 190 * (np.abs(r - 1) < 0.08), 0, 255)
        image, t = letterbox.image_to_input(frame.astype(np.uint8))
        rows.append(dict(image=image, points=np.asarray(to_input(pts, t), np.float32), transform=t,
                         points_orig=pts, spacing_mm=rng.uniform(0.1, 0.3), width=w, height=h))
    data = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
    data["frame_id"] = np.asarray([f"f{seed}_{i:03d}" for i in range(n)]).astype("U")
    data["subject_id"] = np.asarray([f"s{i // per_subject}" for i in range(n)]).astype("U")
    data["label_ok"] = np.arange(n) != n - 1 if qc_failed_last else np.ones(n, bool)
    data["use_for_training"] = data["label_ok"].copy()
    data["points_ref"] = np.full((n, 4, 2), np.nan)
    if references:
        first = np.arange(n)
        data["points_ref"][first < 2] = data["points_orig"][first < 2] + 0.5
        data["points_csv"] = np.where((first < 4)[:, None, None], data["points_orig"] + np.array([1.0, 0.0]), np.nan)
        data["csv_ok"] = first < 3
        data["ref_ok"] = np.isfinite(data["points_ref"]).all(axis=(1, 2))
    return data


def write_workspace(root, params: dict, n_train: int = 12, n_val: int = 4) -> Path:
    """A stage workspace: params.yaml and data/prepared/{train,val}.npz under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    save_npz(root / "data/prepared/train.npz", fake_prepared(n_train, seed=1))
    save_npz(root / "data/prepared/val.npz", fake_prepared(n_val, seed=2))
    return root


def untrained_model(kind: str = "heatmap", arch: str = "resnet18", head_channels: int = 16):
    """The model ``build_model`` makes after ``torch.manual_seed(0)``: the same weights every call."""
    import torch  # here, not at the top: the modules that never build a model stay light

    from fhbiometry.models.networks import build_model

    torch.manual_seed(0)
    return build_model(arch, kind, num_landmarks=4, head_channels=head_channels, stride=4)


def checkpoint_meta(kind: str = "heatmap", arch: str = "resnet18", head_channels: int = 16,
                    train_mean_points=None) -> dict:
    """The metadata of a trained checkpoint (contract 6) of a 64 px model with the tiny codec;
    ``train_mean_points`` (4, 2) input pixels, default the input's centre."""
    from fhbiometry.codecs import make_codec

    mean = np.full((4, 2), SIZE / 2) if train_mean_points is None else np.asarray(train_mean_points, np.float64)
    return {"arch": arch, "kind": kind, "codec": make_codec(kind, SIZE, CODEC, DECODE).settings(),
            "input": {"size": SIZE, "resize": "letterbox"}, "landmarks": list(LANDMARKS),
            "head_channels": head_channels, "head_skips": True, "data_hash": "test", "model_params": {},
            "best_epoch": 0, "best_val_mre_mm": 1.0, "train_mean_points": mean.tolist()}


def untrained_checkpoint(path, kind: str = "heatmap", arch: str = "resnet18", *, head_channels: int = 16,
                         train_mean_points=None, meta: dict | None = None) -> Path:
    """Write the untrained model's checkpoint to ``path`` with ``checkpoint_meta`` (or ``meta``,
    as given); returns the path."""
    from fhbiometry.models.checkpoint import save_checkpoint

    model = untrained_model(kind, arch, head_channels)
    if meta is None:
        meta = checkpoint_meta(kind, arch, head_channels, train_mean_points)
    return save_checkpoint(path, model.state_dict(), meta)

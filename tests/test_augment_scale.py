"""Augmentation beyond the training range: wide scale and heads cut by the image edge
(train.augment.edge_cut); the default settings give today's outputs."""
from __future__ import annotations

import copy

import numpy as np
import yaml

from fhbiometry.training import augment as aug
from fhbiometry.codecs import HeatmapCodec, RegressionCodec
from fhbiometry.core.geometry import ellipse_landmarks

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
S = 64


def default_cfg() -> dict:
    return copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text())["train"]["augment"])


def batch(n=12, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, S, S), dtype=np.uint8)
    points = np.stack([ellipse_landmarks(S / 2 + rng.uniform(-3, 3), S / 2 + rng.uniform(-3, 3),
                                         rng.uniform(14, 18), rng.uniform(10, 13), rng.uniform(-1, 1))
                       for _ in range(n)])
    return images, points


def outside(points) -> np.ndarray:
    """(N,) number of landmarks outside [0, S-1] per sample."""
    return ((points < 0) | (points > S - 1)).any(-1).sum(-1)


def test_default_edge_cut_is_bit_identical_to_no_option():
    cfg = default_cfg()
    assert cfg["edge_cut"] == 0.0
    images, points = batch()
    without = {k: v for k, v in cfg.items() if k != "edge_cut"}
    a = aug.augment_batch(images, points, np.random.default_rng(7), cfg)
    b = aug.augment_batch(images, points, np.random.default_rng(7), without)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_without_edge_cut_every_landmark_stays_inside():
    cfg = default_cfg()
    cfg["scale"] = [0.6, 1.6]
    images, points = batch(40)
    _, moved = aug.augment_batch(images, points, np.random.default_rng(1), cfg)
    assert outside(moved).max() == 0


def test_edge_cut_puts_at_most_one_landmark_out_and_blacks_the_cut():
    cfg = default_cfg()
    cfg.update(edge_cut=1.0, rotation_deg=0, shift=0.0, hflip=0.0, contrast=0.0, blur=0.0, speckle=0.0)
    images = np.full((40, S, S), 200, np.uint8)
    _, points = batch(40)
    out_img, moved = aug.augment_batch(images, points, np.random.default_rng(2), cfg)
    n_out = outside(moved)
    assert n_out.max() <= 1
    assert n_out.sum() >= 10          # often one landmark out, never two
    near = np.minimum(moved, S - 1 - moved).min(axis=(1, 2)) < 0.02 * S + 1
    assert near.all()                                      # every sample has a landmark at the edge
    assert (out_img == 0).any(axis=(1, 2)).mean() > 0.5    # the shifted-in border is black (zero fill)


def test_codecs_encode_landmarks_outside_the_input():
    point = np.array([[[-5.0, 30.0], [40.0, 30.0], [20.0, 10.0], [20.0, 50.0]]])
    hm = HeatmapCodec(input_size=S, stride=4, sigma=2.0).encode(point)
    assert np.isfinite(hm).all()
    assert 0 < hm[0, 0].max() < 1.0   # a clipped Gaussian at the left edge
    reg = RegressionCodec(input_size=S).encode(point)
    assert np.isfinite(reg).all()
    assert reg.min() < 0                # a target outside [0, 1] is kept

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from fhbiometry.training import augment as aug
from fhbiometry.config import schema
from fhbiometry.core.geometry import canonical_order, ellipse_landmarks

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())

S = 64
OFF = {"enabled": True, "rotation_deg": 0.0, "scale": [1.0, 1.0], "shift": 0.0, "hflip": 0.0, "vflip": 0.0,
       "contrast": 0.0, "blur": 0.0, "speckle": 0.0}
FULL = {"enabled": True, "rotation_deg": 25.0, "scale": [0.85, 1.15], "shift": 0.08, "hflip": 0.5,
        "vflip": 0.5, "contrast": 0.3, "blur": 0.3, "speckle": 0.3}


def valid(augment: dict) -> dict:
    """``augment`` as ``train.augment`` of the repo's params.yaml, through the params schema."""
    raw = copy.deepcopy(RAW)
    raw["train"]["augment"] = augment
    return schema.validate_params(raw)["train"]["augment"]


def cfg(**changes):
    return valid({**OFF, **changes})


def dots(points, size=S, sd=1.2):
    """Gaussian dots at sub-pixel points, each with its own brightness (uint8)."""
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size))
    for k, (x, y) in enumerate(points):
        img += (120 + 40 * k) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sd ** 2))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def centroid(img, x, y, r=4):
    """Intensity centroid of the window of radius r around (x, y)."""
    x0, y0 = int(round(x)), int(round(y))
    win = img[max(0, y0 - r):y0 + r + 1, max(0, x0 - r):x0 + r + 1].astype(float)
    yy, xx = np.mgrid[max(0, y0 - r):y0 + r + 1, max(0, x0 - r):x0 + r + 1]
    return np.array([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])


def landmarks():
    return ellipse_landmarks(31.3, 33.6, 17.0, 12.5, np.radians(15))


@pytest.mark.parametrize("seed", range(6))
def test_dot_lands_where_the_point_goes(seed):
    rng = np.random.default_rng(seed)
    c = valid(FULL)
    point = rng.uniform(22, 42, size=(1, 2))
    matrix = aug.random_matrix(rng, S, c)
    out = aug.warp_image(dots(point), matrix)
    moved = aug.transform_points(point, matrix)[0]
    assert np.linalg.norm(centroid(out, *moved) - moved) < 1.0
    assert out[int(round(moved[1])), int(round(moved[0]))] > 60


def test_affine_matrix_flip_and_rotation_about_centre():
    centre = np.array([(S - 1) / 2, (S - 1) / 2])
    m = aug.affine_matrix(S, angle_deg=90)
    assert np.allclose(aug.transform_points(centre, m), centre)
    assert np.allclose(aug.transform_points(centre + [10, 0], m), centre + [0, 10])  # y down: clockwise
    m = aug.affine_matrix(S, hflip=True)
    assert np.allclose(aug.transform_points([0, 5], m), [S - 1, 5])
    m = aug.affine_matrix(S, scale=2.0, shift=(3, -1))
    assert np.allclose(aug.transform_points(centre + [1, 1], m), centre + [5, 1])


@pytest.mark.parametrize("seed", range(8))
def test_augment_sample_keeps_image_and_points_together_in_canonical_order(seed):
    rng = np.random.default_rng(seed)
    pts = landmarks()
    c = valid({**FULL, "contrast": 0.0, "blur": 0.0, "speckle": 0.0})
    img, out = aug.augment_sample(dots(pts), pts, rng, c)
    assert np.allclose(canonical_order(out), out)
    assert ((out >= 0) & (out <= S - 1)).all()
    for p in out:  # a dot lies under every transformed point
        assert np.linalg.norm(centroid(img, *p) - p) < 1.0


def test_hflip_restores_canonical_order():
    pts = landmarks()
    img, out = aug.augment_sample(dots(pts), pts, np.random.default_rng(0), cfg(hflip=1.0))
    mirrored = pts.copy()
    mirrored[:, 0] = S - 1 - pts[:, 0]
    assert out[0, 0] < out[1, 0]  # ofd_1 is the left end again
    assert np.allclose(out, canonical_order(mirrored))
    assert not np.allclose(out, mirrored)  # the raw mirror was not canonical
    assert np.array_equal(img, dots(pts)[:, ::-1])
    # without the canonical step the mirrored order is kept
    _, raw = aug.augment_sample(dots(pts), pts, np.random.default_rng(0), cfg(hflip=1.0), canonical=False)
    assert np.allclose(raw, mirrored)


def test_disabled_is_identity_and_seeded_draws_repeat():
    pts = landmarks()
    image = dots(pts)
    img, out = aug.augment_sample(image, pts, np.random.default_rng(0), valid({**FULL, "enabled": False}))
    assert np.array_equal(img, image)
    assert np.array_equal(out, pts)
    c = valid(FULL)
    a = aug.augment_batch(np.stack([image] * 3), np.stack([pts] * 3), np.random.default_rng(5), c)
    b = aug.augment_batch(np.stack([image] * 3), np.stack([pts] * 3), np.random.default_rng(5), c)
    d = aug.augment_batch(np.stack([image] * 3), np.stack([pts] * 3), np.random.default_rng(6), c)
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], d[0])
    assert not np.array_equal(a[0][0], a[0][1])  # each sample gets its own draw


def test_photometric_identity_when_off_and_black_stays_black():
    rng = np.random.default_rng(0)
    image = dots(landmarks())
    assert np.array_equal(aug.photometric(image, rng, cfg()), image)
    out = aug.photometric(image, rng, cfg(contrast=0.5, speckle=1.0))
    assert out.dtype == np.uint8
    assert out.shape == image.shape
    assert (out[image == 0] == 0).all()
    assert not np.array_equal(out, image)
    blurred = aug.photometric(image, rng, cfg(blur=1.0))
    assert blurred.max() < image.max()


def test_point_that_would_leave_the_image_is_redrawn_or_left_unchanged():
    pts = landmarks().copy()
    pts[0] = [0.5, 30.0]  # at the edge: every shift to the left would push it out
    c = cfg(shift=0.3, scale=[1.5, 1.5])  # always pushes the edge point out
    img, out = aug.augment_sample(dots(pts), pts, np.random.default_rng(1), c)
    assert np.allclose(out, pts)
    assert np.array_equal(img, dots(pts))


def test_scaling_moves_image_and_points_by_the_same_factor():
    """No systematic size error between the warped image and the warped points: over many random
    affines (wide scales), the distance between two dots in the image matches the distance between
    the transformed points to 0.2 % on average (a 0.5 % mismatch would teach the network to
    measure every head 0.5 % too small or large)."""
    rng = np.random.default_rng(0)
    c = valid({**FULL, "scale": [0.6, 1.5], "shift": 0.02})
    ratios = []
    for _ in range(40):
        pts = np.array([[20.3, 31.7], [43.6, 30.2]])
        matrix = aug.random_matrix(rng, S, c)
        moved = aug.transform_points(pts, matrix)
        if not ((moved > 6).all() and (moved < S - 7).all()):
            continue
        out = aug.warp_image(dots(pts), matrix)
        seen = np.array([centroid(out, *p) for p in moved])
        ratios.append(np.linalg.norm(seen[1] - seen[0]) / np.linalg.norm(moved[1] - moved[0]))
    assert len(ratios) >= 20
    assert abs(np.mean(ratios) - 1.0) < 0.002

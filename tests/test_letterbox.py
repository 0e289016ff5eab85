import numpy as np
import pytest

from fhbiometry.core.geometry import to_mm
from fhbiometry.core.letterbox import Letterbox, to_input, to_original


@pytest.mark.parametrize("size", [(800, 540), (540, 800), (320, 256), (97, 301), (128, 128)])
@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_round_trip_original_input_original(size, resize):
    w, h = size
    letterbox = Letterbox(size=128, resize=resize)
    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0], [w - 1, h - 1], size=(50, 2))
    t = letterbox.transform(w, h)
    back = to_original(to_input(pts, t), t)
    assert np.abs(back - pts).max() < 1e-9
    # and through a quantised network-input pixel: within half an input pixel in original units
    quantised = np.round(to_input(pts, t))
    err = np.abs(to_original(quantised, t) - pts)
    assert (err[:, 0] <= 0.5 / t[0] + 1e-9).all()
    assert (err[:, 1] <= 0.5 / t[1] + 1e-9).all()


@pytest.mark.parametrize("size", [(800, 540), (540, 800), (33, 77)])
def test_letterbox_keeps_aspect_and_maps_pixels(size):
    w, h = size
    letterbox = Letterbox(size=64)
    image = np.zeros((h, w), np.uint8)
    x, y = int(w * 0.3), int(h * 0.6)
    r = max(3, w // 40)
    image[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = 255
    out, t = letterbox.image_to_input(image)
    assert out.shape == (64, 64)
    assert abs(t[0] - t[1]) / t[0] < 0.05  # one scale for both axes (up to rounding)
    assert np.allclose(t, letterbox.transform(w, h))
    px, py = to_input(np.array([[x, y]], float), t)[0]
    weights = out.astype(float)
    yy, xx = np.mgrid[:64, :64]
    cx, cy = (weights * xx).sum() / weights.sum(), (weights * yy).sum() / weights.sum()
    assert abs(cx - px) < 0.5
    assert abs(cy - py) < 0.5


def test_resized_shape_letterbox_and_stretch():
    assert Letterbox(size=64).resized_shape(800, 400) == (64, 32)
    assert Letterbox(size=64).resized_shape(400, 800) == (32, 64)
    assert Letterbox(size=64, resize="stretch").resized_shape(800, 400) == (64, 64)


def test_letterbox_rejects_bad_settings():
    with pytest.raises(ValueError, match="input.resize"):
        Letterbox(size=64, resize="crop")
    with pytest.raises(ValueError, match="input.size"):
        Letterbox(size=0)
    with pytest.raises(ValueError, match="2-D"):
        Letterbox(size=64).image_to_input(np.zeros((8, 8, 3), np.uint8))


def test_mm_scaling():
    assert np.allclose(to_mm(np.array([10.0, 20.0]), np.array([0.1, 0.2])), [1.0, 4.0])

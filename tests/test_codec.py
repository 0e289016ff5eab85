import numpy as np
import pytest

from fhbiometry.codec import Codec
from fhbiometry.geometry import (canonical_order, diameters, ellipse_landmarks, pair_invariant_errors,
                                 anatomical_naming, perpendicularity_deg)


@pytest.mark.parametrize("size", [(800, 540), (540, 800), (320, 256), (97, 301), (128, 128)])
@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_round_trip_original_input_original(size, resize):
    w, h = size
    codec = Codec(input_size=128, resize=resize)
    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0], [w - 1, h - 1], size=(50, 2))
    t = codec.transform(w, h)
    back = codec.to_original(codec.to_input(pts, t), t)
    assert np.abs(back - pts).max() < 1e-9
    # and through a quantised network-input pixel: within half an input pixel in original units
    quantised = np.round(codec.to_input(pts, t))
    err = np.abs(codec.to_original(quantised, t) - pts)
    assert (err[:, 0] <= 0.5 / t[0] + 1e-9).all() and (err[:, 1] <= 0.5 / t[1] + 1e-9).all()


@pytest.mark.parametrize("size", [(800, 540), (540, 800), (33, 77)])
def test_letterbox_keeps_aspect_and_maps_pixels(size):
    w, h = size
    codec = Codec(input_size=64)
    image = np.zeros((h, w), np.uint8)
    x, y = int(w * 0.3), int(h * 0.6)
    r = max(3, w // 40)
    image[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = 255
    out, t = codec.image_to_input(image)
    assert out.shape == (64, 64)
    assert abs(t[0] - t[1]) / t[0] < 0.05  # one scale for both axes (up to rounding)
    px, py = codec.to_input(np.array([[x, y]], float), t)[0]
    weights = out.astype(float)
    yy, xx = np.mgrid[:64, :64]
    cx, cy = (weights * xx).sum() / weights.sum(), (weights * yy).sum() / weights.sum()
    assert abs(cx - px) < 0.5 and abs(cy - py) < 0.5


def test_heatmap_encode_decode_subpixel():
    codec = Codec(input_size=128, stride=4, sigma=2.0)
    pts = np.array([[30.3, 40.7], [90.1, 60.2], [60.0, 20.0], [61.5, 100.2]])
    hm = codec.encode_heatmaps(pts)[None]
    assert hm.shape == (1, 4, 32, 32) and np.isclose(hm.max(), 1.0, atol=0.05)
    argmax, _ = codec.decode_heatmaps(hm, "argmax")
    quad, peak = codec.decode_heatmaps(hm, "quadratic")
    soft, _ = codec.decode_heatmaps(hm, "soft_argmax")
    assert np.abs(argmax - pts).max() <= codec.stride / 2 + 1e-9
    assert np.abs(quad - pts).max() < 1e-3
    assert np.abs(soft - pts).max() < np.abs(argmax - pts).max() + 1e-9
    assert peak.shape == (1, 4)


def test_codec_rejects_bad_params():
    with pytest.raises(ValueError, match="multiple"):
        Codec(input_size=130, stride=4)
    with pytest.raises(ValueError, match="decode"):
        Codec(decode="centroid")


def test_mm_scaling():
    assert np.allclose(Codec.to_mm(np.array([10.0, 20.0]), np.array([0.1, 0.2])), [1.0, 4.0])


def test_canonical_order_rule_and_invariance_to_input_order():
    pts = ellipse_landmarks(100, 100, 60, 40, np.radians(10))
    ofd, bpd = pts[:2], pts[2:]
    assert ofd[0, 0] < ofd[1, 0]  # ofd_1 is the left end
    assert bpd[0, 1] < bpd[1, 1]  # for a near-horizontal OFD, bpd_1 is the upper end
    shuffled = pts[[1, 0, 3, 2]]
    assert np.allclose(canonical_order(shuffled), pts)
    # diameters are unchanged by reordering
    assert np.allclose(diameters(shuffled), diameters(pts))
    assert np.isclose(diameters(pts)[0], 120) and np.isclose(diameters(pts)[1], 80)
    assert perpendicularity_deg(pts) < 1e-6


def test_pair_invariant_errors_and_anatomical_naming():
    pts = ellipse_landmarks(50, 50, 30, 20, 0.0)
    assert np.allclose(pair_invariant_errors(pts[[1, 0, 3, 2]], pts), 0)
    shifted = pts + np.array([3.0, 4.0])
    assert np.allclose(pair_invariant_errors(shifted, pts), 5.0)
    swapped = pts[[2, 3, 0, 1]]
    named, was_swapped = anatomical_naming(swapped)
    assert was_swapped and np.allclose(named, pts)


def test_regression_coordinates_round_trip_in_both_target_spaces():
    pts = np.array([[[3.0, 5.0], [100.0, 60.0], [50.0, 10.0], [52.0, 110.0]]])
    for mode, lo, hi in (("normalised", 0.0, 1.0), ("pixels", 0.0, 128.0)):
        codec = Codec(input_size=128, coordinates=mode)
        enc = codec.encode_coordinates(pts)
        assert enc.shape == (1, 8) and lo <= enc.min() and enc.max() <= hi
        assert np.allclose(codec.decode_coordinates(enc), pts)
    assert np.allclose(Codec(input_size=128).encode_coordinates(pts)[0, :2], [(3.5) / 128, (5.5) / 128])
    with pytest.raises(ValueError, match="codec.coordinates"):
        Codec(coordinates="metres")


def test_joint_pair_decoding_recovers_both_ends_when_channels_collapse():
    """Both OFD channels fire on the same end (the order rule flipped for a near-vertical OFD):
    decoded per channel the OFD collapses; decoded jointly it has both ends."""
    codec = Codec(input_size=64, stride=4, sigma=1.5)
    pts = np.array([[30.0, 6.0], [33.0, 57.0], [10.0, 30.0], [52.0, 32.0]])  # near-vertical OFD
    hm = codec.encode_heatmaps(pts)[None].astype(np.float64)
    clean, _ = codec.decode_heatmaps(hm, "quadratic")
    assert np.abs(clean[0] - pts).max() < 0.01
    assert np.allclose(codec.decode_heatmaps(hm, "quadratic", pairs=())[0], clean, atol=1e-9)
    collapsed = hm.copy()
    collapsed[0, 0] = 0.6 * hm[0, 0] + 0.4 * hm[0, 1]  # both channels hotter at the upper end
    collapsed[0, 1] = 0.55 * hm[0, 0] + 0.45 * hm[0, 1]
    apart, _ = codec.decode_heatmaps(collapsed, "argmax", pairs=())
    assert np.linalg.norm(apart[0, 0] - apart[0, 1]) < 1e-9  # independent: one point twice
    joint, _ = codec.decode_heatmaps(collapsed, "argmax")
    ends = sorted(map(tuple, np.round(joint[0, :2])))
    assert np.allclose(ends, sorted(map(tuple, np.round(pts[:2] / 4) * 4 + 1.5)), atol=4)
    assert np.linalg.norm(joint[0, 0] - joint[0, 1]) > 40


def test_pair_decode_flag_and_radius():
    codec = Codec(input_size=64, stride=4, sigma=2.0, pair_decode=False)
    assert codec.pair_radius == 6.0
    hm = np.zeros((1, 4, 16, 16))
    hm[0, :, 3, 3] = 1.0  # every channel at one cell: independent decoding keeps it
    pts, _ = codec.decode_heatmaps(hm, "argmax")
    assert np.allclose(pts[0], pts[0, :1])

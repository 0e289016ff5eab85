import numpy as np
import pytest

from fhbiometry.codecs import (HeatmapCodec, RegressionCodec, codec_from_settings, make_codec)
from fhbiometry.codecs.decoders import decode_cells
from fhbiometry.core.choices import DECODERS
from fhbiometry.core.geometry import (canonical_order, diameters, ellipse_landmarks, pair_invariant_errors,
                                 anatomical_naming, perpendicularity_deg)


def test_heatmap_encode_decode_subpixel():
    codec = HeatmapCodec(input_size=128, stride=4, sigma=2.0)
    pts = np.array([[30.3, 40.7], [90.1, 60.2], [60.0, 20.0], [61.5, 100.2]])
    hm = codec.encode(pts[None])
    assert hm.shape == (1, 4, 32, 32)
    assert hm.dtype == np.float32
    assert np.isclose(hm.max(), 1.0, atol=0.05)
    assert np.array_equal(hm[0], codec.encode_one(pts))
    argmax = codec.decode(hm, "argmax").points
    quad = codec.decode(hm, "quadratic")
    soft = codec.decode(hm, "soft_argmax").points
    assert np.abs(argmax - pts).max() <= codec.stride / 2 + 1e-9
    assert np.abs(quad.points - pts).max() < 1e-3
    assert np.abs(soft - pts).max() < np.abs(argmax - pts).max() + 1e-9
    assert quad.peak.shape == (1, 4)
    assert quad.points.shape == (1, 4, 2)
    assert np.allclose(codec.decode(hm).points, quad.points)  # the codec's method: quadratic


def test_heatmap_encode_nan_point_gives_zeros():
    codec = HeatmapCodec(input_size=64, stride=4, sigma=1.5)
    pts = np.array([[10.0, 10.0], [np.nan, 5.0], [30.0, 30.0], [40.0, 40.0]])
    hm = codec.encode_one(pts)
    assert hm.shape == (4, 16, 16)
    assert not hm[1].any()
    assert hm[0].max() > 0.5


def test_codec_rejects_bad_params():
    with pytest.raises(ValueError, match="multiple"):
        HeatmapCodec(input_size=130, stride=4)
    with pytest.raises(ValueError, match="decode"):
        HeatmapCodec(method="centroid")
    with pytest.raises(ValueError, match="decode"):
        decode_cells(np.zeros((1, 4, 8, 8)), "centroid")
    with pytest.raises(ValueError, match="codec.sigma"):
        HeatmapCodec(sigma=0.0)
    with pytest.raises(ValueError, match="kind = 'points'"):
        make_codec("points", 64, {})
    with pytest.raises(ValueError, match="kind"):
        codec_from_settings({"input_size": 64})


def test_make_codec_and_settings_round_trip():
    codec_params = {"coordinates": "pixels", "stride": 8, "sigma": 1.5, "peak": 2.0}
    reg = make_codec("regression", 64, codec_params)
    assert reg == RegressionCodec(input_size=64, coordinates="pixels")
    hm = make_codec("heatmap", 64, codec_params, {"method": "argmax", "pairs": False})
    assert hm == HeatmapCodec(input_size=64, stride=8, sigma=1.5, peak=2.0, method="argmax", pairs=False)
    assert codec_from_settings(reg.settings()) == reg
    # decoding is not a stored setting: a rebuilt heatmap codec has the default decoding
    rebuilt = codec_from_settings(hm.settings())
    assert rebuilt.with_decoding({"method": "argmax", "pairs": False}) == hm
    assert hm.report() == {"decode_method": "argmax", "decode_pairs": False}
    assert reg.report() == {}
    assert reg.with_decoding({"method": "argmax"}) is reg
    assert reg.variants(np.zeros((1, 8))) == {}


def test_heatmap_variants_cover_every_method_and_both_pair_modes():
    codec = HeatmapCodec(input_size=64, stride=4, sigma=1.5)
    pts = np.array([[30.0, 6.0], [33.0, 57.0], [10.0, 30.0], [52.0, 32.0]])
    hm = codec.encode(pts[None])
    v = codec.variants(hm)
    assert set(v["decode"]) == set(DECODERS.names())
    assert set(v["pairs"]) == {"joint", "independent"}
    assert np.allclose(v["decode"]["quadratic"], codec.decode(hm).points)
    assert np.abs(v["pairs"]["joint"][0] - pts).max() < 0.01


def test_mean_output_and_losses_per_codec():
    pts = np.stack([ellipse_landmarks(30, 32, 20, 14, 0.2), ellipse_landmarks(28, 30, 18, 12, -0.3)])
    reg = RegressionCodec(input_size=64)
    assert np.allclose(reg.mean_output(pts), reg.encode64(pts.mean(0)))
    assert HeatmapCodec(input_size=64).mean_output(pts) is None


def test_canonical_order_rule_and_invariance_to_input_order():
    pts = ellipse_landmarks(100, 100, 60, 40, np.radians(10))
    ofd, bpd = pts[:2], pts[2:]
    assert ofd[0, 0] < ofd[1, 0]  # ofd_1 is the left end
    assert bpd[0, 1] < bpd[1, 1]  # for a near-horizontal OFD, bpd_1 is the upper end
    shuffled = pts[[1, 0, 3, 2]]
    assert np.allclose(canonical_order(shuffled), pts)
    # diameters are unchanged by reordering
    assert np.allclose(diameters(shuffled), diameters(pts))
    assert np.isclose(diameters(pts)[0], 120)
    assert np.isclose(diameters(pts)[1], 80)
    assert perpendicularity_deg(pts) < 1e-6


def test_pair_invariant_errors_and_anatomical_naming():
    pts = ellipse_landmarks(50, 50, 30, 20, 0.0)
    assert np.allclose(pair_invariant_errors(pts[[1, 0, 3, 2]], pts), 0)
    shifted = pts + np.array([3.0, 4.0])
    assert np.allclose(pair_invariant_errors(shifted, pts), 5.0)
    swapped = pts[[2, 3, 0, 1]]
    named, was_swapped = anatomical_naming(swapped)
    assert was_swapped
    assert np.allclose(named, pts)


def test_regression_coordinates_round_trip_in_both_target_spaces():
    pts = np.array([[[3.0, 5.0], [100.0, 60.0], [50.0, 10.0], [52.0, 110.0]]])
    for mode, lo, hi in (("normalised", 0.0, 1.0), ("pixels", 0.0, 128.0)):
        codec = RegressionCodec(input_size=128, coordinates=mode)
        enc = codec.encode(pts)
        assert enc.shape == (1, 8)
        assert enc.dtype == np.float32
        assert lo <= enc.min()
        assert enc.max() <= hi
        assert codec.encode64(pts).dtype == np.float64
        decoded = codec.decode(codec.encode64(pts))
        assert np.allclose(decoded.points, pts)
        assert decoded.peak is None
    codec = RegressionCodec(input_size=128)
    assert np.allclose(codec.encode64(pts)[0, :2], [(3.5) / 128, (5.5) / 128])
    assert np.allclose(codec.denormalise(codec.normalise(pts)), pts)
    with pytest.raises(ValueError, match="codec.coordinates"):
        RegressionCodec(coordinates="metres")


def test_joint_pair_decoding_recovers_both_ends_when_channels_collapse():
    """Both OFD channels fire on the same end (the order rule flipped for a near-vertical OFD):
    decoded per channel the OFD collapses; decoded jointly it has both ends."""
    codec = HeatmapCodec(input_size=64, stride=4, sigma=1.5)
    pts = np.array([[30.0, 6.0], [33.0, 57.0], [10.0, 30.0], [52.0, 32.0]])  # near-vertical OFD
    hm = codec.encode(pts[None]).astype(np.float64)
    clean = codec.decode(hm, "quadratic").points
    assert np.abs(clean[0] - pts).max() < 0.01
    assert np.allclose(codec.decode(hm, "quadratic", pairs=()).points, clean, atol=1e-9)
    collapsed = hm.copy()
    collapsed[0, 0] = 0.6 * hm[0, 0] + 0.4 * hm[0, 1]  # both channels hotter at the upper end
    collapsed[0, 1] = 0.55 * hm[0, 0] + 0.45 * hm[0, 1]
    apart = codec.decode(collapsed, "argmax", pairs=()).points
    assert np.linalg.norm(apart[0, 0] - apart[0, 1]) < 1e-9  # independent: one point twice
    joint = codec.decode(collapsed, "argmax").points
    ends = sorted(map(tuple, np.round(joint[0, :2])))
    assert np.allclose(ends, sorted(map(tuple, np.round(pts[:2] / 4) * 4 + 1.5)), atol=4)
    assert np.linalg.norm(joint[0, 0] - joint[0, 1]) > 40


def test_pair_decode_flag_and_radius():
    codec = HeatmapCodec(input_size=64, stride=4, sigma=2.0, pairs=False)
    assert codec.pair_radius == 6.0
    hm = np.zeros((1, 4, 16, 16))
    hm[0, :, 3, 3] = 1.0  # every channel at one cell: independent decoding keeps it
    pts = codec.decode(hm, "argmax").points
    assert np.allclose(pts[0], pts[0, :1])

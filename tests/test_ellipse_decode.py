"""Geometry-consistent heatmap decoding (decode.method: ellipse): the four points as the axis ends
of one ellipse fitted to the heatmaps, weighted by their peak heights."""
from __future__ import annotations

import numpy as np

from fhbiometry.codecs import HeatmapCodec
from fhbiometry.codecs.decoders import ellipse_points, fit_ellipse_axes
from fhbiometry.core.choices import DECODERS
from fhbiometry.core.geometry import pair_invariant_errors, perpendicularity_deg, midpoint_distance

N = 48


def known_ellipses(rng, n=N, size=128):
    centre = rng.uniform(0.4 * size, 0.6 * size, (n, 2))
    a = rng.uniform(0.22, 0.32, n) * size
    b = a * rng.uniform(0.7, 0.9, n)
    theta = rng.uniform(-np.pi, np.pi, n)
    return ellipse_points(centre, a, b, theta)


def noisy_heatmaps(codec, points, rng, jitter_px=2.0, noise=0.03):
    """Targets of points each jittered on its own (independent decoding errors) plus pixel noise."""
    moved = points + rng.normal(0.0, jitter_px, points.shape)
    hm = codec.encode(moved)
    return np.clip(hm + rng.normal(0.0, noise, hm.shape), 0.0, None).astype(np.float32)


def mean_error(pred, true):
    return float(pair_invariant_errors(pred, true).mean())


def test_ellipse_is_a_decode_method_and_a_variant():
    codec = HeatmapCodec(method="ellipse")
    rng = np.random.default_rng(0)
    hm = noisy_heatmaps(codec, known_ellipses(rng, 4), rng)
    assert "ellipse" in DECODERS
    assert set(codec.variants(hm)["decode"]) == set(DECODERS.names())
    assert HeatmapCodec().method == "quadratic"   # the default is unchanged


def test_exact_ellipse_is_a_fixed_point():
    rng = np.random.default_rng(1)
    true = known_ellipses(rng)
    out = fit_ellipse_axes(true, np.ones((N, 4)))
    np.testing.assert_allclose(out, true, atol=1e-6)


def test_fitted_points_form_one_ellipse():
    rng = np.random.default_rng(2)
    true = known_ellipses(rng)
    out = fit_ellipse_axes(true + rng.normal(0, 2.0, true.shape), rng.uniform(0.3, 1.0, (N, 4)))
    assert perpendicularity_deg(out).max() < 1e-6
    assert midpoint_distance(out).max() < 1e-6


def test_ellipse_decoding_beats_independent_decoding_on_noisy_heatmaps():
    rng = np.random.default_rng(3)
    codec = HeatmapCodec()
    true = known_ellipses(rng)
    hm = noisy_heatmaps(codec, true, rng)
    quadratic = codec.decode(hm, "quadratic").points
    ellipse = codec.decode(hm, "ellipse").points
    assert mean_error(ellipse, true) < 0.9 * mean_error(quadratic, true)


def test_ellipse_decoding_repairs_a_corrupted_channel():
    """One channel's peak is a weak blob in the wrong place: the other three points and the peak
    heights put that end back on the ellipse."""
    rng = np.random.default_rng(4)
    codec = HeatmapCodec()
    true = known_ellipses(rng)
    hm = noisy_heatmaps(codec, true, rng, jitter_px=1.0)
    wrong = true[:, 1] + rng.choice([-1, 1], (N, 2)) * rng.uniform(8, 14, (N, 2))
    hm[:, 1] = 0.45 * codec.encode(np.repeat(wrong[:, None], 4, axis=1))[:, 0]
    quadratic = codec.decode(hm, "quadratic", pairs=()).points
    ellipse = codec.decode(hm, "ellipse", pairs=()).points
    err_q = pair_invariant_errors(quadratic, true)[:, 1].mean()
    err_e = pair_invariant_errors(ellipse, true)[:, 1].mean()
    assert err_e < 0.5 * err_q
    assert mean_error(ellipse, true) < mean_error(quadratic, true)


def test_fit_is_vectorised_and_keeps_nan_rows():
    rng = np.random.default_rng(5)
    true = known_ellipses(rng, 3)
    true[1] = np.nan
    out = fit_ellipse_axes(true, np.ones((3, 4)))
    assert np.isfinite(out[[0, 2]]).all()
    assert out.shape == (3, 4, 2)

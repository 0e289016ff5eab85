"""Calibrated intervals (trust/intervals.py): split conformal quantile, its coverage guarantee on
synthetic residuals, the normalisation by difficulty, the cine intervals, the schema's choices."""
import math

import numpy as np
import pytest

from fhbiometry.config.sections_model import Intervals
from fhbiometry.core import choices
from fhbiometry.core.geometry import ellipse_landmarks
from fhbiometry.trust import intervals as iv


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 20, dtype=float)           # n = 19: rank ceil(20 * 0.9) = 18
    assert iv.conformal_quantile(scores, 0.9) == 18.0
    assert iv.conformal_quantile(np.arange(1, 10, dtype=float), 0.9) == 9.0   # ceil(10 * 0.9) = 9 = n
    assert iv.conformal_quantile(np.arange(1, 9, dtype=float), 0.9) == math.inf  # rank 9 > n = 8
    assert iv.conformal_quantile([np.nan, 1.0, 2.0, np.inf, 3.0], 0.5) == 2.0  # non-finite left out
    assert iv.conformal_quantile([], 0.9) == math.inf


def test_split_conformal_coverage_holds_within_binomial_noise():
    """Exchangeable residuals: over many calibration/test draws the mean coverage is
    >= level and <= level + 1/(n+1), within the binomial noise of the draws."""
    rng = np.random.default_rng(0)
    n_cal, n_test, reps, level = 25, 200, 400, 0.9   # naive rank ceil(n * level) = 23: 0.885
    covered = []
    for _ in range(reps):
        cal, test = rng.standard_t(3, n_cal), rng.standard_t(3, n_test)
        q = iv.conformal_quantile(np.abs(cal), level)
        covered.append(np.mean(np.abs(test) <= q))
    mean, noise = np.mean(covered), 3 * np.std(covered) / np.sqrt(reps)
    assert mean >= level - noise, mean
    assert mean <= level + 1 / (n_cal + 1) + noise, mean


def frames(n, rng, hard_every=3):
    """Synthetic heads: true points, predictions off by noise whose size follows a flip
    disagreement (every ``hard_every``-th frame hard), spacing 0.2 mm/px."""
    truth, pred, flip = [], [], []
    for i in range(n):
        p = ellipse_landmarks(100, 90, rng.uniform(40, 70), rng.uniform(30, 45), rng.uniform(-0.3, 0.3))
        noise = 4.0 if i % hard_every == 0 else 0.5
        shift = rng.normal(0, noise, (4, 2))
        truth.append(p)
        pred.append(p + shift)
        flip.append(p + shift + rng.normal(0, noise, (4, 2)))
    return np.array(truth), np.array(pred), np.array(flip)


QC = {"ratio_range": [0.6, 0.95], "max_perpendicular_deviation_deg": 15, "max_midpoint_offset": 0.15}


@pytest.mark.parametrize("scale", iv.SCALES)
def test_normalisation_widens_hard_frames_and_keeps_coverage(scale):
    rng = np.random.default_rng(1)
    t_cal, p_cal, f_cal = frames(300, rng)
    t_test, p_test, f_test = frames(300, rng)
    spacing = np.full(300, 0.2)
    groups = np.array([f"s{i // 3}" for i in range(300)])

    def run(score):
        feats = iv.frame_features(p_cal, f_cal, None, QC)
        calib = iv.calibrate(iv.target_values(p_cal), iv.target_values(t_cal), spacing, feats, groups, 0.9,
                             score, scale)
        test_feats = iv.frame_features(p_test, f_test, None, QC)
        mm, px = iv.half_widths(iv.target_values(p_test), spacing, test_feats, calib)
        err = np.abs(iv.target_values(p_test) - iv.target_values(t_test))
        return mm, px, err

    mm, px, err = run("flip")
    np.testing.assert_allclose(mm, px * 0.2)
    hard = np.arange(300) % 3 == 0
    for k in range(3):
        assert np.median(mm[hard, k]) > 2 * np.median(mm[~hard, k]), iv.TARGETS[k]
        assert 0.85 <= np.mean(err[:, k] <= px[:, k]) <= 0.96, iv.TARGETS[k]
    flat, _, _ = run("none")
    assert np.ptp(flat[:, 0]) < 1e-9 if scale == "mm" else np.ptp(flat[:, 0]) > 0  # relative: grows with size
    fitted, fitted_px, _ = run("fitted")
    assert np.median(fitted[hard, 0]) > np.median(fitted[~hard, 0])


def test_relative_scale_is_the_same_interval_in_px_and_mm():
    rng = np.random.default_rng(2)
    t, p, f = frames(60, rng)
    spacing = rng.uniform(0.1, 0.3, 60)
    feats = iv.frame_features(p, f, None, QC)
    calib = iv.calibrate(iv.target_values(p), iv.target_values(t), spacing, feats, np.arange(60), 0.9,
                         "flip", "relative")
    assert "quantile_px" not in calib
    mm, px = iv.half_widths(iv.target_values(p), np.full(60, np.nan), feats, calib)
    assert np.isnan(mm).all()
    assert np.isfinite(px).all()


def test_mm_scale_without_spacing_uses_the_pixel_quantile():
    rng = np.random.default_rng(3)
    t, p, f = frames(60, rng)
    feats = iv.frame_features(p, f, None, QC)
    calib = iv.calibrate(iv.target_values(p), iv.target_values(t), np.full(60, 0.25), feats, np.arange(60),
                         0.9, "geometry", "mm")
    np.testing.assert_allclose(calib["quantile_px"]["bpd"] * 0.25, calib["quantile"]["bpd"])
    mm, px = iv.half_widths(iv.target_values(p), np.full(60, np.nan), feats, calib)
    assert np.isnan(mm).all()
    assert (px > 0).all()


def test_cine_interval_combines_frame_widths_and_spread():
    values = np.array([[10.0] * 3, [12.0] * 3, [20.0] * 3, [20.0] * 3])
    widths = np.array([[1.0] * 3, [3.0] * 3, [1.0] * 3, [1.0] * 3])
    names, med, base = iv.cine_spread(values, widths, ["a", "a", "b", "b"], [True, True, True, False])
    assert list(names) == ["a", "b"]
    np.testing.assert_allclose(med[:, 0], [11.0, 20.0])
    np.testing.assert_allclose(base[:, 0], [2.0 + 1.0, 1.0])        # median width + half the range
    q = iv.calibrate_cines(med, base, med + np.array([[1.5] * 3, [0.5] * 3]), 0.5)
    assert q["bpd"] == pytest.approx(0.5)                          # ratios 0.5, 0.5 -> rank ceil(1.5) = 2
    np.testing.assert_allclose(iv.cine_half_widths(base, q)[:, 0], [1.5, 0.5])


def test_schema_offers_exactly_the_implemented_scores_and_scales():
    assert choices.INTERVAL_SCORES == iv.SCORES
    assert choices.INTERVAL_SCALES == iv.SCALES
    params = Intervals()
    assert params.level == 0.9
    assert params.score in iv.SCORES
    assert params.scale in iv.SCALES
    with pytest.raises(Exception, match="score"):
        Intervals(score="nope")

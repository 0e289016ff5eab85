"""Confidence terms, rejection metrics, per-subject aggregation, flip helpers."""
from dataclasses import replace

import numpy as np
import pytest

from fhbiometry.metrics.rejection import rejection_metrics
from fhbiometry.trust import confidence as cf
from fhbiometry.measure.frames import FLAG_NAMES, plausibility_flags
from fhbiometry.core.geometry import ellipse_landmarks
from fhbiometry.inference.runner import FramePrediction, flip_images, match_ends, predict_frames, unflip_points

QC = {"max_midpoint_offset": 0.15, "max_perpendicular_deviation_deg": 15, "ratio_range": [0.6, 0.95],
      "naming": "anatomical", "policy": "exclude"}
CFG = {"flip_scale": 0.02, "geometry_weight": 1.0, "peak_weight": 1.0, "reject_share": 0.1, "bad_error_mm": 4.0}


def head(cx=100.0, cy=80.0, a=50.0, b=40.0, angle=0.2):
    return ellipse_landmarks(cx, cy, a, b, angle)


def test_perfect_ellipse_agreeing_flip_gives_one():
    p = head()[None]
    table = cf.confidence(p, p.copy(), None, QC, CFG)
    assert table["confidence"].iloc[0] == pytest.approx(1.0)
    assert list(table.columns) == ["conf_flip", "conf_geometry", "conf_peak", "confidence"]


def test_each_term_lowers_the_confidence():
    p = head()[None]
    moved = p + np.array([[2.0, 0.0]] * 4)                # 2 px of a 100 px OFD = 0.02 = one unit
    assert cf.confidence(p, moved, None, QC, CFG)["confidence"].iloc[0] == pytest.approx(0.5)
    skew = p.copy()
    skew[0, 2] += [0.0, 10.0]                              # a BPD end off the ellipse
    assert cf.confidence(skew, skew, None, QC, CFG)["confidence"].iloc[0] < 0.9
    low_peak = cf.confidence(p, p, np.full((1, 4), 0.5), QC, CFG)
    assert low_peak["conf_peak"].iloc[0] == pytest.approx(0.5)
    assert low_peak["confidence"].iloc[0] == pytest.approx(1 / 1.5)


def test_nan_points_give_zero_confidence():
    p = np.full((1, 4, 2), np.nan)
    assert cf.confidence(p, p, None, QC, CFG)["confidence"].iloc[0] == 0.0


def test_plausibility_flags_follow_qc_thresholds():
    good = head(angle=0.0)
    outside = head(cx=5.0, angle=0.0)
    round_head = head(a=50, b=49, angle=0.0)              # ratio 0.98 > 0.95
    flags = plausibility_flags(np.stack([good, outside, round_head]), [200] * 3, [160] * 3, QC)
    assert list(flags.columns) == [f"flag_{n}" for n in FLAG_NAMES]
    assert not flags.iloc[0].any()
    assert flags["flag_outside"].tolist() == [False, True, False]
    assert flags["flag_ratio"].tolist() == [False, False, True]


def test_rejection_metrics_known_values():
    conf = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    err = np.array([1.0, 2.0, 5.0, 6.0, 3.0])
    rep = rejection_metrics(conf, err, threshold=0.5, bad_mm=4.0)
    assert rep["n_bad"] == 2
    assert rep["rejected_share"] == pytest.approx(0.4)
    assert rep["bad_removed_share"] == pytest.approx(0.5)
    assert rep["kept_mean_error_mm"] == pytest.approx(8.0 / 3)
    assert rep["rejected_mean_error_mm"] == pytest.approx(4.5)
    # bad frames (conf 0.7, 0.2) rank below 2 of the 3 good ones (0.9, 0.8; not 0.1): 4 of 6 pairs
    assert rep["auc_bad"] == pytest.approx(4 / 6)
    assert np.isnan(rejection_metrics(conf, np.zeros(5), 0.5, 4.0)["auc_bad"])


def test_threshold_from_validation_rejects_that_share():
    conf = np.linspace(0.0, 1.0, 101)
    t = cf.threshold_from_validation(conf, 0.1)
    assert (conf < t).mean() == pytest.approx(0.1, abs=0.01)
    assert np.isnan(cf.threshold_from_validation([], 0.1))


def test_group_medians_uses_kept_rows_and_falls_back():
    values = np.array([[1.0], [3.0], [100.0], [5.0], [7.0]])
    out = cf.group_medians(values, ["a", "a", "a", "b", "b"], [True, True, False, False, False])
    a, b = out.iloc[0], out.iloc[1]
    assert a["group"] == "a"
    assert a["median_0"] == 2.0
    assert a["n_used"] == 2
    assert a["n_rejected"] == 1
    assert not a["fallback"]
    assert a["iqr_0"] == pytest.approx(1.0)
    assert b["fallback"]
    assert b["median_0"] == 6.0
    assert b["n_used"] == 0
    assert b["n_rejected"] == 2


def test_evaluation_sections_per_subject_aggregation():
    subjects = np.array(["s1", "s1", "s1", "s2"])
    true = np.array([[80.0, 60.0]] * 3 + [[70.0, 50.0]])
    pred = true + np.array([[1.0, 1.0], [1.0, 1.0], [20.0, 20.0], [2.0, -2.0]])
    conf = np.array([0.9, 0.9, 0.01, 0.5])
    rep = cf.evaluation_sections(conf, np.linspace(0, 1, 11), subjects, pred, true, CFG)
    assert rep["confidence"]["threshold"] == pytest.approx(0.1)
    assert rep["confidence"]["n_bad"] == 1
    assert rep["confidence"]["bad_removed_share"] == 1.0
    ps = rep["per_subject"]
    assert ps["confident_frames"]["n_subjects"] == 2
    assert ps["confident_frames"]["ofd_mae_mm"] == pytest.approx(1.5)     # (1 + 2) / 2
    assert ps["all_frames"]["ofd_mae_mm"] == pytest.approx(1.5)           # median of 81, 81, 100 = 81
    assert ps["per_frame"]["bpd_mae_mm"] == pytest.approx((1 + 1 + 20 + 2) / 4)
    assert "default" in cf.evaluation_sections(conf, None, subjects, pred, true, CFG)["confidence"]["threshold_source"]


def test_flip_helpers_round_trip():
    images = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    assert (flip_images(flip_images(images)) == images).all()
    p = np.array([[[1.0, 2.0], [6.0, 2.0], [3.0, 0.0], [3.0, 5.0]]])
    assert np.allclose(unflip_points(unflip_points(p, 8), 8), p)
    mirrored = unflip_points(p, 8)[:, [1, 0, 2, 3]]       # mirror, then the ends swapped
    assert np.allclose(match_ends(unflip_points(p, 8), mirrored), unflip_points(p, 8))


class MirrorBackend:
    """Outputs the regression encoding of fixed points; for a mirrored image, the points + 0.5 px
    mirrored, with the ends of each pair exchanged (as a network trained on canonical order does)."""

    def __init__(self, codec, points, size):
        self.codec, self.points, self.size = codec, points, size

    def outputs(self, images):
        mirrored = images[0, 0, 0] == 1                     # the marker pixel moved by the flip
        p = unflip_points(self.points + 0.5, self.size)[:, [1, 0, 3, 2]] if mirrored else self.points
        return self.codec.encode64(np.broadcast_to(p, (len(images), 4, 2)))


def test_predict_frames_flip_and_flip_test():
    from fhbiometry.codecs import make_codec

    codec = make_codec("regression", 32, {"coordinates": "normalised"}, {})
    points = np.array([[[5.0, 10.0], [25.0, 12.0], [15.0, 4.0], [14.0, 20.0]]])
    images = np.zeros((3, 32, 32), np.uint8)
    images[:, 0, -1] = 1                                   # mirrored, it lands on [0, 0]
    backend = MirrorBackend(codec, points, 32)
    plain = predict_frames(backend, codec, images)
    assert isinstance(plain, FramePrediction)
    assert plain.peak is None
    assert np.allclose(plain.points, points)
    assert np.allclose(plain.flip_points, points + 0.5)
    tta = predict_frames(backend, codec, images, flip_test=True)
    assert np.allclose(tta.points, points + 0.25)
    assert predict_frames(backend, codec, images, flip=False).flip_points is None


def test_evaluate_adds_sections_and_keeps_the_headline(tmp_path):
    """The confidence and per-subject sections are added; the headline metrics stay those of the
    plain prediction unless decode.flip_test is set."""
    torch = pytest.importorskip("torch")
    from fhbiometry.evaluation import evaluate as ev
    from fhbiometry.inference.runner import load_model
    from conftest import fake_prepared, untrained_checkpoint

    torch.set_num_threads(1)
    loaded = load_model(untrained_checkpoint(tmp_path / "m.safetensors"))
    data = fake_prepared(6, per_subject=2)
    plain, _ = ev.evaluate_model(loaded.model, loaded.codec, loaded.meta, data, [2.0])
    options = ev.EvaluationOptions(confidence=CFG, qc=QC, val=data, flip_test=False)
    scored, table = ev.evaluate_model(loaded.model, loaded.codec, loaded.meta, data, [2.0], options=options)
    assert {k: scored[k] for k in plain} == plain
    assert scored["confidence"]["n"] == 6
    assert scored["per_subject"]["all_frames"]["n_subjects"] == 3
    assert "validation quantile 0.1 (6 frames)" == scored["confidence"]["threshold_source"]
    assert table["confidence"].between(0, 1).all()
    flipped, _ = ev.evaluate_model(loaded.model, loaded.codec, loaded.meta, data, [2.0],
                                   options=replace(options, flip_test=True))
    assert flipped["mre_mm"] != plain["mre_mm"]

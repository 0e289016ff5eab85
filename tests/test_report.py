"""Binned and HC metrics (metrics/breakdown.py) and the HC of an ellipse (geometry.ellipse_perimeter)."""
from __future__ import annotations

import numpy as np
import pytest

from fhbiometry.metrics import breakdown as report
from fhbiometry.codecs.decoders import ellipse_points
from fhbiometry.core.geometry import ellipse_perimeter, head_circumference


def test_ellipse_perimeter_circle_and_known_ellipse():
    assert ellipse_perimeter(10.0, 10.0) == pytest.approx(2 * np.pi * 10.0)
    # a = 10, b = 5: the exact perimeter (complete elliptic integral) is 48.44224110...
    assert ellipse_perimeter(10.0, 5.0) == pytest.approx(48.4422411, abs=1e-6)
    assert ellipse_perimeter(5.0, 10.0) == ellipse_perimeter(10.0, 5.0)
    assert ellipse_perimeter(0.0, 0.0) == 0.0


def test_head_circumference_of_axis_points():
    pts = ellipse_points(np.array([[50.0, 40.0]]), np.array([30.0]), np.array([20.0]), np.array([0.3]))
    assert head_circumference(pts)[0] == pytest.approx(ellipse_perimeter(30.0, 20.0))


def frames(n=30, seed=0):
    rng = np.random.default_rng(seed)
    centre = np.column_stack([rng.uniform(300, 500, n), rng.uniform(200, 340, n)])
    a = np.linspace(60, 240, n)                       # heads of every size
    b = a * np.tile([0.7, 0.8, 0.9], n)[:n]           # one of each ratio bin
    true = ellipse_points(centre, a, b, rng.uniform(-1, 1, n))
    data = {"points_orig": true, "spacing_mm": np.full(n, 0.1), "width": np.full(n, 800),
            "height": np.full(n, 540)}
    return data, true


def test_perfect_predictions_give_zero_errors_and_hc_matches_reference():
    data, true = frames()
    data["hc_ref_mm"] = head_circumference(true) * 0.1
    out = report.breakdown_sections(data, true.copy(), np.ones(len(true), bool))
    assert out["hc"]["vs_labels"]["mae_mm"] == pytest.approx(0.0)
    assert out["hc"]["vs_reference"]["mae_mm"] == pytest.approx(0.0, abs=1e-9)
    assert out["normalised_error"]["overall"] == pytest.approx(0.0)
    assert out["large_errors"]["frames"] == 0
    sizes = out["bins"]["head_size"]
    assert sum(b["n"] for b in sizes.values()) == len(true)
    assert sizes["small"]["hc_range_mm"][1] < sizes["large"]["hc_range_mm"][0]
    assert [b["n"] for b in out["bins"]["ratio"].values()] == [10, 10, 10]


def test_errors_land_in_their_bins():
    """Only the largest heads are predicted 10 % too large: the large errors, the HC difference
    and the normalised error are all in the large-head tertile."""
    data, true = frames()
    hc = head_circumference(true)
    big = hc > np.quantile(hc, 2 / 3)
    centre = true.mean(axis=1, keepdims=True)
    pred = np.where(big[:, None, None], centre + 1.1 * (true - centre), true)
    out = report.breakdown_sections(data, pred, np.ones(len(true), bool))
    sizes = out["bins"]["head_size"]
    assert sizes["large"]["large_errors"] == out["large_errors"]["frames"] > 0
    assert sizes["small"]["large_errors"] == 0 and sizes["small"]["hc_mae_mm"] == pytest.approx(0.0)
    assert sizes["large"]["hc_mae_mm"] > 10 * (sizes["medium"]["hc_mae_mm"] + 1e-9)
    # each end of a large head moves 5 % of its diameter
    assert out["normalised_error"]["overall"] == pytest.approx(0.05 * big.mean(), rel=1e-6)
    assert out["hc"]["vs_labels"]["bias_mm"] > 0
    assert "vs_reference" not in out["hc"]


def test_normalised_error_divides_by_the_true_diameter():
    true = np.array([[[0.0, 0.0], [100.0, 0.0], [50.0, -40.0], [50.0, 40.0]]])
    pred = true.copy()
    pred[0, 0, 0] += 10.0   # OFD end off by 10 px on a 100 px OFD
    f = report.frame_figures(pred, true, np.ones(1))
    assert f["norm_ofd"][0] == pytest.approx(0.05)
    assert f["norm_bpd"][0] == pytest.approx(0.0)
    assert f["norm"][0] == pytest.approx(0.025)


def test_edge_cut_bin():
    data, true = frames(6)
    centre = true.mean(axis=1, keepdims=True)
    true = centre + 0.4 * (true - centre)   # small heads, well inside the 800 x 540 frame
    true[0, 0] = [-3.0, 100.0]         # outside
    true[1, 2] = [400.0, 535.0]        # within the margin of the bottom
    cut = report.edge_cut(true, data["width"], data["height"])
    assert cut.tolist()[:2] == [True, True] and not cut[2:].any()
    data["points_orig"] = true
    out = report.breakdown_sections(data, true, np.ones(6, bool))
    assert out["bins"]["edge_cut"]["cut"]["n"] == 2


def test_mask_selects_the_evaluated_frames():
    data, true = frames()
    pred = true + 50.0
    mask = np.zeros(len(true), bool)
    mask[:5] = True
    out = report.breakdown_sections(data, pred, mask)
    assert out["hc"]["vs_labels"]["n"] == 5


# ---- intervals over subjects (report.subject_bootstrap) -----------------------------------------
def figures_of(errors_mm, subjects):
    """frame_figures-like input: BPD errors ``errors_mm``, everything else defined and zero."""
    e = np.asarray(errors_mm, np.float64)
    zero = np.zeros_like(e)
    return {"bpd_err": e, "ofd_err": zero, "large": np.abs(e) > 4, "hc_pred": zero, "hc_ref": zero,
            "norm": zero, "subject": np.asarray(subjects)}


def test_bootstrap_value_is_the_figure_and_the_interval_holds_it():
    rng = np.random.default_rng(1)
    e = rng.normal(0, 2, 60)
    f = figures_of(e, [f"s{i // 2}" for i in range(60)])
    out = report.subject_bootstrap(f, n_boot=500, seed=3)
    bpd = out["bpd_mae_mm"]
    assert bpd["value"] == pytest.approx(np.abs(e).mean())
    assert bpd["low"] < bpd["value"] < bpd["high"]
    assert out == report.subject_bootstrap(f, n_boot=500, seed=3)          # deterministic for a seed
    assert out["large_share"]["value"] == pytest.approx((np.abs(e) > 4).mean())


def test_bootstrap_resamples_subjects_not_frames():
    """Ten subjects, each frame repeated five times: the frames are not independent, so the interval
    must be as wide as that of the ten frames alone, and wider than if each frame were a subject."""
    e = np.linspace(0.2, 6.0, 10)
    alone = report.subject_bootstrap(figures_of(e, np.arange(10)), n_boot=4000)["bpd_mae_mm"]
    repeated = np.repeat(e, 5)
    grouped = report.subject_bootstrap(figures_of(repeated, np.repeat(np.arange(10), 5)), n_boot=4000)["bpd_mae_mm"]
    as_frames = report.subject_bootstrap(figures_of(repeated, np.arange(50)), n_boot=4000)["bpd_mae_mm"]
    width = {k: v["high"] - v["low"] for k, v in (("alone", alone), ("grouped", grouped), ("frames", as_frames))}
    assert width["grouped"] == pytest.approx(width["alone"], rel=0.15)
    assert width["frames"] < 0.7 * width["grouped"]


def test_bootstrap_figure_without_reference_is_none():
    f = figures_of([1.0, 2.0, 3.0], ["a", "b", "c"])
    f["hc_ref"] = np.full(3, np.nan)
    out = report.subject_bootstrap(f, n_boot=50)
    assert out["hc_ref_mae_mm"] is None and out["hc_ref_bias_mm"] is None
    assert out["bpd_mae_mm"] is not None


def test_table_figures_reads_a_predictions_table():
    import pandas as pd

    from fhbiometry.core.geometry import COORD_COLUMNS

    data, true = frames(6)
    spacing = data["spacing_mm"]
    pred = true + np.random.default_rng(2).normal(0, 3, true.shape)
    df = pd.DataFrame({"frame_id": [f"f{i}" for i in range(6)], "subject_id": ["1", "1", "2", "3", "3", "4"],
                       "spacing_mm": spacing, "evaluated": [True] * 5 + [False]})
    for k, c in enumerate(COORD_COLUMNS):
        df[f"true_{c}"] = true.reshape(-1, 8)[:, k]
        df[f"pred_{c}"] = pred.reshape(-1, 8)[:, k]
    f = report.table_figures(df, {"f0": 100.0})
    direct = report.frame_figures(pred[:5], true[:5], spacing[:5])
    assert list(f["frame"]) == ["f0", "f1", "f2", "f3", "f4"]
    np.testing.assert_allclose(f["bpd_err"], direct["bpd_err"])
    assert f["hc_ref"][0] == 100.0 and np.isnan(f["hc_ref"][1:]).all()


def test_paired_bootstrap_sees_a_small_consistent_gain():
    """Every frame 0.1 mm better: the change is certain on these frames, though the two
    unpaired intervals overlap almost entirely."""
    rng = np.random.default_rng(0)
    e = np.abs(rng.normal(0, 2, 80)) + 0.2
    subjects = [f"s{i // 2}" for i in range(80)]
    before, after = figures_of(e, subjects), figures_of(e - 0.1, subjects)
    before["frame"] = after["frame"] = np.arange(80)
    d = report.paired_bootstrap(before, after, keys=("bpd_mae_mm",), n_boot=500)["bpd_mae_mm"]
    assert d["value"] == pytest.approx(-0.1) and d["high"] < 0
    a = report.subject_bootstrap(before, n_boot=500)["bpd_mae_mm"]
    b = report.subject_bootstrap(after, n_boot=500)["bpd_mae_mm"]
    assert b["high"] > a["low"]                                      # unpaired: no visible change
    with pytest.raises(ValueError):
        after["frame"] = np.arange(1, 81)
        report.paired_bootstrap(before, after)

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
    assert sizes["small"]["large_errors"] == 0
    assert sizes["small"]["hc_mae_mm"] == pytest.approx(0.0)
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
    assert cut.tolist()[:2] == [True, True]
    assert not cut[2:].any()
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

"""Errors where they show (metrics/errors.py, metrics/breakdown.py): worst-diameter error in
original and input pixels, relative error, frames over the limit, pixel-size bins; the table's
declared columns (metrics/table.py)."""
from __future__ import annotations

import numpy as np
import pytest

from fhbiometry.metrics import breakdown, errors, table
from fhbiometry.metrics.validation import validation_metrics

# OFD 100 px along x, BPD 80 px along y, in an 800 x 600 original
TRUE = np.array([[[0.0, 0.0], [100.0, 0.0], [50.0, -40.0], [50.0, 40.0]]]) + 300.0


def test_worst_diameter_error_in_original_and_input_pixels():
    pred = TRUE.copy()
    pred[0, 1, 0] += 6.0     # OFD 6 px too long (6 %), BPD exact
    transform = np.array([[0.25, 0.25, 0.0, 16.0]])   # input = original / 4
    f = errors.pixel_and_relative_errors(pred, TRUE, transform)
    assert f["worst_px"][0] == pytest.approx(6.0)
    assert f["worst_input_px"][0] == pytest.approx(1.5)
    assert f["ofd_rel_pct"][0] == pytest.approx(6.0)
    assert f["bpd_rel_pct"][0] == pytest.approx(0.0)
    assert f["over_limit"][0]


def test_relative_limit_is_per_diameter():
    pred = TRUE.copy()
    pred[0, 3, 1] += 3.6     # BPD 3.6 px too long on 80 px: 4.5 %, under the limit
    f = errors.pixel_and_relative_errors(pred, TRUE)
    assert f["bpd_rel_pct"][0] == pytest.approx(4.5)
    assert not f["over_limit"][0]
    assert np.isnan(f["worst_input_px"][0])      # no transform: no input pixels
    pred[0, 3, 1] += 1.0     # 5.75 %: over
    assert errors.pixel_and_relative_errors(pred, TRUE)["over_limit"][0]


def test_sections_summarise_frames():
    true = np.repeat(TRUE, 4, axis=0)
    pred = true.copy()
    pred[:, 1, 0] += np.array([0.0, 2.0, 4.0, 10.0])      # OFD errors 0, 2, 4, 10 px
    identity = np.tile([1.0, 1.0, 0.0, 0.0], (4, 1))
    out = errors.pixel_and_relative_sections(errors.pixel_and_relative_errors(pred, true, identity))
    w = out["worst_diameter_error"]
    assert w["original_px"]["mean"] == pytest.approx(4.0)
    assert w["original_px"]["max"] == pytest.approx(10.0)
    assert w["original_px"]["median"] == pytest.approx(3.0)
    assert w["input_px"]["mean"] == pytest.approx(4.0)
    r = out["relative_error"]
    assert r["ofd_pct"] == pytest.approx(4.0)
    assert r["bpd_pct"] == pytest.approx(0.0)
    assert r["over_limit_frames"] == 1
    assert r["over_limit_share"] == pytest.approx(0.25)


def frames(n=9):
    """Heads of one size, pixels of three sizes; every prediction 3 px off on the OFD."""
    true = np.repeat(TRUE, n, axis=0)
    pred = true.copy()
    pred[:, 1, 0] += 3.0
    spacing = np.repeat([0.1, 0.2, 0.3], n // 3)
    data = {"points_orig": true, "spacing_mm": spacing, "transform": np.tile([0.5, 0.5, 0.0, 0.0], (n, 1))}
    return data, pred


def test_pixel_size_bins_show_mm_follow_the_pixel():
    data, pred = frames()
    out = breakdown.breakdown_sections(data, pred, np.ones(9, bool))
    bins = out["bins"]["pixel_size"]
    assert [bins[k]["n"] for k in ("small", "medium", "large")] == [3, 3, 3]
    assert bins["small"]["spacing_range_mm"][1] < bins["large"]["spacing_range_mm"][0]
    for name in ("small", "medium", "large"):          # the same 3 px everywhere ...
        assert bins[name]["worst_px_mean"] == pytest.approx(3.0)
        assert bins[name]["worst_input_px_mean"] == pytest.approx(1.5)
        assert bins[name]["ofd_rel_pct"] == pytest.approx(3.0)
    assert bins["large"]["ofd_mae_mm"] == pytest.approx(3 * bins["small"]["ofd_mae_mm"])   # ... 3x the mm
    assert out["bins"]["head_size"]["small"]["worst_px_p95"] == pytest.approx(3.0)
    assert out["worst_diameter_error"]["original_px"]["p95"] == pytest.approx(3.0)
    assert out["relative_error"]["over_limit_share"] == 0.0


def test_empty_bin_figures_are_none():
    data, pred = frames()
    mask = np.zeros(9, bool)
    mask[:3] = True                                     # only the finest pixels
    out = breakdown.breakdown_sections(data, pred, mask)
    assert out["bins"]["ratio"]["below_0.75"]["worst_px_mean"] is None
    assert out["bins"]["ratio"]["below_0.75"]["over_limit_share"] is None


def test_validation_metrics_keep_their_arithmetic():
    """Training chooses the best epoch on these figures: the diameter error is |a - b| x spacing
    (in pixels, then scaled), as the trained models' epochs were chosen."""
    val = {"points_orig": np.repeat(TRUE, 2, axis=0), "spacing_mm": np.array([0.1, 0.3]),
           "transform": np.tile([1.0, 1.0, 0.0, 0.0], (2, 1))}
    pred = val["points_orig"].copy()
    pred[:, 1, 0] += 0.7
    m = validation_metrics(pred, val)
    d = abs((TRUE[0, 1, 0] + 0.7 - TRUE[0, 0, 0]) - 100.0)   # |a - b| in pixels, then x spacing
    assert m["ofd_mae_mm"] == float(np.mean(np.array([d * 0.1, d * 0.3])))
    assert m["bpd_mae_mm"] == 0.0
    assert m["mre_px"] == pytest.approx(0.7 / 4)


def test_table_columns_are_read_from_their_declared_keys():
    m = {"model_kind": "heatmap", "n_params": 5, "mre_mm": 1.5, "success_rate": {"within_4mm": 0.9, "within_2mm": 0.5},
         "bpd": {"mae_mm": 0.7}, "floor": {"bpd": {"mae_mm": 9.0}},
         "worst_diameter_error": {"original_px": {"mean": 11.0}}, "relative_error": {"over_limit_share": 0.1},
         "vs_csv": {"mre_mm": 3.0, "bpd": {"mae_mm": 2.0}}}
    rows = table.table_rows({"hm": m})
    assert list(rows[0])[:9] == ["model", "kind", "arch", "n_params", "n_evaluated", "mre_mm", "mre_mm_median",
                                 "within_2mm", "within_4mm"]
    assert rows[0]["model"] == "hm"
    assert rows[0]["bpd_mae_mm"] == 0.7
    assert rows[0]["floor_bpd_mae_mm"] == 9.0
    assert rows[0]["worst_px_mean"] == 11.0
    assert rows[0]["over_limit_share"] == 0.1
    assert rows[0]["arch"] is None
    assert table.value(m, "bpd_mae_mm", "vs_csv") == 2.0
    assert table.value(m, "n_params", "vs_csv") == 5
    with pytest.raises(KeyError, match="COLUMNS"):
        table.value(m, "bpd_mea_mm")
    with pytest.raises(KeyError, match="vs_csv"):
        table.value(m, "mre_mm", "vs_ellipse")

"""Intervals over subjects (metrics/bootstrap.py)."""
from __future__ import annotations

import numpy as np
import pytest

from fhbiometry.metrics import bootstrap, breakdown
from test_report import frames


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
    out = bootstrap.subject_bootstrap(f, n_boot=500, seed=3)
    bpd = out["bpd_mae_mm"]
    assert bpd["value"] == pytest.approx(np.abs(e).mean())
    assert bpd["low"] < bpd["value"] < bpd["high"]
    assert out == bootstrap.subject_bootstrap(f, n_boot=500, seed=3)          # deterministic for a seed
    assert out["large_share"]["value"] == pytest.approx((np.abs(e) > 4).mean())


@pytest.mark.slow
def test_bootstrap_resamples_subjects_not_frames():
    """Ten subjects, each frame repeated five times: the frames are not independent, so the interval
    must be as wide as that of the ten frames alone, and wider than if each frame were a subject."""
    e = np.linspace(0.2, 6.0, 10)
    alone = bootstrap.subject_bootstrap(figures_of(e, np.arange(10)), n_boot=4000)["bpd_mae_mm"]
    repeated = np.repeat(e, 5)
    grouped = bootstrap.subject_bootstrap(figures_of(repeated, np.repeat(np.arange(10), 5)), n_boot=4000)["bpd_mae_mm"]
    as_frames = bootstrap.subject_bootstrap(figures_of(repeated, np.arange(50)), n_boot=4000)["bpd_mae_mm"]
    width = {k: v["high"] - v["low"] for k, v in (("alone", alone), ("grouped", grouped), ("frames", as_frames))}
    assert width["grouped"] == pytest.approx(width["alone"], rel=0.15)
    assert width["frames"] < 0.7 * width["grouped"]


def test_bootstrap_figure_without_reference_is_none():
    f = figures_of([1.0, 2.0, 3.0], ["a", "b", "c"])
    f["hc_ref"] = np.full(3, np.nan)
    out = bootstrap.subject_bootstrap(f, n_boot=50)
    assert out["hc_ref_mae_mm"] is None
    assert out["hc_ref_bias_mm"] is None
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
    f = bootstrap.table_figures(df, {"f0": 100.0})
    direct = breakdown.frame_figures(pred[:5], true[:5], spacing[:5])
    assert list(f["frame"]) == ["f0", "f1", "f2", "f3", "f4"]
    np.testing.assert_allclose(f["bpd_err"], direct["bpd_err"])
    assert f["hc_ref"][0] == 100.0
    assert np.isnan(f["hc_ref"][1:]).all()


def test_paired_bootstrap_sees_a_small_consistent_gain():
    """Every frame 0.1 mm better: the change is certain on these frames, though the two
    unpaired intervals overlap almost entirely."""
    rng = np.random.default_rng(0)
    e = np.abs(rng.normal(0, 2, 80)) + 0.2
    subjects = [f"s{i // 2}" for i in range(80)]
    before, after = figures_of(e, subjects), figures_of(e - 0.1, subjects)
    before["frame"] = after["frame"] = np.arange(80)
    d = bootstrap.paired_bootstrap(before, after, keys=("bpd_mae_mm",), n_boot=500)["bpd_mae_mm"]
    assert d["value"] == pytest.approx(-0.1)
    assert d["high"] < 0
    a = bootstrap.subject_bootstrap(before, n_boot=500)["bpd_mae_mm"]
    b = bootstrap.subject_bootstrap(after, n_boot=500)["bpd_mae_mm"]
    assert b["high"] > a["low"]                                      # unpaired: no visible change
    with pytest.raises(ValueError):
        after["frame"] = np.arange(1, 81)
        bootstrap.paired_bootstrap(before, after)

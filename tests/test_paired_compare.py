"""`fhbiometry paired-compare` (tools/paired_compare.py): two evaluations of the same frames,
compared figure by figure with paired intervals over subjects."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fhbiometry import cli
from fhbiometry.core.geometry import COORD_COLUMNS, ellipse_landmarks


def predictions(path, noise_px: float, n_subjects: int = 12, frames: int = 2, seed: int = 0, drop: int = 0):
    """A predictions table: exact ellipse labels, predictions off by Gaussian noise of ``noise_px``."""
    rng = np.random.default_rng(seed)
    truth_rng = np.random.default_rng(99)           # the same frames and labels for every table
    rows = []
    for s in range(n_subjects):
        for k in range(frames):
            true = ellipse_landmarks(200 + truth_rng.uniform(-5, 5), 180, truth_rng.uniform(60, 90), 55, 0.2)
            pred = true + rng.normal(0, noise_px, true.shape)
            row = {"frame_id": f"{s:03d}_{k}", "subject_id": f"{s:03d}", "spacing_mm": 0.15, "evaluated": True}
            row.update({f"true_{c}": v for c, v in zip(COORD_COLUMNS, true.ravel())})
            row.update({f"pred_{c}": v for c, v in zip(COORD_COLUMNS, pred.ravel())})
            rows.append(row)
    pd.DataFrame(rows[drop:]).to_csv(path, index=False)
    return path


def test_a_better_model_shows_a_negative_change_whose_interval_excludes_zero(tmp_path, capsys):
    worse, better = predictions(tmp_path / "a.csv", 8.0, seed=1), predictions(tmp_path / "b.csv", 1.0, seed=2)
    assert cli.main(["paired-compare", str(worse), str(better), "--n-boot", "300", "--out", str(tmp_path / "c.json")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["frames"] == 24
    assert result["subjects"] == 12
    change = result["change"]["bpd_mae_mm"]
    assert change["high"] < 0
    assert change["value"] == result["after"]["bpd_mae_mm"]["value"] - result["before"]["bpd_mae_mm"]["value"]
    assert result["change"]["worst_px_mean"]["high"] < 0
    assert "hc_ref_mae_mm" not in result["change"]          # no --params: no data-set HC
    assert "| BPD MAE mm |" in capsys.readouterr().out


def test_the_same_table_twice_changes_nothing(tmp_path):
    a = predictions(tmp_path / "a.csv", 3.0)
    assert cli.main(["paired-compare", str(a), str(a), "--n-boot", "100", "--out", str(tmp_path / "c.json")]) == 0
    change = json.loads((tmp_path / "c.json").read_text())["change"]
    assert all(c["value"] == 0 and c["low"] == 0 and c["high"] == 0 for c in change.values())


def test_tables_of_different_frames_are_refused(tmp_path, capsys):
    a, b = predictions(tmp_path / "a.csv", 3.0), predictions(tmp_path / "b.csv", 3.0, drop=2)
    assert cli.main(["paired-compare", str(a), str(b)]) == 2
    assert "different frames" in capsys.readouterr().err


def test_columns_are_named_after_the_model_and_row():
    from pathlib import Path

    from fhbiometry.tools.paired_compare import column_name

    assert column_name(Path("results/heatmap/predictions.csv")) == "heatmap"
    assert column_name(Path("docs/ablation/band-on/predictions/contour.csv")) == "band-on/contour"

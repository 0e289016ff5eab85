"""split.method: head_size: train and validate on the smaller heads, test on the larger ones
(configs/hc18_headsize.yaml), and its tiny end-to-end run on frames in HC18's layout (drawn by
tests/hc18_like.py, so that it runs in CI, where the real HC18 frames are not)."""
from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from fhbiometry.config import schema
from fhbiometry.core.geometry import COORD_COLUMNS, ellipse_landmarks, head_circumference
from fhbiometry.data.split import make_split
from fhbiometry.tools.exp_config import apply
from conftest import tiny_params
from pipeline_helpers import REPO, copy_repo, dvc_env, run
from hc18_like import hc18_like

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
HEAD = {"test_above_hc_mm": 0.0, "test_quantile": 0.8, "subject_stat": "max"}


def labels_table(n_subjects=40, frames=2, with_ref=False, seed=0) -> pd.DataFrame:
    """QC-like labels: subject s has heads of semi-axes about 20 + 2 s px at 0.5 mm per pixel."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        for f in range(frames):
            a = 20 + 2 * s + rng.uniform(-1, 1)
            pts = ellipse_landmarks(200, 150, a, 0.8 * a, rng.uniform(-1, 1)).reshape(8)
            rows.append({"frame_id": f"{s:03d}_{f}", "subject_id": f"{s:03d}", "spacing_mm": 0.5,
                         "use_for_training": True, **dict(zip(COORD_COLUMNS, pts))})
    table = pd.DataFrame(rows)
    if with_ref:
        hc = head_circumference(table[list(COORD_COLUMNS)].to_numpy().reshape(-1, 4, 2)) * 0.5
        table["hc_ref_mm"] = hc + 1000.0 * (table["subject_id"] == "000")   # subject 000: huge by reference
    return table


def split_of(table, **kw):
    return make_split(table, FRACTIONS, 42, True, "exclude", method="head_size", head_size={**HEAD, **kw})


def test_larger_heads_are_tested():
    split, summary = split_of(labels_table())
    hs = summary["head_size"]
    assert hs["source"] == {"reference": 0, "label": 80}            # the labels' own HC
    assert summary["test"]["subjects"] == 8                          # the top 20 % of 40 subjects
    assert hs["test"]["min"] > hs["train_val"]["max"]                # no overlap on this table
    assert hs["overlap"]["test_frames_not_above_train_val_max"] == 0
    assert summary["subject_overlap"] == 0
    assert summary["val"]["subjects"] > 0
    test_subjects = set(split.loc[split["split"] == "test", "subject_id"])
    assert test_subjects == {f"{s:03d}" for s in range(32, 40)}


def test_a_gap_between_fit_and_test_is_left_out():
    """fit_up_to_hc_mm (configs/hc18_far.yaml): the subjects between it and the test threshold
    are in no split; train and val hold only heads up to it."""
    table = labels_table()
    hc = head_circumference(table[list(COORD_COLUMNS)].to_numpy().reshape(-1, 4, 2)) * 0.5
    fit, top = float(np.quantile(hc, 0.4)), float(np.quantile(hc, 0.8))
    split, summary = split_of(table, test_above_hc_mm=top, fit_up_to_hc_mm=fit)
    hs = summary["head_size"]
    assert hs["train_val"]["max"] <= fit < top < hs["test"]["min"]
    assert hs["left_out"]["frames"] == len(table) - len(split) > 0
    assert fit < hs["left_out"]["min"]
    assert hs["left_out"]["max"] <= top
    assert sum(summary[name]["frames"] for name in ("train", "val", "test")) == len(split)
    assert hs["settings"]["fit_up_to_hc_mm"] == fit
    assert "left_out" not in split_of(table, test_above_hc_mm=top)[1]["head_size"]   # 0: no gap


def test_a_fit_limit_above_the_test_threshold_is_refused():
    with pytest.raises(ValueError, match="fit_up_to_hc_mm"):
        split_of(labels_table(), test_above_hc_mm=50.0, fit_up_to_hc_mm=60.0)


def test_far_configuration_validates_and_sets_the_gap():
    config = yaml.safe_load((REPO / "configs/hc18_far.yaml").read_text())
    params = apply(yaml.safe_load((REPO / "params.yaml").read_text()), config)
    head = params["split"]["head_size"]
    assert params["split"]["method"] == "head_size"
    assert (head["fit_up_to_hc_mm"], head["test_above_hc_mm"]) == (110, 175)


def test_threshold_in_mm_and_reference_hc_wins():
    table = labels_table(with_ref=True, frames=1)
    _, summary = split_of(table, test_above_hc_mm=200.0)
    hs = summary["head_size"]
    assert hs["threshold_hc_mm"] == 200.0
    assert hs["source"]["reference"] == 40
    assert hs["train_val"]["max"] <= 200.0 < hs["test"]["min"]
    split, _ = split_of(table, test_above_hc_mm=1000.0)
    assert set(split.loc[split["split"] == "test", "subject_id"]) == {"000"}


def test_val_is_a_hash_share_of_the_smaller_heads_and_stable():
    table = labels_table(n_subjects=200, frames=1)
    a, summary = split_of(table)
    b, _ = split_of(table.iloc[::-1].reset_index(drop=True))
    pd.testing.assert_frame_equal(a, b)
    share = summary["val"]["subjects"] / (summary["train"]["subjects"] + summary["val"]["subjects"])
    assert 0.08 < share < 0.3                                       # 0.15 / 0.85 on average


def test_hash_split_summary_unchanged_without_reference_hc():
    _, summary = make_split(labels_table(), FRACTIONS, 42, True, "exclude")
    assert "head_size" not in summary
    assert "split_method" not in summary
    _, summary = make_split(labels_table(with_ref=True), FRACTIONS, 42, True, "exclude")
    assert summary["head_size"]["threshold_hc_mm"] is None           # ranges of the random split


def test_small_data_keeps_val_non_empty():
    split, summary = split_of(labels_table(n_subjects=6, frames=1), test_quantile=0.7)
    assert set(split["split"]) == {"train", "val", "test"}


def test_configurations_validate():
    params = schema.validate_config(REPO / "configs/hc18_headsize.yaml", REPO / "params.yaml")["hc18_headsize"]
    assert params["split"]["method"] == "head_size"
    assert params["data"]["pixel_size_columns"]["hc"] == "head circumference (mm)"
    ladders = [yaml.safe_load((REPO / f"configs/{n}.yaml").read_text())
               for n in ("hc18_accuracy", "hc18_accuracy_random")]
    assert ladders[0]["rows"][1:] == ladders[1]["rows"][1:]
    assert ladders[0]["base"] == "configs/hc18_headsize.yaml"
    assert ladders[1]["base"] == "configs/hc18.yaml"


@pytest.mark.parametrize("name", ["hc18_accuracy", "hc18_accuracy_random"])
def test_the_last_lever_row_is_the_committed_configuration(name):
    """Keep what helps: the committed configuration is the ladder's last lever row (the rows after
    it are reruns with other seeds), and the first row is that configuration without the levers."""
    from fhbiometry.tools.ablation import load_ladder, row_params

    ladder = load_ladder(REPO / "configs" / f"{name}.yaml")
    names = [r["name"] for r in ladder["rows"]]
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    last = names.index("calibrate")
    assert all(r.get("seed_of") == "calibrate" for r in ladder["rows"][last + 1:])
    final = row_params(base, ladder, last, REPO, budget=False)
    config = apply(base, yaml.safe_load((REPO / ladder["base"]).read_text()))
    config["data"]["raw_dir"] = final["data"]["raw_dir"]
    assert final == config
    first = row_params(base, ladder, 0, REPO, budget=False)
    assert first["decode"]["size_calibration"] == "none"
    assert first["models"]["heatmap"]["epochs"] == 30


@pytest.mark.slow
def test_headsize_configuration_runs_end_to_end(tmp_path):
    root = tmp_path / "repo"
    copy_repo(root)
    hc18_like(tmp_path / "hc18-mini", n_subjects=60)   # enough validation frames for the size calibration
    params = yaml.safe_load((root / "params.yaml").read_text())
    config = yaml.safe_load((REPO / "configs" / "hc18_headsize.yaml").read_text())
    params = tiny_params(apply(params, config), epochs=1, batch_size=8)
    params["data"]["raw_dir"] = str(tmp_path / "hc18-mini")
    params["split"]["head_size"]["test_quantile"] = 0.7
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("metrics", "plots"):
        shutil.rmtree(root / folder, ignore_errors=True)
    run([sys.executable, "-m", "dvc", "repro", "evaluate@heatmap"], root, dvc_env(root))

    split = json.loads((root / "metrics/split.json").read_text())
    hs = split["head_size"]
    assert split["split_method"] == "head_size"
    assert split["subject_overlap"] == 0
    assert hs["source"]["reference"] == hs["train_val"]["frames"] + hs["test"]["frames"]
    assert hs["test"]["min"] > hs["train_val"]["max"]
    metrics = json.loads((root / "metrics/eval/heatmap.json").read_text())
    assert metrics["hc"]["vs_labels"]["n"] == metrics["n_evaluated"] >= 1
    assert {"normalised_error", "large_errors", "bins"} <= set(metrics)
    assert "ellipse" in metrics["decode"]
    assert metrics["decode_method"] == "ellipse"
    assert metrics["size_calibration"]["n"] >= 5   # the final levers

"""The named HC18 configuration (configs/hc18.yaml), end to end through the real `dvc repro`,
on a handful of real frames with a tiny budget: catches a break in the real-data path."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fhbiometry.tools.exp_config import apply
from conftest import tiny_params
from pipeline_helpers import MODELS, REPO, copy_repo, dvc_env, run

HC18 = REPO.parent / "shared" / "datasets" / "hc18-landmarks"
N_SUBJECTS = 12  # the last subjects of the CSV, whose rows mostly agree with the ellipses


def mini_hc18(dst: Path) -> int:
    """A few HC18 subjects (all their frames) in the data set's own layout."""
    (dst / "images").mkdir(parents=True)
    (dst / "annotations").mkdir()
    csv = pd.read_csv(HC18 / "role_challenge_dataset_ground_truth.csv")
    sizes = pd.read_csv(HC18 / "pixel_size.csv")
    subjects = sorted({n.split("_")[0] for n in csv["image_name"]})[-N_SUBJECTS:]
    names = sorted(n for n in csv["image_name"] if n.split("_")[0] in subjects)
    for name in names:
        shutil.copy(HC18 / "images" / name, dst / "images" / name)
        ann = name.replace(".png", "_Annotation.png")
        shutil.copy(HC18 / "annotations" / ann, dst / "annotations" / ann)
    csv[csv["image_name"].isin(names)].to_csv(dst / "role_challenge_dataset_ground_truth.csv", index=False)
    sizes[sizes["filename"].isin(names)].to_csv(dst / "pixel_size.csv", index=False)
    return len(names)


@pytest.mark.slow
@pytest.mark.skipif(not HC18.exists(), reason=f"the HC18 landmark set is not at {HC18}")
def test_hc18_configuration_runs_end_to_end(tmp_path):
    root = tmp_path / "repo"
    copy_repo(root)
    n_frames = mini_hc18(tmp_path / "hc18-mini")
    params = yaml.safe_load((root / "params.yaml").read_text())
    config = yaml.safe_load((REPO / "configs" / "hc18.yaml").read_text())
    params = tiny_params(apply(params, config), epochs=1, batch_size=8)
    params["data"]["raw_dir"] = str(tmp_path / "hc18-mini")
    # 12 subjects leave one or two validation frames, too few for the size calibration
    # (tests/test_split_headsize.py runs the calibration end to end)
    params["decode"]["size_calibration"] = "none"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("metrics", "plots"):
        shutil.rmtree(root / folder, ignore_errors=True)
    env = dvc_env(root)
    run([sys.executable, "-m", "dvc", "repro"], root, env)

    qc = json.loads((root / "metrics/qc.json").read_text())
    assert qc["frames"] == n_frames
    assert qc["reference"]["compared"] == n_frames
    # trained on the ellipses, the CSV's faults are still found and reported as a reference
    table = qc["csv_reference"]
    assert table["rows"] == n_frames
    assert table["swapped_naming"] > 0
    assert (root / "plots/qc/table_flagged_01.png").exists()
    split = json.loads((root / "metrics/split.json").read_text())
    assert split["subject_overlap"] == 0
    for model in MODELS:
        metrics = json.loads((root / "metrics/eval" / f"{model}.json").read_text())
        assert metrics["n_test"] >= 1
        # headline against the ellipse labels, also against every CSV row and the clean rows
        assert metrics["vs_csv"]["n"] == metrics["n_test"]
        assert "vs_ellipse" not in metrics
    # the other label source runs through the same configuration: one param (one model here)
    params["data"]["label_source"] = "csv"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([sys.executable, "-m", "dvc", "repro", "evaluate@heatmap"], root, env)
    qc = json.loads((root / "metrics/qc.json").read_text())
    assert qc["swapped_naming"] > 0
    assert "csv_reference" not in qc
    metrics = json.loads((root / "metrics/eval/heatmap.json").read_text())
    assert metrics["vs_ellipse"]["n"] >= 1
    assert "vs_csv" not in metrics

"""`fhbiometry accuracy-report`: the rows of a ladder with intervals, the bins and the worst frames,
on ablation rows made here from a data set in HC18's layout (tests/hc18_like.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import pandas as pd
import yaml

from fhbiometry.metrics import breakdown as rep
from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.tools import accuracy_report
from hc18_like import hc18_like
from pipeline_helpers import REPO


def write_row(folder, truth: pd.DataFrame, scale: float, worst: str, train_seconds: float) -> None:
    """A row as `fhbiometry ablation` leaves it: predictions, eval bins, split and train metrics."""
    true = truth[list(COORD_COLUMNS)].to_numpy(np.float64).reshape(-1, 4, 2)
    centre = true.mean(axis=1, keepdims=True)
    pred = centre + scale * (true - centre)                          # every diameter ``scale`` x too long
    k = list(truth["frame_id"]).index(worst)
    pred[k, 1] += 40.0                                               # the OFD's second end far off
    table = pd.DataFrame({"frame_id": truth["frame_id"], "subject_id": truth["frame_id"].str[:3],
                          "spacing_mm": 0.6, "evaluated": True})
    for j, c in enumerate(COORD_COLUMNS):
        table[f"true_{c}"] = true.reshape(-1, 8)[:, j]
        table[f"pred_{c}"] = pred.reshape(-1, 8)[:, j]
    f = rep.frame_figures(pred, true, np.full(len(true), 0.6))
    table["true_bpd_mm"] = rep.to_mm(rep.diameters(true), 0.6)[:, 1]
    table["true_ofd_mm"] = rep.to_mm(rep.diameters(true), 0.6)[:, 0]
    for sub in ("predictions", "eval", "train"):
        (folder / sub).mkdir(parents=True)
    table.to_csv(folder / "predictions" / "heatmap.csv", index=False)
    (folder / "eval" / "heatmap.json").write_text(json.dumps({"bins": rep.bins(f, true, None, None)}))
    (folder / "train" / "heatmap.json").write_text(json.dumps({"train_seconds": train_seconds}))
    (folder / "split.json").write_text(json.dumps({"split_method": "head_size", "head_size": {
        "threshold_hc_mm": 150.0, "overlap": {"test_frames_not_above_train_val_max": 0, "range_mm": 0.0},
        **{p: {"frames": 3, "min": 100.0, "median": 120.0, "max": 140.0} for p in ("train", "val", "test")}}}))
    (folder / "row.json").write_text("{}")


def test_report_of_two_rows(tmp_path):
    raw = tmp_path / "hc18"
    hc18_like(raw, n_subjects=6)
    config = yaml.safe_load((REPO / "configs" / "hc18_headsize.yaml").read_text())
    config["data"]["raw_dir"] = str(raw)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(config))
    ladder = {"base": str(tmp_path / "base.yaml"),
              "rows": [{"name": "base", "label": "the base", "set": {}},
                       {"name": "better", "label": "+ a lever", "set": {"decode.flip_test": True}},
                       {"name": "never", "label": "+ not run", "set": {"decode.method": "ellipse"}},
                       {"name": "again", "label": "= better, seed 1", "seed_of": "better",
                        "set": {"models.heatmap.seed": 1}}]}
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump(ladder))
    csv = pd.read_csv(raw / "role_challenge_dataset_ground_truth.csv")
    truth = pd.DataFrame({"frame_id": csv["image_name"].str.replace(".png", "", regex=False)})
    for name in ("ofd_1", "ofd_2", "bpd_1", "bpd_2"):
        truth[f"{name}_x"], truth[f"{name}_y"] = csv[f"{name}_x"], csv[f"{name}_y"]
    out = tmp_path / "out"
    write_row(out / "base", truth, 1.05, "003_2HC", 600)
    write_row(out / "better", truth, 1.01, "004_HC", 900)
    write_row(out / "again", truth, 1.03, "004_HC", 900)

    text = accuracy_report.report(str(tmp_path / "ladder.yaml"), out, REPO, "heatmap", 2, 200)
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith(("| 1 |", "| 2 |", "| 4 |"))]
    assert len(rows) == 3
    assert "+ not run" not in text                 # rows that did not run: left out
    assert rows[0].endswith("| 10 |")
    assert rows[1].endswith("| 15 |")   # training minutes
    # HC against the data set's own values: the pixel-size table's column, for every frame
    assert "n/a" not in rows[0]
    worst = [line for line in lines if line.startswith("| 004_HC")]
    assert worst
    assert "worst/004_HC.jpg" in worst[0]
    assert (out / "worst" / "004_HC.jpg").stat().st_size > 1000
    from PIL import Image
    with Image.open(out / "worst" / "004_HC.jpg") as im, Image.open(raw / "images" / "004_HC.png") as src:
        assert im.size == src.size                                    # drawn at the original resolution
    assert "head_size: large" in text
    assert "ratio:" in text
    change = next(line for line in lines if line.startswith("| 1 -> 2 |"))
    assert change.split("|")[2].strip().startswith("-")                # the second row's BPD error is lower
    assert not any(line.startswith("| 2 -> 4 |") for line in lines)    # a seed rerun is not a lever
    spread = next(line for line in lines if line.startswith("| better | 2 (better, again) |"))
    bpd = [float(v) for v in spread.split("|")[3].split("+-")]
    assert bpd[1] > 0                                                  # two runs that differ: a spread
    # the report cites the command that wrote it, as typed, and the one that writes its rows
    assert f"`fhbiometry accuracy-report {tmp_path / 'ladder.yaml'} --out {out} --worst 2 --boot 200`" in text
    assert f"`fhbiometry ablation {tmp_path / 'ladder.yaml'} --out {out}` (their raw outputs" in text


def test_report_without_rows_says_what_to_run(tmp_path):
    """The rows' raw outputs are not in git: on a fresh clone the report names the command that
    writes them and how to restore them from git history."""
    ladder = tmp_path / "ladder.yaml"
    ladder.write_text(yaml.safe_dump({"base": "configs/hc18.yaml", "rows": [{"name": "a", "label": "a", "set": {}}]}))
    with pytest.raises(FileNotFoundError) as info:
        accuracy_report.report(str(ladder), tmp_path / "out", REPO, "heatmap", 2, 200)
    message = str(info.value)
    assert f"run `fhbiometry ablation {ladder} --out {tmp_path / 'out'}` first" in message, message
    assert "git restore --source=" in message, message

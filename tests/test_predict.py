"""`fhbiometry predict` and `fhbiometry.measure.api` on a synthetic DICOM cine, a video and PNG stills,
with an untrained tiny checkpoint (shapes, columns, units, aggregation, bad inputs)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhbiometry.cli import main
from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.measure.intervals import COLUMNS as INTERVAL_COLUMNS
from conftest import untrained_checkpoint
from predict_helpers import make_inputs

torch = pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]
PARAMS = str(REPO / "params.yaml")
FRAME_COLUMNS = ["source_file", "frame_index", "cine_id", "subject_id", "width", "height", "spacing_mm",
                 "spacing_source", "region", "region_x0", "region_y0", "region_x1", "region_y1", *COORD_COLUMNS, "bpd_px", "ofd_px", "bpd_mm", "ofd_mm", "hc_mm",
                 "cephalic_index", "ga_bpd_weeks", "ga_hc_weeks", "conf_flip", "conf_geometry", "conf_peak",
                 "confidence", "flag_ratio", "flag_not_perpendicular", "flag_midpoint_offset", "flag_outside",
                 "plausible", "accepted", "reject_reason", "notes",
                 *INTERVAL_COLUMNS]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("predict")
    inputs = make_inputs(root / "in")
    return {"root": root, "inputs": inputs, "heatmap": untrained_checkpoint(root / "heatmap.safetensors"),
            "regression": untrained_checkpoint(root / "resnet18.safetensors", "regression")}


def run_cli(args, capsys):
    code = main(["predict", *map(str, args), "--params", PARAMS])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_on_dicom_video_and_stills(case, capsys, monkeypatch):
    monkeypatch.chdir(case["root"])        # no metrics/eval here: the default threshold 0.5
    out = case["root"] / "out"
    code, stdout, _ = run_cli([case["root"] / "in", "--model", case["heatmap"], "--out", out], capsys)
    assert code == 0
    frames = pd.read_csv(out / "frames.csv", dtype={"subject_id": str, "cine_id": str})
    assert list(frames.columns) == FRAME_COLUMNS
    assert len(frames) == 3 + 3 + 2
    assert frames.groupby("cine_id").size().to_dict() == {"cine.dcm": 3, "clip.mp4": 3, "sub002": 2}
    dicom = frames[frames["cine_id"] == "cine.dcm"]
    assert (dicom["subject_id"] == "P1").all()
    assert (dicom["spacing_mm"] == 0.2).all()
    assert dicom["spacing_source"].str.startswith("dicom").all()
    assert set(frames.loc[frames["cine_id"] == "sub002", "spacing_source"]) == {"sidecar"}
    # units: mm = px x spacing; HC and CI from the diameters; landmarks in original pixels
    np.testing.assert_allclose(frames["bpd_mm"], frames["bpd_px"] * frames["spacing_mm"], rtol=1e-3)
    np.testing.assert_allclose(frames["cephalic_index"], 100 * frames["bpd_px"] / frames["ofd_px"], rtol=1e-3)
    assert (frames["hc_mm"] > np.pi * frames["bpd_mm"] - 1e-3).all()
    assert frames[list(COORD_COLUMNS[0::2])].max().max() <= 96
    assert frames["confidence"].between(0, 1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["cine_id"]) == ["cine.dcm", "clip.mp4", "sub002"]
    assert {"status", "basis", "reason", "n_used", "n_rejected", "bpd_mm", "bpd_mm_iqr", "hc_mm", "ga_hc_weeks",
            "best_frame_index", "best_confidence"} <= set(summary.columns)
    doc = json.loads((out / "summary.json").read_text())
    assert len(doc["cines"]) == 3
    assert "Hadlock" in doc["gestational_age_formula"]
    assert doc["threshold_source"].startswith("default")
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [
        "cine.dcm_f%04d.png" % summary["best_frame_index"][0], "clip.mp4_f%04d.png" % summary["best_frame_index"][1],
        summary["best_source_file"][2].replace("/", "_") + "_f0000.png"]
    from PIL import Image
    assert Image.open(out / "overlays" / f"cine.dcm_f{summary['best_frame_index'][0]:04d}.png").size == (96, 72)
    assert "cine.dcm" in stdout
    assert "GA(HC)" in stdout
    assert "confidence threshold 0.500" in stdout


def test_python_api_regressor_and_threshold(case):
    """Any model kind; a threshold of 0 accepts every plausible frame, medians over them."""
    frames, summary = pytest.importorskip("fhbiometry").predict(
        [case["inputs"]["dicom"]], model=case["regression"], confidence_threshold=0.0, params=PARAMS)
    assert len(frames) == 3
    assert (frames["conf_peak"] == 0).all()       # a regressor has no heatmap peak
    row = summary.iloc[0]
    used = frames[frames["accepted"]]
    assert row["n_used"] == len(used)
    assert row["n_rejected"] == 3 - len(used)
    if len(used):
        assert row["status"] == "measured"
        assert row["bpd_mm"] == pytest.approx(used["bpd_mm"].median())
    else:
        assert row["status"] == "no accepted frame"
        assert np.isnan(row["bpd_mm"])
    assert row["best_frame_index"] == frames["confidence"].idxmax()


def test_flip_test_changes_the_points(case, tmp_path):
    import yaml

    raw = yaml.safe_load(Path(PARAMS).read_text())
    raw["decode"]["flip_test"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    from fhbiometry.measure import api as pr
    plain, _ = pr.predict([case["inputs"]["still1"]], model=case["heatmap"], params=PARAMS)
    tta, _ = pr.predict([case["inputs"]["still1"]], model=case["heatmap"], params=tmp_path / "params.yaml")
    assert not np.allclose(plain[list(COORD_COLUMNS)], tta[list(COORD_COLUMNS)])


@pytest.mark.slow
def test_unreadable_input_and_no_spacing(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not a dicom")
    bare = tmp_path / "bare.png"
    bare.write_bytes(case["inputs"]["still1"].read_bytes())           # no sidecar: no spacing
    code, stdout, err = run_cli([bad, bare, case["inputs"]["video"], "--model", case["heatmap"],
                                 "--out", tmp_path / "o", "--overlays", "none", "--measure-rejected"], capsys)
    assert code == 1
    assert "broken.dcm: cannot read DICOM" in err
    assert "Fix:" in err
    frames = pd.read_csv(tmp_path / "o/frames.csv")
    assert set(frames["source_file"]) == {"bare.png", "clip.mp4"}      # the others are still measured
    bare_rows = frames[frames["source_file"] == "bare.png"]
    assert bare_rows["bpd_mm"].isna().all()
    assert bare_rows["bpd_px"].notna().all()
    assert (bare_rows["spacing_source"] == "none").all()
    assert "px" in stdout
    assert not (tmp_path / "o/overlays").exists()
    # --spacing fills in where the input gives none, and only there
    code, _, _ = run_cli([bare, case["inputs"]["video"], "--model", case["heatmap"], "--out", tmp_path / "p",
                          "--spacing", "0.5", "--overlays", "none"], capsys)
    frames = pd.read_csv(tmp_path / "p/frames.csv")
    assert code == 0
    assert frames.groupby("source_file")["spacing_mm"].first().to_dict() == {"bare.png": 0.5, "clip.mp4": 0.25}


def test_no_spacing_warning_is_loud(case, tmp_path, caplog):
    bare = tmp_path / "bare.png"
    bare.write_bytes(case["inputs"]["still1"].read_bytes())
    from fhbiometry.measure.api import predict
    predict([bare], model=case["heatmap"], params=PARAMS)
    assert any("PIXELS only" in r.getMessage() and "--spacing" in r.getMessage() for r in caplog.records)


def test_checkpoint_that_does_not_fit(case, capsys, tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(case["heatmap"]), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(str(case["heatmap"]))
    state.pop(sorted(state)[0])
    wrong = tmp_path / "wrong.safetensors"
    save_file(state, str(wrong), metadata=metadata)
    code, _, err = run_cli([case["inputs"]["still1"], "--model", wrong, "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert "wrong.safetensors: the weights do not fit a heatmap resnet18 model" in err
    code, _, err = run_cli([case["inputs"]["still1"], "--model", tmp_path / "missing.safetensors"], capsys)
    assert code == 2
    assert "missing.safetensors does not exist" in err


def test_import_fhbiometry_does_not_import_torch():
    code = ("import sys, fhbiometry, fhbiometry.core.geometry; assert 'torch' not in sys.modules; "
            "import fhbiometry.measure.api, fhbiometry.inference.backends; assert 'torch' not in sys.modules; "
            "assert 'onnxruntime' not in sys.modules; assert fhbiometry.predict is fhbiometry.measure.api.predict")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_pixel_size_table_gives_the_spacing(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bare = tmp_path / "bare.png"
    bare.write_bytes(case["inputs"]["still1"].read_bytes())
    table = tmp_path / "sizes.csv"
    table.write_text("filename,pixel size(mm)\nbare.png,0.3\n")
    code, _, _ = run_cli([bare, "--model", case["heatmap"], "--out", tmp_path / "o", "--overlays", "none",
                          "--pixel-size-csv", table, "--spacing", "0.9"], capsys)
    frames = pd.read_csv(tmp_path / "o/frames.csv")
    assert code == 0
    assert frames["spacing_mm"].tolist() == [0.3]
    assert frames["spacing_source"].tolist() == ["pixel_size_csv"]


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    for option in ("--model", "--out", "--spacing", "--pixel-size-csv", "--overlays", "--backend",
                   "--confidence-threshold", "--batch", "Examples:"):
        assert option in out


@pytest.mark.slow
def test_size_calibration_from_the_evaluate_metrics(case, tmp_path, monkeypatch):
    """decode.size_calibration: validation scales each diameter by the evaluate stage's factors
    (metrics/eval/<model>.json of the model's pipeline, not of the working directory); without
    them predict refuses and names the fix."""
    import shutil

    import yaml

    raw = yaml.safe_load(Path(PARAMS).read_text())
    raw["decode"]["size_calibration"] = "validation"
    pipeline = tmp_path / "pipeline"
    (pipeline / "models").mkdir(parents=True)
    model = Path(shutil.copy(case["heatmap"], pipeline / "models/heatmap.safetensors"))
    (pipeline / "params.yaml").write_text(yaml.safe_dump(raw))
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "metrics/eval").mkdir(parents=True)
    factors = {"size_calibration": {"method": "validation", "ofd": 1.1, "bpd": 0.9, "n": 7}}
    (elsewhere / "metrics/eval/heatmap.json").write_text(json.dumps(factors))
    monkeypatch.chdir(elsewhere)           # the working directory's metrics are never read
    from fhbiometry.measure import api as pr
    with pytest.raises(FileNotFoundError, match="dvc repro evaluate@heatmap"):
        pr.predict([case["inputs"]["still1"]], model=model)
    (pipeline / "metrics/eval").mkdir(parents=True)
    (pipeline / "metrics/eval/heatmap.json").write_text(json.dumps(factors))
    plain, _ = pr.predict([case["inputs"]["still1"]], model=case["heatmap"], params=PARAMS)
    result = pr.measure([case["inputs"]["still1"]], model=model)   # params and metrics beside the model
    scaled = result.frames
    assert result.settings.params_source.endswith("pipeline/params.yaml")
    assert result.settings.metrics_source.endswith("pipeline/metrics/eval/heatmap.json")
    explicit = pr.measure([case["inputs"]["still1"]], model=case["heatmap"], params=pipeline / "params.yaml",
                          metrics=elsewhere / "metrics/eval/heatmap.json")
    np.testing.assert_allclose(explicit.frames["bpd_px"], scaled["bpd_px"])
    # anatomical naming (OFD = the longer axis) runs after the scaling, so the network's first pair
    # is either diameter of the plain prediction
    got = sorted([scaled["ofd_px"].iloc[0], scaled["bpd_px"].iloc[0]])
    a, b = plain["ofd_px"].iloc[0], plain["bpd_px"].iloc[0]
    assert any(np.allclose(got, sorted(pair), rtol=1e-6) for pair in ([1.1 * a, 0.9 * b], [1.1 * b, 0.9 * a]))

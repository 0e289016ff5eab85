"""`fhbiometry predict` applies the evaluate stage's calibrated intervals (measure/intervals.py):
columns in frames.csv and summary.csv, level and method in summary.json, the terminal table."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhbiometry.cli import main
from fhbiometry.measure.intervals import COLUMNS
from conftest import untrained_checkpoint
from predict_helpers import make_inputs

torch = pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]
Q, CINE_Q = 0.05, 2.0
CALIBRATION = {"level": 0.9, "score": "none", "scale": "relative", "n": 20,
               "floor": {"bpd": 1.0, "ofd": 1.0, "hc": 1.0}, "quantile": {"bpd": Q, "ofd": Q, "hc": Q},
               "cine_quantile": {"bpd": CINE_Q, "ofd": CINE_Q, "hc": None}}   # null: too few cines


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("iv")
    (root / "models").mkdir()
    untrained_checkpoint(root / "models/heatmap.safetensors")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    (root / "metrics/eval").mkdir(parents=True)
    (root / "metrics/eval/heatmap.json").write_text(json.dumps({"intervals": {"calibration": CALIBRATION}}))
    return root, make_inputs(root / "in")


@pytest.mark.slow
def test_predict_writes_the_interval_columns(pipeline, capsys, tmp_path):
    root, inputs = pipeline
    out = tmp_path / "out"
    assert main(["predict", str(root / "in"), "--model", str(root / "models/heatmap.safetensors"),
                 "--out", str(out), "--overlays", "none", "--measure-rejected"]) == 0   # untrained: none accepted
    stdout = capsys.readouterr().out
    frames = pd.read_csv(out / "frames.csv", dtype={"cine_id": str})
    assert set(COLUMNS) <= set(frames.columns)
    # relative scale, score none: half-width = Q x the value, in px and in mm alike
    np.testing.assert_allclose(frames["bpd_px_hi"] - frames["bpd_px"], Q * frames["bpd_px"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(frames["hc_mm"] - frames["hc_mm_lo"], Q * frames["hc_mm"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(frames["ofd_mm_hi"], frames["ofd_px_hi"] * frames["spacing_mm"], rtol=1e-3)
    summary = pd.read_csv(out / "summary.csv", dtype={"cine_id": str}).set_index("cine_id")
    cine = frames[frames["cine_id"] == "cine.dcm"]
    used = cine                                                # --measure-rejected: every frame
    base = np.median(Q * used["bpd_mm"]) + (used["bpd_mm"].max() - used["bpd_mm"].min()) / 2
    row = summary.loc["cine.dcm"]
    assert row["bpd_mm_hi"] - row["bpd_mm"] == pytest.approx(CINE_Q * base, rel=1e-3, abs=2e-4)
    assert np.isinf(row["hc_mm_hi"])                        # the cine quantile null -> unbounded
    doc = json.loads((out / "summary.json").read_text())
    assert doc["intervals"]["level"] == 0.9
    assert doc["intervals"]["method"] == {"score": "none", "scale": "relative"}
    assert "metrics/eval/heatmap.json" in doc["intervals"]["source"]
    assert "90% intervals (none score, relative scale)" in stdout
    lo, hi = summary.loc["cine.dcm", ["bpd_mm_lo", "bpd_mm_hi"]]
    assert f"{summary.loc['cine.dcm', 'bpd_mm']:.1f} mm [{lo:.1f}, {hi:.1f}]" in stdout


def test_no_spacing_gives_pixel_intervals_only(pipeline, tmp_path):
    from fhbiometry.measure.api import measure

    root, inputs = pipeline
    still = tmp_path / "lone.png"
    shutil.copy(inputs["still1"], still)                   # no sidecar: no spacing
    result = measure([still], model=root / "models/heatmap.safetensors", measure_rejected=True)
    f = result.frames
    assert f["bpd_mm_lo"].isna().all()
    assert f["hc_mm_hi"].isna().all()
    assert (f["bpd_px_lo"] < f["bpd_px"]).all()
    assert (f["bpd_px"] < f["bpd_px_hi"]).all()
    assert np.isfinite(result.summary["ofd_px_hi"]).all()


def test_without_a_calibration_the_columns_are_empty_and_say_why(pipeline, tmp_path):
    from fhbiometry.measure.api import measure
    from fhbiometry.measure.intervals import interval_note

    root, inputs = pipeline
    model = tmp_path / "heatmap.safetensors"            # not inside a pipeline: no metrics
    shutil.copy(root / "models/heatmap.safetensors", model)
    result = measure([inputs["still1"]], model=model, params=root / "params.yaml")
    assert result.frames[list(COLUMNS)].isna().all().all()
    assert result.settings.intervals is None
    assert "dvc repro evaluate" in interval_note(result.settings)


def test_a_cine_without_a_measurement_has_no_interval(pipeline):
    from fhbiometry.measure.api import measure

    root, inputs = pipeline
    result = measure([inputs["dicom"]], model=root / "models/heatmap.safetensors")
    assert not result.frames["accepted"].any()               # the untrained model: nothing accepted
    assert result.frames["bpd_mm_lo"].notna().all()          # every frame still has its own interval
    assert result.summary[list(COLUMNS)].isna().all().all()  # the cine has no value, so no interval

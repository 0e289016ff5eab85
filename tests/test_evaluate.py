import json
import runpy
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhbiometry.evaluation import evaluate as ev
from fhbiometry.metrics import errors
from fhbiometry.models.checkpoint import CheckpointError
from fhbiometry.codecs import make_codec
from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.core.letterbox import Letterbox, to_input
from fhbiometry.config.params import ParamError, load_params, select
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.core.store import save_npz
from conftest import fake_prepared, tiny_params, untrained_checkpoint

REPO = Path(__file__).resolve().parents[1]

POINTS = np.array([[10.0, 20.0], [50.0, 20.0], [30.0, 5.0], [30.0, 35.0]])  # OFD 40 px, BPD 30 px
THRESHOLDS = [0.5, 1.0, 2.0]


def fake_split(n=6, seed=0):
    """The evaluation tests' test split (conftest.fake_prepared): every frame its own size, an
    ellipse reference on frames 0-1 and a landmark table on frames 0-3, the last label failed QC."""
    return fake_prepared(n, seed, vary_size=True, per_subject=2, references=True, qc_failed_last=True)


# ---- pure metric functions ------------------------------------------------------------------
def test_constant_offset_of_one_mm():
    spacing = np.array([0.5, 0.25])
    true = np.stack([POINTS, POINTS])
    pred = true.copy()
    pred[0, :, 0] += 2.0  # 2 px * 0.5 mm = 1 mm
    pred[1, :, 1] -= 4.0  # 4 px * 0.25 mm = 1 mm
    m = errors.compute_metrics(pred, true, spacing, THRESHOLDS)
    assert m["n"] == 2
    assert m["mre_mm"] == pytest.approx(1.0)
    assert m["mre_mm_median"] == pytest.approx(1.0)
    assert m["mre_mm_max"] == pytest.approx(1.0)
    assert m["mre_px"] == pytest.approx(3.0)
    assert m["mre_px_max"] == pytest.approx(4.0)
    assert all(v == pytest.approx(1.0) for v in m["landmark_mre_mm"].values())
    assert m["success_rate"] == {"within_0p5mm": 0.0, "within_1mm": 1.0, "within_2mm": 1.0}
    # a pure translation leaves both diameters exact
    for d in ("bpd", "ofd"):
        assert m[d]["mae_mm"] == pytest.approx(0.0)
        assert m[d]["bias_mm"] == pytest.approx(0.0)


def test_swapped_pair_ends_give_zero_error():
    swapped = POINTS[[1, 0, 3, 2]]
    err = errors.radial_errors(swapped[None], POINTS[None])
    assert np.allclose(err, 0.0)
    m = errors.compute_metrics(swapped[None], POINTS[None], [0.2], THRESHOLDS)
    assert m["mre_mm"] == pytest.approx(0.0)
    assert m["success_rate"]["within_0p5mm"] == 1.0


def test_diameter_error_sign_and_scale():
    pred = POINTS.copy()
    pred[3, 1] += 2.0  # BPD 2 px longer; OFD unchanged
    m = errors.compute_metrics(pred[None], POINTS[None], [0.5], THRESHOLDS)
    assert m["bpd"]["mae_mm"] == pytest.approx(1.0)
    assert m["bpd"]["bias_mm"] == pytest.approx(1.0)
    assert m["ofd"]["mae_mm"] == pytest.approx(0.0)
    # one landmark 1 mm off, three exact
    assert m["mre_mm"] == pytest.approx(0.25)
    assert m["landmark_mre_mm"]["bpd_2"] == pytest.approx(1.0)
    assert m["success_rate"]["within_0p5mm"] == pytest.approx(0.75)


def test_bland_altman_known_sample():
    true = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    pred = true + np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ba = errors.bland_altman(pred, true)
    sd = np.sqrt(2.5)
    assert ba["bias"] == pytest.approx(3.0)
    assert ba["sd"] == pytest.approx(sd)
    assert ba["loa_low"] == pytest.approx(3.0 - 1.96 * sd)
    assert ba["loa_high"] == pytest.approx(3.0 + 1.96 * sd)
    assert np.isnan(errors.bland_altman([1.0], [0.0])["sd"])  # one value: no spread


def test_summary_stats_known_values_and_nan():
    s = errors.summary_stats([1.0, 2.0, 3.0, 4.0, 100.0, np.nan])
    assert s["mean"] == pytest.approx(22.0)
    assert s["median"] == pytest.approx(3.0)
    assert s["p95"] == pytest.approx(80.8)
    assert s["max"] == pytest.approx(100.0)
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert all(np.isnan(v) for v in errors.summary_stats([]).values())


def test_diameter_metrics_stats():
    d = errors.diameter_metrics([11.0, 18.0, 33.0, 40.0], [10.0, 20.0, 30.0, 40.0])
    assert d["mae_mm"] == pytest.approx(1.5)
    assert d["max_mm"] == pytest.approx(3.0)
    assert d["bias_mm"] == pytest.approx(0.5)
    assert d["median_mm"] == pytest.approx(1.5)


def test_threshold_keys():
    assert errors.threshold_key(2.0) == "within_2mm"
    assert errors.threshold_key(2.5) == "within_2p5mm"


def test_mean_shape_floor_maps_through_each_transform():
    letterbox = Letterbox(size=64)
    t = np.stack([letterbox.transform(120, 80), letterbox.transform(80, 120)])
    mean_in = to_input(POINTS, t[0])
    floor = ev.mean_shape_points(mean_in, t)
    assert floor.shape == (2, 4, 2)
    assert np.allclose(floor[0], POINTS)  # frame 0 is exactly at the mean
    assert np.allclose(to_input(floor[1], t[1]), mean_in)  # same input position in frame 1
    with pytest.raises(ValueError):
        ev.mean_shape_points(np.zeros((4, 3)), t)


def test_predictions_table_and_mask():
    data = fake_split(n=4)
    data["points_orig"][1, 0, 0] = np.nan
    pred = data["points_orig"].copy()
    pred[..., 0] += 1.0 / data["spacing_mm"][:, None]  # 1 mm to the right
    df = ev.predictions_table(data, pred)
    assert list(df.columns[:4]) == ["frame_id", "subject_id", "spacing_mm", "label_ok"]
    assert [c for c in df.columns if c.startswith("true_") and c.count("_") == 3][:8] == \
        [f"true_{c}" for c in COORD_COLUMNS]
    assert "pred_bpd_2_y" in df.columns
    assert "err_ofd_1_mm" in df.columns
    ok = [0, 2]  # 1 has a NaN point, 3 failed QC
    assert np.allclose(df.loc[ok, "mre_mm"], 1.0)
    assert np.allclose(df.loc[ok, "err_bpd_mm"], 0.0)
    assert np.isnan(df.loc[1, "mre_mm"])
    assert accepted_rows(data).tolist() == [True, False, True, False]
    assert df["evaluated"].tolist() == [True, False, True, False]


# ---- evaluate_model with a stand-in inference module (an oracle) -----------------------------
class Oracle:
    """Returns the true input points of whichever test image it is given."""

    def __init__(self, data, offset=0.0):
        self.data, self.offset = data, offset

    def lookup(self, images):
        idx = [int(np.flatnonzero((self.data["image"] == im).all(axis=(1, 2)))[0]) for im in images]
        return np.asarray(self.data["points"][idx], np.float64) + self.offset, idx


@pytest.fixture
def oracle_modules(monkeypatch):
    """``inference.predict`` whose network outputs are the codec's encoding of the oracle's points
    (float64 coordinates for regression, float32 Gaussians for heatmaps), decoded by the codec."""
    def predict(model, codec, images, batch_size=32):
        pts, _ = model.lookup(images)
        outputs = codec.encode64(pts) if codec.kind == "regression" else codec.encode(pts)
        return codec.decode(outputs), outputs

    inference = types.SimpleNamespace(predict=predict)
    models = types.SimpleNamespace(count_parameters=lambda m: 123)
    monkeypatch.setitem(sys.modules, "fhbiometry.inference.runner", inference)
    monkeypatch.setitem(sys.modules, "fhbiometry.models.networks", models)


def codec_of(kind, size=64):
    return make_codec(kind, size, {"coordinates": "normalised", "stride": 4, "sigma": 1.5, "peak": 1.0},
                      {"method": "quadratic", "pairs": True})


def meta_of(kind, data, codec, **extra):
    return {"kind": kind, "arch": "x", "codec": codec.settings(), "input": {"size": 64, "resize": "letterbox"},
            "train_mean_points": data["points"][:5].astype(np.float64).mean(0), **extra}


@pytest.mark.parametrize("kind", ["regression", "heatmap"])
def test_evaluate_model_oracle(oracle_modules, kind):
    data = fake_split(n=6)
    codec = codec_of(kind)
    metrics, table = ev.evaluate_model(Oracle(data), codec, meta_of(kind, data, codec, best_epoch=3), data,
                                       THRESHOLDS, timing_frames=4)
    assert metrics["n_test"] == 6
    assert metrics["n_evaluated"] == 5
    assert metrics["n_excluded"] == 1
    assert metrics["n_params"] == 123
    assert len(table) == 6
    assert metrics["best_epoch"] == 3
    assert metrics["model_kind"] == kind
    tol = 0.05 if kind == "heatmap" else 1e-6  # quadratic decoding of a float32 Gaussian
    assert metrics["mre_mm"] < tol
    assert metrics["bpd"]["mae_mm"] < 2 * tol
    assert metrics["floor"]["mre_mm"] > 0.5  # the mean shape is far from every frame
    assert metrics["floor"]["n"] == 5
    # points_ref = truth + 0.5 px on frames 0 and 1 (the model learned the csv labels)
    assert metrics["vs_ellipse"]["n"] == 2
    assert metrics["vs_ellipse"]["mre_px"] == pytest.approx(np.sqrt(0.5), abs=tol / 0.1)
    assert metrics["vs_ellipse"]["floor"]["n"] == 2
    assert "vs_csv" not in metrics
    assert "vs_csv_clean" not in metrics
    assert metrics["timing"]["frames"] == 4
    assert metrics["timing"]["cpu_ms_per_frame"] >= 0
    if kind == "heatmap":
        assert set(metrics["decode"]) == {"argmax", "quadratic", "soft_argmax", "ellipse"}
        assert metrics["decode"]["quadratic"]["mre_mm"] == pytest.approx(metrics["mre_mm"])
        assert metrics["decode"]["argmax"]["mre_mm"] > metrics["decode"]["quadratic"]["mre_mm"]
        assert metrics["pairs"]["joint"]["mre_mm"] == pytest.approx(metrics["mre_mm"])
        assert set(metrics["pairs"]) == {"joint", "independent"}
        assert metrics["decode_pairs"] is True
        assert metrics["decode_method"] == "quadratic"
    else:
        for key in ("decode", "pairs", "decode_pairs", "decode_method"):
            assert key not in metrics, key


def test_ellipse_trained_model_is_also_reported_against_the_csv(oracle_modules):
    """label_source ellipse: vs_csv on every table row, vs_csv_clean on the rows QC passed."""
    data = fake_split(n=6)
    codec = codec_of("regression")
    metrics, _ = ev.evaluate_model(Oracle(data), codec, meta_of("regression", data, codec), data, THRESHOLDS,
                                   label_source="ellipse")
    assert "vs_ellipse" not in metrics
    assert metrics["vs_csv"]["n"] == 4
    assert metrics["vs_csv_clean"]["n"] == 3
    # the table is the truth + 1 px in x: every radial error is 1 original pixel
    assert metrics["vs_csv"]["mre_px"] == pytest.approx(1.0)
    assert metrics["vs_csv_clean"]["floor"]["n"] == 3


def test_evaluate_model_offset_in_input_pixels(oracle_modules):
    data = fake_split(n=5)
    codec = codec_of("regression")
    meta = {**meta_of("regression", data, codec), "train_mean_points": data["points"][0].astype(np.float64)}
    metrics, table = ev.evaluate_model(Oracle(data, offset=np.array([1.0, 0.0])), codec, meta, data,
                                       THRESHOLDS)
    # 1 input px to the right = 1/sx original px = spacing/sx mm
    expected = data["spacing_mm"] / data["transform"][:, 0]
    assert np.allclose(table["mre_mm"], expected)
    assert metrics["mre_mm"] == pytest.approx(expected[:4].mean())
    assert "timing" not in metrics


def test_check_checkpoint_messages():
    data = fake_split(n=2)
    meta = {"arch": "resnet18", "kind": "heatmap", "input": {"size": 64, "resize": "letterbox"},
            "train_mean_points": np.zeros((4, 2))}
    path = "models/heatmap.safetensors"
    ev.check_checkpoint(meta, {"arch": "resnet18", "kind": "heatmap"}, data, "heatmap", path)
    with pytest.raises(ValueError, match=r"models/heatmap.safetensors.*dvc repro train@heatmap"):
        ev.check_checkpoint(meta, {"arch": "resnet34", "kind": "heatmap"}, data, "heatmap", path)
    with pytest.raises(ValueError, match=r"models/heatmap.safetensors: checkpoint input size 128 differs"):
        ev.check_checkpoint({**meta, "input": {"size": 128, "resize": "letterbox"}}, {}, data, "heatmap", path)
    with pytest.raises(KeyError, match="train_mean_points"):
        ev.check_checkpoint({k: v for k, v in meta.items() if k != "train_mean_points"}, {}, data, "heatmap", path)


# ---- end to end with the real model code ----------------------------------------------------
STAGE_PARAMS = runpy.run_path(str(REPO / "stages/evaluate.py"))["PARAMS"]


def stage_params(arch, kind, timing_frames=2):
    """conftest.tiny_params with one model ``m``, reduced to what stage evaluate reads."""
    params = tiny_params(arch=arch, kind=kind, **({"loss": "mse"} if kind == "heatmap" else {}))
    params["evaluate"].update(thresholds_mm=[2.0, 4.0], timing_frames=timing_frames)
    return select(params, [key.format(model="m") for key in STAGE_PARAMS])


@pytest.mark.slow
@pytest.mark.parametrize("arch,kind", [("resnet18", "regression"), ("resnet18", "heatmap")])
def test_run_end_to_end_real_model(tmp_path, arch, kind):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    data = fake_split(n=5)
    save_npz(tmp_path / "data/prepared/test.npz", data)
    untrained_checkpoint(tmp_path / "models/m.safetensors", kind, arch, train_mean_points=data["points"].mean(0))
    params = stage_params(arch, kind)
    metrics = ev.run(params, "m", root=tmp_path)
    written = json.loads((tmp_path / "metrics/eval/m.json").read_text())
    assert written["n_test"] == 5
    assert written["n_excluded"] == 1
    assert written["model"] == "m"
    assert written["mre_mm"] > 0
    assert written["floor"]["mre_mm"] > 0
    assert written["timing"]["frames"] == 2
    assert metrics["n_params"] > 0
    assert ("decode" in written) == (kind == "heatmap")
    csv1 = (tmp_path / "results/m/predictions.csv").read_bytes()
    df = pd.read_csv(tmp_path / "results/m/predictions.csv")
    assert len(df) == 5
    assert "pred_bpd_2_y" in df.columns
    # deterministic apart from the timing block
    ev.run(params, "m", root=tmp_path)
    again = json.loads((tmp_path / "metrics/eval/m.json").read_text())
    written.pop("timing"), again.pop("timing")
    assert again == written
    assert (tmp_path / "results/m/predictions.csv").read_bytes() == csv1


def test_run_decodes_as_params_decode_says(tmp_path):
    """params decode (not the checkpoint) sets how a heatmap model is decoded and reported."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    data = fake_split(n=3)
    save_npz(tmp_path / "data/prepared/test.npz", data)
    untrained_checkpoint(tmp_path / "models/m.safetensors", "heatmap", "resnet18",
                         train_mean_points=data["points"].mean(0))
    params = stage_params("resnet18", "heatmap", timing_frames=0)
    params["decode"] = {"method": "argmax", "pairs": False}
    metrics = ev.run(params, "m", root=tmp_path)
    assert metrics["decode_method"] == "argmax"
    assert metrics["decode_pairs"] is False
    assert metrics["mre_mm"] == pytest.approx(metrics["pairs"]["independent"]["mre_mm"])
    assert metrics["mre_mm"] == pytest.approx(metrics["decode"]["argmax"]["mre_mm"])


def test_run_missing_checkpoint_names_file(tmp_path):
    data = fake_split(n=2)
    save_npz(tmp_path / "data/prepared/test.npz", data)
    with pytest.raises(CheckpointError, match=r"models/m.safetensors does not exist.*dvc repro train@m"):
        ev.run(stage_params("resnet18", "regression"), "m", root=tmp_path)


def test_unknown_model_is_a_param_error():
    """The stage reads only its params keys: a model absent from params.yaml stops there."""
    with pytest.raises(ParamError, match=r"no key 'models.nope'"):
        load_params(REPO / "params.yaml", only=STAGE_PARAMS, model="nope")


def test_frames_kept_by_the_qc_policy_count_in_the_metrics(oracle_modules):
    """qc.policy keep: a flagged label the model was trained on is also evaluated on."""
    data = fake_split(n=6)
    data["use_for_training"][-1] = True  # flagged (label_ok False) but kept by the policy
    codec = codec_of("regression")
    metrics, table = ev.evaluate_model(Oracle(data), codec, meta_of("regression", data, codec), data, THRESHOLDS)
    assert metrics["n_evaluated"] == 6
    assert metrics["n_excluded"] == 0
    assert table["evaluated"].all()
    assert not table["label_ok"].iloc[-1]


@pytest.mark.slow
def test_run_size_calibration_scales_the_test_predictions(tmp_path):
    """decode.size_calibration: validation: factors from the validation frames (written to the
    metrics), each test diameter scaled about its midpoint; none: the predictions as decoded."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from fhbiometry.trust.calibration import apply_factors

    data = fake_split(n=5)
    val = fake_split(n=6, seed=1)
    save_npz(tmp_path / "data/prepared/test.npz", data)
    save_npz(tmp_path / "data/prepared/val.npz", val)
    untrained_checkpoint(tmp_path / "models/m.safetensors", "heatmap", "resnet18",
                         train_mean_points=data["points"].mean(0))
    params = stage_params("resnet18", "heatmap", timing_frames=0)
    columns = [f"pred_{c}" for c in COORD_COLUMNS]
    plain = ev.run(params, "m", root=tmp_path)
    before = pd.read_csv(tmp_path / "results/m/predictions.csv")[columns].to_numpy().reshape(-1, 4, 2)
    assert "size_calibration" not in plain
    params["decode"]["size_calibration"] = "validation"
    metrics = ev.run(params, "m", root=tmp_path)
    factors = metrics["size_calibration"]
    assert factors["method"] == "validation"
    assert factors["n"] == 5         # the accepted validation frames
    assert factors["ofd"] > 0
    assert factors["bpd"] > 0
    assert (factors["ofd"], factors["bpd"]) != (1.0, 1.0)
    after = pd.read_csv(tmp_path / "results/m/predictions.csv")[columns].to_numpy().reshape(-1, 4, 2)
    np.testing.assert_allclose(after, apply_factors(before, factors), atol=2e-3)   # the CSV's 4 decimals

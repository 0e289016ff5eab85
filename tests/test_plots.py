import os
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhbiometry.evaluation import evaluate as ev
from fhbiometry.metrics import errors
from fhbiometry.reporting import plots
from fhbiometry.config import schema
from fhbiometry.codecs import HeatmapCodec, make_codec
from fhbiometry.core.geometry import LANDMARKS, ellipse_landmarks
from fhbiometry.core.letterbox import Letterbox, to_input
from fhbiometry.config.params import load_params, select
from fhbiometry.config.paths import Paths
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.core.store import load_npz, save_npz, write_csv, write_json

REPO = Path(__file__).resolve().parents[1]
STAGE_PARAMS = runpy.run_path(str(REPO / "stages/plots.py"))["PARAMS"]

NAMES = list(load_params(REPO / "params.yaml")["models"])  # the model list of params.yaml
THRESHOLDS = [2.0, 4.0]
PNGS = ["errors_box.png", "error_cdf.png", "bland_altman.png", "training_curves.png"] + \
    [f"overlays_{n}.png" for n in NAMES]


def fake_test_split(n=7, size=64, seed=1):
    rng = np.random.default_rng(seed)
    letterbox = Letterbox(size=size)
    keys = ("image", "points", "transform", "points_orig", "spacing_mm", "frame_id", "subject_id")
    out = {k: [] for k in keys}
    for i in range(n):
        w, h = int(rng.integers(80, 121)), int(rng.integers(60, 101))
        pts = ellipse_landmarks(w / 2, h / 2, 0.35 * w, 0.25 * h, rng.uniform(-0.3, 0.3))
        image, t = letterbox.image_to_input(rng.integers(0, 255, (h, w)).astype(np.uint8))
        out["image"].append(image)
        out["points"].append(to_input(pts, t).astype(np.float32))
        out["transform"].append(t)
        out["points_orig"].append(pts)
        out["spacing_mm"].append(rng.uniform(0.1, 0.3))
        out["frame_id"].append(f"f{i:02d}")
        out["subject_id"].append(f"s{i // 2}")
    data = {k: np.asarray(v) for k, v in out.items()}
    data["points_ref"] = np.full_like(data["points_orig"], np.nan)
    data["label_ok"] = np.arange(n) != 0  # frame 0 failed QC
    data["use_for_training"] = data["label_ok"].copy()
    return data


def write_checkpoint(path, kind, data):
    """A tiny untrained resnet18 checkpoint of ``kind`` (64 px inputs, 16 head channels)."""
    import torch

    from fhbiometry.models.checkpoint import save_checkpoint
    from fhbiometry.models.networks import build_model

    codec = make_codec(kind, 64, {"coordinates": "normalised", "stride": 4, "sigma": 2.0, "peak": 1.0})
    torch.manual_seed(0)
    model = build_model("resnet18", kind, num_landmarks=4, head_channels=16, stride=4)
    meta = {"arch": "resnet18", "kind": kind, "codec": codec.settings(), "input": Letterbox(size=64).to_dict(),
            "landmarks": list(LANDMARKS), "head_channels": 16, "head_skips": True, "data_hash": "test",
            "model_params": {}, "best_epoch": 0, "best_val_mre_mm": 1.0,
            "train_mean_points": data["points"].astype(np.float64).mean(0).tolist()}
    save_checkpoint(path, model.state_dict(), meta)


def write_checkpoints(root, names, kinds, data):
    """models/<name>.safetensors for every model (the plots stage loads each one); every
    regression model shares one file (hard links) to keep the test light."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    shared = {}
    for name in names:
        kind = (kinds or {}).get(name, "regression")
        path = Paths(root).checkpoint(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind in shared:
            os.link(shared[kind], path)
            continue
        write_checkpoint(path, kind, data)
        shared[kind] = path


def write_fake_results(root, names=NAMES, kinds=None, n=7):
    """Contract 6/7 outputs for every model: predictions, metrics, DVCLive tsv files, checkpoints."""
    data = fake_test_split(n)
    save_npz(root / "data/prepared/test.npz", data)
    rng = np.random.default_rng(0)
    mask = accepted_rows(data)
    for m, name in enumerate(names):
        pred = data["points_orig"] + rng.normal(0, 2 + m, data["points_orig"].shape)
        table = ev.predictions_table(data, pred)
        metrics = errors.compute_metrics(pred[mask], data["points_orig"][mask], data["spacing_mm"][mask],
                                     THRESHOLDS)
        floor = ev.mean_shape_points(data["points"].mean(0), data["transform"])
        metrics["floor"] = errors.compute_metrics(floor[mask], data["points_orig"][mask],
                                              data["spacing_mm"][mask], THRESHOLDS)
        kind = (kinds or {}).get(name, "regression")
        metrics.update({"model": name, "model_kind": kind, "arch": "resnet18", "n_params": 1000 * (m + 1),
                        "n_evaluated": int(mask.sum()), "timing": {"cpu_ms_per_frame": 1.5, "frames": 2}})
        write_csv(table, root / "results" / name / "predictions.csv")
        write_json(root / "metrics" / "eval" / f"{name}.json", metrics)
        live = root / "metrics" / "train" / name / "plots" / "metrics"
        for sub, col in (("train", "loss"), ("val", "mre_mm")):
            steps = np.arange(4)
            df = pd.DataFrame({"timestamp": 1700000000000 + steps, "step": steps,
                               col: 10.0 / (steps + 1) + m})
            (live / sub).mkdir(parents=True, exist_ok=True)
            df.to_csv(live / sub / f"{col}.tsv", sep="\t", index=False)
    write_checkpoints(root, names, kinds, data)
    return data


def params(names=NAMES, examples=3, kinds=None, decode=None):
    """The repo's params.yaml with the models ``names`` (resnet18, ``kinds`` or regression),
    reduced to what stage plots reads."""
    p = load_params(REPO / "params.yaml")
    p["threads"] = 1
    p["models"] = {}
    for n in names:
        kind = (kinds or {}).get(n, "regression")
        p["models"][n] = {"arch": "resnet18", "kind": kind, **({"loss": "mse"} if kind == "heatmap" else {})}
    p["plots"]["examples"] = examples
    p["decode"] = decode or {"method": "quadratic", "pairs": True}
    return select(schema.validate_params(p), STAGE_PARAMS)


def test_example_indices_best_median_worst():
    mre = np.array([3.0, np.nan, 1.0, 5.0, 2.0, 4.0])
    assert plots.example_indices(mre, 3).tolist() == [2, 0, 3]  # 1.0, 3.0 (median), 5.0
    assert plots.example_indices(mre, 1).tolist() == [2]
    assert plots.example_indices(mre, 10).tolist() == [2, 4, 0, 5, 3]  # all valid, best to worst
    assert plots.example_indices([np.nan], 3).tolist() == []


def test_markdown_table():
    df = pd.DataFrame({"model": ["a", "b"], "mre_mm": [1.234, np.nan], "within_2mm": [0.5, 1.0]})
    text = plots.markdown_table(df)
    lines = text.splitlines()
    assert lines[0] == "| model | mre_mm | within_2mm |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == "| a | 1.23 | 0.500 |"
    assert lines[3] == "| b |  | 1.000 |"


def test_read_dvclive_tsv(tmp_path):
    path = tmp_path / "loss.tsv"
    path.write_text("timestamp\tstep\tloss\n1\t0\t2.5\n2\t1\t1.5\n")
    df = plots.read_dvclive_tsv(path)
    assert df["step"].tolist() == [0, 1]
    assert df["value"].tolist() == [2.5, 1.5]
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        plots.read_dvclive_tsv(tmp_path / "missing.tsv")
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="loss.tsv"):
        plots.read_dvclive_tsv(path)


@pytest.mark.slow
def test_plots_stage_writes_every_figure(tmp_path):
    write_fake_results(tmp_path)
    stale = tmp_path / "plots/models/old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    written = plots.run(params(), root=tmp_path)
    out = tmp_path / "plots/models"
    assert not stale.exists()
    for name in PNGS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "heatmaps.png" not in written  # no heatmap model: skipped
    summary = pd.read_csv(out / "summary.csv")
    assert summary["model"].tolist() == NAMES
    assert {"mre_mm", "within_2mm", "within_4mm", "bpd_mae_mm", "ofd_bias_mm", "floor_mre_mm",
            "n_params", "cpu_ms_per_frame"} <= set(summary.columns)
    assert summary["mre_mm"].is_monotonic_increasing  # the noise grows with the model index
    md = (out / "summary.md").read_text().splitlines()
    assert md[0].startswith("| model |")
    assert len(md) == 2 + len(NAMES)
    # byte-stable
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    plots.run(params(), root=tmp_path)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_plots_stage_missing_results_names_file(tmp_path):
    write_fake_results(tmp_path, names=NAMES[:2])
    with pytest.raises(FileNotFoundError, match=r"metrics/eval/resnet34.json.*evaluate@resnet34"):
        plots.run(params(), root=tmp_path)


def test_plot_heatmaps_from_arrays(tmp_path):
    data = fake_test_split(4)
    codec = HeatmapCodec(input_size=64, stride=4)
    hm = codec.encode(data["points"][:3])
    path = tmp_path / "heatmaps.png"
    plots.plot_heatmaps([("heatmap", ["f01", "f02", "f03"], hm, data["points"][:3]),
                         ("other", ["f01"], hm[:1], data["points"][:1])], data, path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KeyError, match="test.npz"):
        plots.plot_heatmaps([("heatmap", ["nope"], hm[:1], data["points"][:1])], data, path)


@pytest.mark.slow
def test_plots_stage_with_real_heatmap_model(tmp_path):
    pytest.importorskip("torch")
    kinds = {"heatmap": "heatmap"}
    write_fake_results(tmp_path, names=["resnet18", "heatmap"], kinds=kinds)
    written = plots.run(params(names=["resnet18", "heatmap"], examples=2, kinds=kinds), root=tmp_path)
    assert "heatmaps.png" in written
    assert "overlays_heatmap.png" in written
    # only the heatmap model gives entries, decoded as params decode says
    paths = Paths(tmp_path)
    results = plots.load_results(paths, ["resnet18", "heatmap"])
    test = load_npz(paths.prepared("test"))
    entries = plots.heatmap_entries(results, test, paths, 2, {"method": "argmax", "pairs": False})
    assert [e[0] for e in entries] == ["heatmap"]
    name, frame_ids, heatmaps, points = entries[0]
    assert len(frame_ids) == 2
    assert heatmaps.shape == (2, 4, 16, 16)
    assert points.shape == (2, 4, 2)
    assert np.allclose((points - 1.5) % 4, 0)  # argmax: heatmap cell centres

"""End to end: the real `dvc repro` on a tiny params profile in a temporary copy of the repo."""
from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml

from conftest import tiny_params
from pipeline_helpers import MODELS, copy_repo, dvc_env, run


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("repo")
    copy_repo(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(params, epochs=1, batch_size=8), sort_keys=False))
    for folder in ("metrics", "plots"):
        shutil.rmtree(root / folder, ignore_errors=True)
    env = dvc_env(root)
    out = run([sys.executable, "-m", "dvc", "repro"], root, env)
    return root, env, out


@pytest.mark.slow
def test_repro_builds_every_output(pipeline):
    root, _, _ = pipeline
    for path in ["data/frames/frames.npz", "data/frames/manifest.csv", "data/qc/labels.csv",
                 "metrics/qc.json", "data/split/split.csv", "metrics/split.json",
                 "data/prepared/train.npz", "data/prepared/val.npz", "data/prepared/test.npz",
                 "plots/qc/flag_counts.png", "plots/models/errors_box.png",
                 "plots/models/bland_altman.png", "plots/models/training_curves.png"]:
        assert (root / path).exists(), path
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert "prepare" in stages
    assert "heatmaps" not in stages
    assert not list((root / "models").glob("*.pt"))  # no pickle checkpoints
    for model in MODELS:
        assert (root / "models" / f"{model}.safetensors").exists()
        metrics = json.loads((root / "metrics" / "eval" / f"{model}.json").read_text())
        assert metrics["mre_mm"] > 0
    split = json.loads((root / "metrics/split.json").read_text())
    assert split["subject_overlap"] == 0


@pytest.mark.slow
def test_second_repro_does_nothing_and_param_change_reruns_only_its_model(pipeline):
    root, env, _ = pipeline
    status = run([sys.executable, "-m", "dvc", "status", "--json"], root, env)
    assert json.loads(status) == {}, status
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["models"]["alexnet"]["lr"] = params["models"]["alexnet"].get("lr", 0.001) * 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], root, env)))
    assert changed == {"train@alexnet", "evaluate@alexnet", "plots"}, changed
    dry = run([sys.executable, "-m", "dvc", "repro", "--dry"], root, env)
    ran = {line.split("'")[1] for line in dry.splitlines() if line.startswith("Running stage")}
    assert ran == {"train@alexnet", "evaluate@alexnet", "plots"}, dry


@pytest.mark.slow
def test_dvc_metrics_show_lists_four_models(pipeline):
    root, env, _ = pipeline
    out = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], root, env)
    text = json.dumps(json.loads(out))
    for model in MODELS:
        assert f"metrics/eval/{model}.json" in text


@pytest.mark.slow
def test_forced_rerun_gives_identical_checkpoint_and_metrics(pipeline):
    """Determinism on CPU: the same params and seed give the same bytes and metrics."""
    root, env, _ = pipeline
    ckpt = root / "models" / "heatmap.safetensors"
    metrics = root / "metrics" / "eval" / "heatmap.json"
    before_ckpt = ckpt.read_bytes()
    before = json.loads(metrics.read_text())
    run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "train@heatmap"], root, env)
    run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "evaluate@heatmap"], root, env)
    after = json.loads(metrics.read_text())
    assert ckpt.read_bytes() == before_ckpt
    before.pop("timing", None)
    after.pop("timing", None)
    assert after == before


REFINE = {"coarse": "heatmap", "size": 64, "context": 1.35, "copies": 2, "jitter": 1.0,
          "arch": "resnet18", "kind": "heatmap", "loss": "mse", "head_channels": 16, "epochs": 1, "batch_size": 8}


def frame_points(path):
    import numpy as np
    import pandas as pd

    from fhbiometry.core.geometry import COORD_COLUMNS

    return np.asarray(pd.read_csv(path)[list(COORD_COLUMNS)], np.float64)


@pytest.mark.slow
def test_refinement_stages_and_predict_with_a_refinement(pipeline):
    """A refinement (params ``refine``) adds exactly its three stages; ``fhbiometry predict``
    given its checkpoint runs the coarse model first (torch and ONNX alike); two passes rerun
    its evaluation but not its training."""
    import numpy as np

    root, env, _ = pipeline
    stale = set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], root, env)))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["refine"] = {"crop": dict(REFINE)}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], root, env))) - stale
    assert changed == {"refine_crops@crop", "train_refine@crop", "evaluate_refine@crop"}, changed
    run([sys.executable, "-m", "dvc", "repro"], root, env)
    metrics = json.loads((root / "metrics/eval/crop.json").read_text())
    assert metrics["refine"]["coarse"] == "heatmap"
    assert metrics["refine"]["passes"] == 1
    assert metrics["mre_mm"] > 0

    scan = sorted((root / "data/raw/synthetic/dicom").glob("*.dcm"))[0]
    predict = [sys.executable, "-m", "fhbiometry", "predict", str(scan), "--model", "models/crop.safetensors",
               "--overlays", "none"]
    out = run(predict + ["--out", "pred_torch"], root, env)
    assert "on the heads of the coarse model models/heatmap.safetensors" in out, out
    summary = json.loads((root / "pred_torch/summary.json").read_text())
    assert summary["coarse_model"] == "models/heatmap.safetensors"
    assert summary["metrics_source"] == "metrics/eval/crop.json"
    torch_points = frame_points(root / "pred_torch/frames.csv")
    assert len(torch_points) > 0
    assert np.isfinite(torch_points).all()
    for name in ("heatmap", "crop"):
        run([sys.executable, "-m", "fhbiometry", "export", "--model", f"models/{name}.safetensors"], root, env)
    run(predict + ["--out", "pred_onnx", "--backend", "onnx"], root, env)
    assert np.abs(frame_points(root / "pred_onnx/frames.csv") - torch_points).max() < 0.05

    params["decode"]["refine_passes"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run([sys.executable, "-m", "dvc", "repro"], root, env)
    assert "Running stage 'evaluate_refine@crop'" in out, out
    assert "Running stage 'train_refine@crop'" not in out, out
    metrics = json.loads((root / "metrics/eval/crop.json").read_text())
    assert metrics["refine"]["passes"] == 2
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert lock["train_refine@crop"]["params"]["params.yaml"]["refine.crop"]["epochs"] == 1
    status = run([sys.executable, "-m", "dvc", "status", "--json"], root, env)
    assert json.loads(status) == {}, status


@pytest.mark.slow
def test_documented_fine_tuning_commands_retrain_from_the_checkpoint(pipeline):
    """weights/README.md's two commands, as written there: a checkpoint copied under weights/
    makes every train stage stale (the folder is their dep), and `dvc exp run -S
    +models.heatmap.init_from=...` trains the heatmap model from it, the checkpoint naming the
    file and its hash. (Last in this module: it changes the workspace.)"""
    import hashlib

    from fhbiometry.models.checkpoint import read_checkpoint

    root, env, _ = pipeline
    shutil.copy(root / "models/heatmap.safetensors", root / "weights/heatmap_synthetic.safetensors")
    changed = set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], root, env)))
    assert {f"train@{m}" for m in MODELS} <= changed, changed
    run([sys.executable, "-m", "dvc", "exp", "run", "-S",
         "+models.heatmap.init_from=weights/heatmap_synthetic.safetensors"], root, env)
    _, meta = read_checkpoint(root / "models/heatmap.safetensors")
    source = (root / "weights/heatmap_synthetic.safetensors").read_bytes()
    assert meta["init_from"]["path"] == "weights/heatmap_synthetic.safetensors"
    assert meta["init_from"]["sha256"] == hashlib.sha256(source).hexdigest()
    assert meta["init_from"]["fresh"] == []

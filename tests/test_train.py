import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SIZE, fake_prepared, tiny_params
from fhbiometry.codecs import losses
from fhbiometry.config import schema
from fhbiometry.training import loop as train
from fhbiometry.training import validation
from fhbiometry.metrics.validation import validation_metrics
from fhbiometry.models.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from fhbiometry.codecs import HeatmapCodec, RegressionCodec
from fhbiometry.core.geometry import LANDMARKS, ellipse_landmarks
from fhbiometry.inference.runner import load_model, predict
from fhbiometry.core.letterbox import Letterbox, to_input, to_original
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.core.store import save_npz

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread_outside_any_repo(tmp_path, monkeypatch):
    """One torch thread; run from a temporary folder so DVCLive does not inspect the working repo."""
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)


def write_prepared(root, n_train=12, n_val=4):
    train_data = fake_prepared(n_train, seed=1)
    train_data["use_for_training"][-1] = False  # a QC-excluded frame
    val = fake_prepared(n_val, seed=2)
    val["label_ok"][-1] = val["use_for_training"][-1] = False  # excluded by QC
    save_npz(Path(root) / "data/prepared/train.npz", train_data)
    save_npz(Path(root) / "data/prepared/val.npz", val)
    return train_data, val


# ---- params (validation: tests/test_schema.py) -----------------------------------------------
def test_model_config_merges_defaults_and_augment_key_by_key():
    params = tiny_params(epochs=5, lr=0.01, augment={"hflip": 0.0}, head_channels=32)
    cfg = schema.model_config(params, "m")
    assert cfg["epochs"] == 5
    assert cfg["lr"] == 0.01
    assert cfg["batch_size"] == 4
    assert cfg["augment"]["hflip"] == 0.0
    assert cfg["augment"]["rotation_deg"] == 10.0
    assert cfg["head_channels"] == 32
    assert cfg["arch"] == "resnet18"
    assert params["train"]["augment"]["hflip"] == 0.5  # the input is not modified


# ---- losses ---------------------------------------------------------------------------------
def _targets():
    pts = np.stack([ellipse_landmarks(30, 32, 20, 14, 0.2), ellipse_landmarks(28, 30, 18, 12, -0.3)])
    return torch.tensor(RegressionCodec(input_size=SIZE).normalise(pts).reshape(2, 8), dtype=torch.float32)


@pytest.mark.parametrize("loss", ["mse", "l1", "smooth_l1"])
def test_pair_invariant_loss_ignores_swapped_ends_per_sample(loss):
    target = _targets()
    pred = target.reshape(2, 4, 2).clone()
    pred[0] = pred[0, [1, 0, 2, 3]]  # sample 0: OFD ends swapped
    pred[1] = pred[1, [0, 1, 3, 2]]  # sample 1: BPD ends swapped
    pred = pred.reshape(2, 8)
    assert losses.regression_loss(pred, target, loss, pair_invariant=True).item() == pytest.approx(0.0, abs=1e-9)
    assert losses.regression_loss(pred, target, loss, pair_invariant=False).item() > 1e-3
    # the midpoint of the two ends is not a zero-loss answer
    mid = target.reshape(2, 4, 2).clone()
    mid[:, :2] = mid[:, :2].mean(1, keepdim=True)
    assert losses.regression_loss(mid.reshape(2, 8), target, loss, pair_invariant=True).item() > 1e-3


def test_regression_loss_values_without_swaps():
    target = _targets()
    pred = target + 0.1
    assert losses.regression_loss(pred, target, "mse", False).item() == pytest.approx(0.01, rel=1e-4)
    assert losses.regression_loss(pred, target, "l1", True).item() == pytest.approx(0.1, rel=1e-4)
    beta = losses.SMOOTH_L1_BETA
    assert losses.regression_loss(pred, target, "smooth_l1", True).item() == pytest.approx(0.1 - beta / 2, rel=1e-4)
    small = target + 0.01  # below beta: quadratic
    assert losses.regression_loss(small, target, "smooth_l1", True).item() == pytest.approx(
        0.5 * 0.01 ** 2 / beta, rel=1e-3)


def test_heatmap_loss_weights_the_foreground():
    codec = HeatmapCodec(input_size=SIZE, stride=4, sigma=1.5)
    target = torch.from_numpy(codec.encode_one(ellipse_landmarks(30, 32, 20, 14, 0.2))[None])
    zeros = torch.zeros_like(target)
    plain = losses.heatmap_loss(zeros, target, peak=1.0, foreground_weight=1.0, weight=1.0)
    assert plain.item() == pytest.approx(F.mse_loss(zeros, target).item(), rel=1e-6)
    fg = target > 0.1
    expected = ((10 * fg + ~fg) * target ** 2).mean().item() * 3.0
    weighted = losses.heatmap_loss(zeros, target, peak=1.0, foreground_weight=10.0, weight=3.0)
    assert weighted.item() == pytest.approx(expected, rel=1e-6)
    assert weighted.item() > 3 * plain.item()
    assert losses.heatmap_loss(target, target).item() == 0.0


def test_lr_factor_warmup_cosine_step_constant():
    f = [train.lr_factor(s, 10, 4, "cosine", 1) for s in range(40)]
    assert f[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert f[10] == pytest.approx(1.0)
    assert f[-1] < 0.01
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    s = [train.lr_factor(k, 10, 4, "step", 0) for k in range(40)]
    assert s[0] == 1.0
    assert s[19] == 1.0
    assert s[20] == pytest.approx(0.1)
    assert s[30] == pytest.approx(0.01)
    assert {train.lr_factor(k, 10, 4, "constant", 0) for k in range(40)} == {1.0}
    assert train.lr_factor(0, 5, 1, "cosine", 3) == pytest.approx(0.2)  # warm-up longer than training


def test_validation_metrics_in_px_and_mm():
    val = fake_prepared(3, seed=4)
    perfect = to_input(val["points_orig"], val["transform"])
    m = validation_metrics(perfect, val)
    assert m["mre_px"] == pytest.approx(0, abs=1e-9)
    assert m["bpd_mae_mm"] == pytest.approx(0, abs=1e-9)
    shifted = to_original(perfect, val["transform"]) + [2.0, 0.0]  # 2 original px to the right
    m = validation_metrics(to_input(shifted, val["transform"]), val)
    assert m["mre_px"] == pytest.approx(2.0)
    assert m["mre_mm"] == pytest.approx(2.0 * val["spacing_mm"].mean())
    assert m["ofd_mae_mm"] == pytest.approx(0, abs=1e-9)


# ---- training runs --------------------------------------------------------------------------
@pytest.mark.slow
def test_run_writes_checkpoint_and_dvclive_files(tmp_path):
    train_data, val = write_prepared(tmp_path)
    meta = train.run(tiny_params(), "m", root=tmp_path, progress=False)
    path = tmp_path / "models/m.safetensors"
    state, saved = read_checkpoint(path)
    assert state
    assert saved == {"format": saved["format"], **meta}
    for key in ("arch", "kind", "codec", "landmarks", "input", "head_channels", "head_skips",
                "data_hash", "model_params", "best_epoch", "best_val_mre_mm", "train_mean_points"):
        assert key in saved, key
    assert saved["landmarks"] == list(LANDMARKS)
    assert saved["input"] == {"size": SIZE, "resize": "letterbox"}
    assert saved["data_hash"] == train.file_hash(tmp_path / "data/prepared/train.npz")
    assert saved["best_epoch"] in (0, 1)
    assert saved["best_val_mre_mm"] > 0
    used = train_data["points"][train_data["use_for_training"]].astype(np.float64)
    assert np.allclose(saved["train_mean_points"], used.mean(0))
    assert saved["model_params"]["augment"]["hflip"] == 0.5
    assert saved["codec"]["input_size"] == SIZE
    assert saved["codec"] == {"kind": "regression", "input_size": SIZE, "coordinates": "normalised"}
    live = tmp_path / "metrics/train/m"
    files = sorted(str(p.relative_to(live)) for p in live.rglob("*") if p.is_file())
    assert files == ["metrics.json", "plots/metrics/train/loss.tsv", "plots/metrics/train/lr.tsv",
                     "plots/metrics/val/bpd_mae_mm.tsv", "plots/metrics/val/mre_mm.tsv",
                     "plots/metrics/val/mre_px.tsv", "plots/metrics/val/ofd_mae_mm.tsv"]
    assert not (tmp_path / "dvc.yaml").exists()
    assert not (live / "dvc.yaml").exists()
    lines = (live / "plots/metrics/val/mre_mm.tsv").read_text().splitlines()
    assert lines[0] == "step\tmre_mm"
    assert len(lines) == 3
    best = min(float(line.split("\t")[1]) for line in lines[1:])
    assert best == pytest.approx(meta["best_val_mre_mm"], rel=1e-5)
    # the checkpoint round-trips through inference
    loaded = load_model(path, arch="resnet18", kind="regression")
    assert loaded.letterbox == Letterbox(size=SIZE)
    assert loaded.codec == RegressionCodec(input_size=SIZE)
    out, raw = predict(loaded.model, loaded.codec, val["image"], batch_size=3)
    assert out.points.shape == (4, 4, 2)
    assert out.points.dtype == np.float64
    assert out.peak is None
    assert raw.shape == (4, 8)
    assert raw.dtype == np.float32
    again, _ = predict(loaded.model, loaded.codec, val["image"], batch_size=1)
    assert np.allclose(out.points, again.points, atol=1e-4)


@pytest.mark.slow
def test_two_runs_give_identical_weights(tmp_path):
    states = []
    for run in ("a", "b"):
        write_prepared(tmp_path / run)
        train.run(tiny_params(), "m", root=tmp_path / run, progress=False)
        states.append(read_checkpoint(tmp_path / run / "models/m.safetensors")[0])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert (tmp_path / "a/models/m.safetensors").read_bytes() == (tmp_path / "b/models/m.safetensors").read_bytes()
    for tsv in ("train/loss.tsv", "val/mre_mm.tsv"):
        assert ((tmp_path / "a/metrics/train/m/plots/metrics" / tsv).read_bytes()
                == (tmp_path / "b/metrics/train/m/plots/metrics" / tsv).read_bytes())
    # and a different seed gives different weights
    params = tiny_params()
    params["seed"] = 8
    train.run(params, "m", root=tmp_path / "a", progress=False)
    other = read_checkpoint(tmp_path / "a/models/m.safetensors")[0]
    assert not all(torch.equal(states[0][k], other[k]) for k in states[0])


def test_heatmap_model_trains_and_predicts_heatmaps(tmp_path):
    _, val = write_prepared(tmp_path, n_train=8, n_val=3)
    params = tiny_params(kind="heatmap", loss="mse", head_channels=16, epochs=1, optimizer="sgd",
                         schedule="step")
    train.run(params, "m", root=tmp_path, progress=False)
    loaded = load_model(tmp_path / "models/m.safetensors")
    meta = loaded.meta
    assert meta["kind"] == "heatmap"
    assert meta["head_channels"] == 16
    assert meta["codec"]["stride"] == 4
    assert meta["head_skips"] is True
    assert len(loaded.model.laterals) == 3
    assert loaded.codec == HeatmapCodec(input_size=SIZE, stride=4, sigma=1.5, peak=1.0)
    out, hm = predict(loaded.model, loaded.codec.with_decoding({"method": "argmax"}), val["image"])
    assert hm.shape == (3, 4, 16, 16)
    assert hm.dtype == np.float32
    assert out.peak.shape == (3, 4)
    assert np.allclose((out.points - 1.5) % 4, 0)  # argmax decoding: heatmap cell centres
    peak = (tmp_path / "metrics/train/m/plots/metrics/val/peak.tsv").read_text().splitlines()
    assert peak[0] == "step\tpeak"
    assert len(peak) == 2


@pytest.mark.parametrize("coordinates", ["normalised", "pixels"])
def test_mean_shape_init_in_either_target_space_predicts_the_training_mean(tmp_path, coordinates):
    """One step at a tiny learning rate from the mean-shape head: predictions stay at the mean
    training landmarks, whether the targets are normalised or raw input pixels."""
    train_data, _ = write_prepared(tmp_path, n_train=6, n_val=2)
    params = tiny_params(epochs=1, lr=1e-9, warmup_epochs=0)
    params["codec"]["coordinates"] = coordinates
    params["train"]["augment"]["enabled"] = False
    train.run(params, "m", root=tmp_path, progress=False)
    loaded = load_model(tmp_path / "models/m.safetensors")
    assert loaded.meta["codec"]["coordinates"] == coordinates
    assert loaded.codec.coordinates == coordinates
    out, _ = predict(loaded.model, loaded.codec, train_data["image"][:3])
    used = train_data["points"][train_data["use_for_training"]].astype(np.float64)
    assert np.allclose(loaded.meta["train_mean_points"], used.mean(0))
    assert np.allclose(out.points, used.mean(0)[None], atol=0.05)


@pytest.mark.slow
def test_best_epoch_is_the_lowest_val_mre_ties_to_the_earlier(tmp_path, monkeypatch):
    train_data, val = fake_prepared(6, seed=1), fake_prepared(2, seed=2)
    sequence = iter([3.0, 2.0, 2.0, 5.0])
    real = validation_metrics

    def scripted(pred, data):
        return {**real(pred, data), "mre_mm": next(sequence)}

    monkeypatch.setattr(validation, "validation_metrics", scripted)
    state, meta = train.train_model(tiny_params(epochs=4, augment={"enabled": False}), "m", train_data, val,
                                    progress=False)
    assert meta["best_epoch"] == 1
    assert meta["best_val_mre_mm"] == 2.0
    assert state


def test_training_needs_validation_frames():
    val = fake_prepared(2, seed=2)
    val["label_ok"][:] = val["use_for_training"][:] = False
    with pytest.raises(ValueError, match="val.npz has no frame the QC policy accepts"):
        train.train_model(tiny_params(), "m", fake_prepared(4), val, progress=False)


def test_validation_frames_follow_the_qc_policy():
    """qc.policy keep: labels that failed a check are still validated on (they are trained on)."""
    val = fake_prepared(4, seed=2)
    val["label_ok"][:] = False                       # every label flagged ...
    val["use_for_training"][:] = [True, True, True, False]  # ... but kept by the policy
    val["points_orig"][2] = np.nan                   # a frame without a usable label
    assert list(accepted_rows(val)) == [True, True, False, False]
    assert len(train.training_frames(val, val)[1]["image"]) == 2


def test_data_built_with_another_input_size_is_refused(tmp_path):
    write_prepared(tmp_path)
    params = tiny_params()
    params["input"]["size"] = 96
    with pytest.raises(ValueError, match=r"train.npz: images are 64 px but input.size is 96"):
        train.run(params, "m", root=tmp_path, progress=False)


# ---- inference errors (damaged and malicious files: tests/test_checkpoint.py) ------------------
def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope.safetensors does not exist.*dvc repro train@nope"):
        load_model(tmp_path / "nope.safetensors")
    write_prepared(tmp_path, n_train=4, n_val=2)
    train.run(tiny_params(epochs=1), "m", root=tmp_path, progress=False)
    path = tmp_path / "models/m.safetensors"
    with pytest.raises(CheckpointError, match=r"m.safetensors: checkpoint arch is 'resnet18', expected 'alexnet'"):
        load_model(path, arch="alexnet")
    state, meta = read_checkpoint(path)
    meta.pop("format")
    save_checkpoint(tmp_path / "models/wrong.safetensors", state, {**meta, "arch": "resnet34"})
    with pytest.raises(CheckpointError, match=r"wrong.safetensors: the weights do not fit a regression resnet34"):
        load_model(tmp_path / "models/wrong.safetensors")
    save_checkpoint(tmp_path / "models/other.safetensors", {}, {"arch": "resnet18"})
    with pytest.raises(CheckpointError, match=r"other.safetensors: checkpoint metadata lacks"):
        load_model(tmp_path / "models/other.safetensors")


def test_git_repository_without_commits_gives_a_clear_error(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "fresh"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    write_prepared(repo, n_train=4, n_val=2)
    monkeypatch.chdir(repo)
    with pytest.raises(RuntimeError, match=r"git repository with at least one commit"):
        train.run(tiny_params(epochs=1), "m", root=repo, progress=False)


# ---- the stage ------------------------------------------------------------------------------
@pytest.mark.slow
def test_stage_entry_point(tmp_path):
    import yaml

    write_prepared(tmp_path, n_train=4, n_val=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(epochs=1), sort_keys=False))
    done = subprocess.run([sys.executable, str(REPO / "stages/train.py"), "--model", "m"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "train@m: best epoch 1" in done.stdout
    assert (tmp_path / "models/m.safetensors").is_file()
    assert (tmp_path / "metrics/train/m/metrics.json").is_file()


@pytest.mark.slow
def test_train_seed_reseeds_training_only():
    """`train.seed` (null: the top-level seed) seeds initialisation, batches and augmentation; set
    to the top-level seed it changes nothing, set to another value it gives another model, and
    the checkpoint's model_params only name it when it is set."""
    data = fake_prepared(8, seed=1), fake_prepared(4, seed=2)
    base = tiny_params()
    state0, meta0 = train.train_model(base, "m", *data, progress=False)
    same = schema.validate_params({**base, "train": {**base["train"], "seed": base["seed"]}})
    state1, _ = train.train_model(same, "m", *data, progress=False)
    other = schema.validate_params({**base, "train": {**base["train"], "seed": base["seed"] + 1}})
    state2, meta2 = train.train_model(other, "m", *data, progress=False)
    assert all(torch.equal(state0[k], state1[k]) for k in state0)
    assert not all(torch.equal(state0[k], state2[k]) for k in state0)
    assert "seed" not in meta0["model_params"]
    assert meta2["model_params"]["seed"] == base["seed"] + 1

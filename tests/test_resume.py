"""Resume after a crash: a training killed mid-run goes on from its last completed epoch and ends
with the same checkpoint bytes and DVCLive files as an uninterrupted run; a changed param never
resumes a stale state."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from fhbiometry.training import resume
from fhbiometry.training import loop as train
from conftest import REPO, tiny_params, write_workspace

EPOCHS = 4
KILL_AFTER_EPOCH = 1  # 0-based: killed once the state of the second epoch is on disk


def stage(root: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, str(REPO / "stages/train.py"), "--model", "m"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return out


def state_epoch(path: Path) -> int:
    """The last completed epoch in a resume state (-1: none or unreadable yet)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(json.loads(f.metadata()[resume.META_KEY])["epoch"])
    except Exception:  # noqa: BLE001 - not there yet
        return -1


def live_files(root: Path) -> dict:
    """Every DVCLive file's text (metrics.json without the wall clock)."""
    base = root / "metrics/train/m"
    out = {p.relative_to(base).as_posix(): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}
    metrics = json.loads(out["metrics.json"])
    metrics.pop("train_seconds")
    out["metrics.json"] = metrics
    return out


@pytest.mark.slow
def test_killed_training_resumes_and_ends_bit_identical(tmp_path):
    params = tiny_params(epochs=EPOCHS)
    whole = write_workspace(tmp_path / "whole", params)
    crashed = write_workspace(tmp_path / "crashed", params)
    finish(stage(whole))
    state = resume.state_path(crashed, "m")
    proc = stage(crashed)
    while state_epoch(state) < KILL_AFTER_EPOCH:
        assert proc.poll() is None, "the training ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed_at = state_epoch(state)
    assert KILL_AFTER_EPOCH <= killed_at < EPOCHS - 1
    assert not (crashed / "models/m.safetensors").exists()
    shutil.rmtree(crashed / "metrics/train/m")  # what `dvc repro` does to a stage's outs before rerunning it
    out = finish(stage(crashed))
    assert f"resuming after epoch {killed_at + 1}" in out
    assert out.count("train@m: epoch ") == EPOCHS - killed_at - 1  # only the epochs still to do
    assert (crashed / "models/m.safetensors").read_bytes() == (whole / "models/m.safetensors").read_bytes()
    assert live_files(crashed) == live_files(whole)
    assert not state.exists()
    assert not state.parent.exists()  # deleted once training completed


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_changed_param_starts_afresh_and_same_params_resume(in_tmp, monkeypatch, capsys):
    params = tiny_params(epochs=2)
    write_workspace(in_tmp / "a", params)
    monkeypatch.setattr(resume, "clear", lambda path: None)  # keep the final state, as a crash would
    train.run(params, "m", root=in_tmp / "a", progress=False)
    state = resume.state_path(in_tmp / "a", "m")
    assert state_epoch(state) == 1
    first = (in_tmp / "a/models/m.safetensors").read_bytes()
    capsys.readouterr()
    train.run(params, "m", root=in_tmp / "a", progress=False)  # same params: resumes, nothing left to train
    log = capsys.readouterr().out
    assert "resuming after epoch 2" in log
    assert "train@m: epoch " not in log
    assert (in_tmp / "a/models/m.safetensors").read_bytes() == first
    monkeypatch.undo()
    changed = tiny_params(epochs=2, lr=0.0005)
    train.run(changed, "m", root=in_tmp / "a", progress=False)
    log = capsys.readouterr().out
    assert "resume state of other settings or data; starting afresh" in log
    assert "resuming" not in log
    assert log.count("train@m: epoch ") == 2
    write_workspace(in_tmp / "b", changed)
    train.run(changed, "m", root=in_tmp / "b", progress=False, resumable=False)
    assert (in_tmp / "a/models/m.safetensors").read_bytes() == (in_tmp / "b/models/m.safetensors").read_bytes()
    assert not state.exists()


def test_fingerprint_covers_settings_data_code_and_world_size(monkeypatch):
    params = tiny_params()
    cfg = train.model_config(params, "m")
    base = resume.fingerprint(params, cfg, ("t", "v"), 1)
    assert base == resume.fingerprint(tiny_params(), dict(cfg), ("t", "v"), 1)
    other_device = tiny_params()
    other_device["device"] = {"type": "cpu", "amp": "none", "compile": True, "channels_last": False}
    changes = [resume.fingerprint(params, {**cfg, "lr": 0.5}, ("t", "v"), 1),
               resume.fingerprint({**params, "threads": 2}, cfg, ("t", "v"), 1),
               resume.fingerprint(params, cfg, ("t2", "v"), 1), resume.fingerprint(params, cfg, ("t", "v2"), 1),
               resume.fingerprint(params, cfg, ("t", "v"), 2), resume.fingerprint({**params, "seed": 1}, cfg, ("t", "v"), 1),
               resume.fingerprint(other_device, cfg, ("t", "v"), 1)]
    monkeypatch.setattr(resume, "code_hash", lambda: "edited")
    changes.append(resume.fingerprint(params, cfg, ("t", "v"), 1))
    assert len(set(changes + [base])) == len(changes) + 1


def test_state_is_written_atomically_and_a_broken_one_is_dropped(tmp_path, capsys):
    path = resume.state_path(tmp_path, "m")
    resume.save(path, {"w": torch.arange(4.0)}, {"fingerprint": "k", "epoch": 0, "rng": {"state": 2 ** 100}})
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]  # no temporary file left
    tensors, info = resume.load(path, "k")
    assert torch.equal(tensors["w"], torch.arange(4.0))
    assert info["rng"]["state"] == 2 ** 100
    assert resume.load(path, "other") is None
    assert not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 5)  # a state cut short
    assert resume.load(path, "k") is None
    assert not path.exists()
    assert "unreadable resume state" in capsys.readouterr().out


@pytest.mark.slow
def test_snapshot_restore_round_trip_keeps_every_random_stream(in_tmp):
    """The torch RNG (dropout), both NumPy streams, the optimiser and the weights survive a
    snapshot -> file -> restore into a fresh run."""
    params = tiny_params(epochs=2)
    root = write_workspace(in_tmp / "w", params)
    from fhbiometry.core.store import load_npz
    args = (params, "m", load_npz(root / "data/prepared/train.npz"), load_npz(root / "data/prepared/val.npz"))
    first = make_run(*args)
    train.train_epoch(first, 0, progress=False)
    torch.rand(3)
    saved_rng = torch.get_rng_state()
    path = resume.state_path(root, "m")
    resume.save(path, *train.snapshot(first, 0, {"epoch": 0, "mre_mm": 1.0, "state": None}, "k"))
    torch.manual_seed(123)
    second = make_run(*args)
    epoch, best = train.restore(second, None, *resume.load(path, "k"))
    assert epoch == 1
    assert best["epoch"] == 0
    assert second.step == first.step
    assert second.history == first.history
    assert torch.equal(torch.get_rng_state(), saved_rng)
    torch.set_rng_state(saved_rng)
    assert np.array_equal(first.batch_rng.random(3), second.batch_rng.random(3))
    assert np.array_equal(first.aug_rng.random(3), second.aug_rng.random(3))
    for (k, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert train.train_step(first, np.arange(4)) == train.train_step(second, np.arange(4))


def make_run(params, name, train_data, val_data):
    from fhbiometry.codecs import make_codec
    cfg = train.model_config(params, name)
    codec = make_codec(cfg["kind"], params["input"]["size"], params["codec"], train.VALIDATION_DECODE)
    tr, va = train.training_frames(train_data, val_data)
    return train.start_run(name, cfg, codec, True, int(params["seed"]), tr, va)

"""Checkpoints execute nothing when read (issue 10, item 6): pickles, damaged files and foreign
safetensors are refused with the path and the fix; our own files round-trip exactly."""
import os
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fhbiometry.models.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from fhbiometry.codecs import RegressionCodec
from fhbiometry.core.geometry import LANDMARKS
from fhbiometry.inference.runner import load_model
from fhbiometry.core.letterbox import Letterbox
from conftest import untrained_checkpoint, untrained_model

SIZE = 64


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


class WritesMarker:
    """Unpickling this object would create the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def meta():
    return {"arch": "resnet18", "kind": "regression", "codec": RegressionCodec(input_size=SIZE).settings(),
            "input": Letterbox(size=SIZE).to_dict(), "landmarks": list(LANDMARKS), "head_channels": 128,
            "head_skips": True, "data_hash": "abc", "best_epoch": 1, "best_val_mre_mm": 1.25,
            "train_mean_points": [[1.5, 2.0], [3.0, 4.25], [5.0, 6.0], [7.0, 8.0]],
            "model_params": {"lr": 0.001, "augment": {"hflip": 0.5}}}


def real_checkpoint(path):
    """An untrained resnet18 regressor's checkpoint with ``meta()`` (conftest.untrained_checkpoint)."""
    return untrained_checkpoint(path, "regression", head_channels=128, meta=meta())


@pytest.mark.parametrize("reader", [read_checkpoint, load_model])
def test_malicious_pickle_runs_nothing_and_names_the_fix(tmp_path, reader):
    marker = tmp_path / "pwned"
    path = tmp_path / "models/evil.pt"
    path.parent.mkdir()
    torch.save({"state_dict": WritesMarker(marker)}, path)  # a torch pickle (zip) checkpoint
    with pytest.raises(CheckpointError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message
    assert "pickle" in message
    assert "dvc repro train@evil" in message
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(WritesMarker(marker)))  # a plain pickle stream
    with pytest.raises(CheckpointError, match="raw.pt"):
        reader(raw)
    assert not marker.exists()
    pickle.loads(raw.read_bytes())  # the file is really malicious: unpickled, it writes the marker
    assert marker.exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "random"])
def test_damaged_files_are_refused_with_the_path(tmp_path, damage):
    good = tmp_path / "good.safetensors"
    real_checkpoint(good)
    path = tmp_path / f"{damage}.safetensors"
    data = good.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[:len(data) // 2],
                      "random": np.random.default_rng(0).bytes(4096)}[damage])
    for reader in (read_checkpoint, load_model):
        with pytest.raises(CheckpointError, match=rf"{damage}.safetensors.*dvc repro train@{damage}"):
            reader(path)
    with pytest.raises(CheckpointError, match=r"nope.safetensors does not exist"):
        read_checkpoint(tmp_path / "nope.safetensors")


def test_round_trip_is_exact_and_bytes_are_stable(tmp_path):
    real_checkpoint(tmp_path / "a.safetensors")
    state = untrained_model("regression", head_channels=128).state_dict()     # the weights written
    read, got = read_checkpoint(tmp_path / "a.safetensors")
    assert read.keys() == state.keys()
    for k in state:
        assert read[k].dtype == state[k].dtype, k
        assert torch.equal(read[k], state[k]), k
    got.pop("format")
    assert got == meta()
    real_checkpoint(tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    loaded = load_model(tmp_path / "a.safetensors", arch="resnet18", kind="regression")
    assert loaded.codec == RegressionCodec(input_size=SIZE)
    assert loaded.letterbox == Letterbox(size=SIZE)
    assert all(torch.equal(v, state[k]) for k, v in loaded.model.state_dict().items())


def test_foreign_safetensors_is_refused(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match=r"foreign.safetensors has no 'fhbiometry' metadata"):
        read_checkpoint(path)
    save_file({"w": torch.zeros(3)}, str(path), metadata={"fhbiometry": '{"format": 1}'})
    with pytest.raises(CheckpointError, match=r"foreign.safetensors: checkpoint metadata lacks"):
        load_model(path)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    real_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"m.safetensors: checkpoint arch is 'resnet18', expected 'alexnet'"):
        load_model(path, arch="alexnet")
    state, m = read_checkpoint(path)
    save_checkpoint(tmp_path / "wrong.safetensors", state, {**m, "arch": "resnet34"})
    with pytest.raises(CheckpointError, match=r"wrong.safetensors: the weights do not fit a regression resnet34"):
        load_model(tmp_path / "wrong.safetensors")

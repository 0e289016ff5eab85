"""A checkpoint whose metadata params.yaml could never have produced is refused when it is loaded
(issue 18, item 10): the message names the checkpoint file and the key (not params.yaml), and
`fhbiometry predict` exits with status 2."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fhbiometry.cli import main
from fhbiometry.codecs import make_codec
from fhbiometry.core.geometry import LANDMARKS
from fhbiometry.inference.runner import load_model
from fhbiometry.models.checkpoint import CheckpointError, read_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
CODEC = {"coordinates": "normalised", "stride": 4, "sigma": 1.5, "peak": 1.0}


def meta(kind="heatmap", size=64, arch="resnet18") -> dict:
    return {"arch": arch, "kind": kind, "codec": make_codec(kind, size, CODEC).settings(),
            "input": {"size": size, "resize": "letterbox"}, "landmarks": list(LANDMARKS),
            "head_channels": 16, "head_skips": True, "best_epoch": 0}


def write(path, data: dict) -> Path:
    return save_checkpoint(path, {"w": torch.zeros(1)}, data)


def with_size_100(m):
    m["input"]["size"] = 100
    m["codec"]["input_size"] = 100


def sizes_disagree(m):
    m["codec"]["input_size"] = 128


def alexnet_heatmap(m):
    m["arch"] = "alexnet"


def kinds_disagree(m):
    m["codec"] = make_codec("regression", 64, CODEC).settings()


@pytest.mark.parametrize("damage, key", [(with_size_100, "input.size = 100"),
                                         (sizes_disagree, "codec.input_size = 128"),
                                         (alexnet_heatmap, "arch = 'alexnet'"),
                                         (kinds_disagree, "codec.kind = 'regression'")])
def test_invalid_metadata_is_refused_on_load_naming_the_checkpoint(tmp_path, damage, key):
    data = copy.deepcopy(meta())
    damage(data)
    path = write(tmp_path / "bad.safetensors", data)
    for reader in (read_checkpoint, load_model):
        with pytest.raises(CheckpointError) as info:
            reader(path)
        message = str(info.value)
        assert f"{path} (checkpoint metadata): {key}" in message, message
        assert "params.yaml:" not in message, message


def test_valid_metadata_still_loads(tmp_path):
    for kind in ("heatmap", "regression"):
        _, got = read_checkpoint(write(tmp_path / f"{kind}.safetensors", meta(kind)))
        assert got["kind"] == kind


def test_predict_exits_2_on_a_checkpoint_with_size_100(tmp_path, capsys):
    data = meta()
    with_size_100(data)
    bad = write(tmp_path / "bad.safetensors", data)
    still = tmp_path / "in/sub001_HC.png"
    still.parent.mkdir()
    Image.fromarray(np.full((72, 96), 90, np.uint8)).save(still)
    code = main(["predict", str(still), "--model", str(bad), "--out", str(tmp_path / "out"),
                 "--spacing", "0.2", "--params", str(REPO / "params.yaml")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{bad} (checkpoint metadata): input.size = 100: must be a positive multiple of 32" in err, err
    assert "Traceback" not in err

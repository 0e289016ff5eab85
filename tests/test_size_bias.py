"""`fhbiometry size-bias`: a checkpoint's diameter bias and calibration factor per prepared split."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fhbiometry.cli import main
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.core.store import save_npz
from conftest import fake_prepared, untrained_checkpoint


def test_size_bias_of_each_split(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    data = fake_prepared(6, qc_failed_last=True)
    save_npz(tmp_path / "prepared/val.npz", data)
    save_npz(tmp_path / "prepared/test.npz", fake_prepared(6, seed=3))
    untrained_checkpoint(tmp_path / "m.safetensors", train_mean_points=data["points"].mean(0))
    code = main(["size-bias", "--model", str(tmp_path / "m.safetensors"), "--prepared", str(tmp_path / "prepared"),
                 "--splits", "val", "test", "--json", str(tmp_path / "bias.json")])
    assert code == 0
    out = json.loads((tmp_path / "bias.json").read_text())
    assert out["val"]["frames"] == int(accepted_rows(data).sum()) == 5
    for split in ("val", "test"):
        b = out[split]
        assert b["ofd_factor"] > 0
        assert b["bpd_factor"] > 0
        assert np.isfinite(b["ofd_bias_mm"])
    assert "| val | 5 |" in capsys.readouterr().out
    assert main(["size-bias", "--model", str(tmp_path / "m.safetensors"), "--prepared", str(tmp_path),
                 "--splits", "train"]) == 2                          # no such split: says so

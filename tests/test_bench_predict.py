"""`fhbiometry bench-predict` on tiny settings: every figure of the report is there, consistent
(GFLOP/s from FLOPs and time, % of the matmul), in the JSON and the markdown table. The speed
itself is measured by the lead on a quiet machine (docs/speed.md), never here."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from fhbiometry import cli
from fhbiometry.models.checkpoint import save_checkpoint
from fhbiometry.codecs import HeatmapCodec
from fhbiometry.core.geometry import LANDMARKS
from fhbiometry.core.letterbox import Letterbox
from fhbiometry.models.networks import build_model
from fhbiometry.inference.onnx_backend import synthetic_frames
from fhbiometry.tools.bench_predict import flops_per_frame, practical_limit, timed

SIZE = 64


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_flops_count_a_multiply_add_as_two():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(SIZE * SIZE, 8, bias=False)

        def forward(self, x):
            return self.fc(x.flatten(1))

    assert flops_per_frame(Flat(), SIZE) == 2 * SIZE * SIZE * 8


def test_timed_gives_best_and_median():
    calls = []
    best, median = timed(lambda: calls.append(1), 3)
    assert len(calls) == 4
    assert 0 <= best <= median  # one warm-up run, then three timed


@pytest.mark.slow
def test_bench_reports_every_figure(tmp_path, capsys):
    models = tmp_path / "models"
    torch.manual_seed(0)
    meta = {"arch": "resnet18", "kind": "heatmap", "codec": HeatmapCodec(input_size=SIZE).settings(),
            "input": Letterbox(size=SIZE).to_dict(), "landmarks": list(LANDMARKS)}
    save_checkpoint(models / "heatmap.safetensors", build_model("resnet18", "heatmap").state_dict(), meta)
    out = tmp_path / "bench.json"
    np.savez(tmp_path / "test.npz", image=synthetic_frames(3, SIZE, seed=5), spacing_mm=np.full(3, 0.25),
             transform=np.tile([1.0, 1.0, 0.0, 0.0], (3, 1)))
    code = cli.main(["bench-predict", "--models", "heatmap", "resnet18", "--threads", "1", "--size", str(SIZE),
                     "--iterations", "2", "--matmul-size", "128", "--e2e-frames", "4",
                     "--models-dir", str(models), "--calibration", str(tmp_path / "absent.npz"),
                     "--test-split", str(tmp_path / "test.npz"),
                     "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    limit = practical_limit(report["matmul"])   # the faster matmul of the run
    assert limit > 0
    assert report["matmul"]["numpy_gflops"] > 0
    assert report["threads"] == 1
    assert "multiply-add counts 2" in report["flops_convention"]
    assert report["models"]["heatmap"]["source"] == str(models / "heatmap.safetensors")
    assert report["models"]["resnet18"]["source"] == "untrained regression resnet18"
    for name, model in report["models"].items():
        assert model["input_size"] == SIZE
        assert model["flops_per_frame"] > 0
        assert sorted(model["backends"]) == ["onnx", "onnx-int8", "torch"]
        for row in model["backends"].values():
            for batch in ("batch1", "batch32"):
                figures = row[batch]
                assert 0 < figures["ms_per_frame"] <= figures["ms_per_frame_median"]
                assert figures["gflops"] == pytest.approx(model["flops_per_frame"] / figures["ms_per_frame"] / 1e6)
                assert figures["pct_of_matmul"] == pytest.approx(100 * figures["gflops"] / limit)
            e2e = row["end_to_end"]
            assert e2e["frames"] == 4
            assert e2e["frames_per_s"] == pytest.approx(4 / sum(e2e["seconds"].values()))
            assert set(e2e["seconds"]) == {"read", "letterbox", "network", "decode_and_write"}
        for backend in ("torch", "onnx"):   # `fhbiometry predict` itself, where a checkpoint exists
            assert ("predict_command" in model["backends"][backend]) == (name == "heatmap")
        diff = model["int8_vs_float"]
        assert diff["frames"] == 3
        assert 0 <= diff["median_mm"] <= diff["p95_mm"] <= diff["max_mm"]
    table = capsys.readouterr().out
    assert "| model | backend |" in table
    assert table.count("| heatmap (") == 3
    assert "onnx-int8" in table
    assert "heatmap: int8 vs float landmarks" in table

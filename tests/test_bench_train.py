"""`fhbiometry bench-train`: the training-throughput benchmark on a tiny setting."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fhbiometry import cli
from fhbiometry.training import loop as train
from fhbiometry.config.params import load_params
from fhbiometry.training.loop import seed_everything
from fhbiometry.tools import bench_train
from fhbiometry.tools import train_steps as bench

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["bench-train", "--params", str(REPO / "params.yaml"), "--models", "heatmap", "--size", "64",
            "--batch", "4", "--steps", "2", "--warmup", "1", "--threads", "1", "--matmul-size", "256",
            "--variants", "channels_last,threads1", "--out", str(out)]
    return json.loads(out.read_text()) if cli.main(argv) == 0 else None


@pytest.mark.slow
def test_report_has_every_column_and_shares_in_unit_range(tiny_run):
    assert tiny_run is not None
    text = bench.report(tiny_run)
    header = next(line for line in text.splitlines() if line.startswith("| model | batch"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.TABLE_COLUMNS)
    (row,) = tiny_run["baseline"]
    assert row["model"] == "heatmap"
    assert row["input"] == 64
    assert row["batch"] == 4
    assert 0.0 <= row["data_share"] <= 1.0
    assert row["data_s"] > 0
    assert row["compute_s"] > 0
    assert row["frames_per_s"] > 0
    assert row["step_gflop"] > 2 * row["forward_gflop"] > 0  # backward counted too
    assert 0.0 < row["gflops"] / tiny_run["matmul_gflops"]
    assert tiny_run["matmul_gflops"] > 0
    assert tiny_run["machine"]["cpu_capability"]


@pytest.mark.slow
def test_variants_are_timed_and_compared_with_the_baseline(tiny_run):
    variants = {r["variant"]: r for r in tiny_run["variants"]}
    assert set(variants) == {"channels_last", "threads1"}
    for result in variants.values():
        assert "error" not in result, result
        assert 0.0 <= result["data_share"] <= 1.0
    text = bench.report(tiny_run)
    assert "| model | variant | frames/s | x baseline | note |" in text


def test_benchmark_step_is_the_training_step():
    """The timed data path + compute must do exactly what train.train_step does: same loss, same
    weights after a step from the same seed."""
    params = load_params(REPO / "params.yaml")
    params["input"]["size"] = 64
    params["models"]["heatmap"]["head_channels"] = 8
    frames = bench.synthetic_inputs(8, 64, seed=0)
    idx = np.arange(4)
    seed_everything(0, 1)
    reference = bench.start(params, "heatmap", 4, *frames)
    loss_ref = train.train_step(reference, idx)
    seed_everything(0, 1)
    timed = bench.start(params, "heatmap", 4, *frames)
    loss = bench.compute(timed, *bench.data_path(timed, idx))
    assert loss == loss_ref
    for a, b in zip(reference.model.parameters(), timed.model.parameters()):
        assert torch.equal(a, b)


def test_unknown_variant_or_model_is_refused_with_the_choices():
    with pytest.raises(SystemExit, match="channels_last"):
        bench_train.variant_list("fast")
    with pytest.raises(SystemExit, match="heatmap"):
        cli.main(["bench-train", "--params", str(REPO / "params.yaml"), "--models", "vgg"])


def test_a_variant_runs_as_the_train_stage_would_run_it():
    """bf16 and channels_last are the stage's `device` settings (autocast, memory format), not a
    benchmark's own copy of them; the result names the device and the precision."""
    hw = bench.hardware("cpu", "bf16")
    assert hw.amp == "bf16"
    assert bench.hardware("cpu", "channels_last").channels_last
    assert bench.hardware("cpu").amp == "none"
    params = load_params(REPO / "params.yaml")
    params["input"]["size"] = 64
    params["models"]["heatmap"]["head_channels"] = 8
    frames = bench.synthetic_inputs(8, 64, seed=0)
    result = bench.bench_model(params, "heatmap", frames, 4, 1, 0, "bf16")
    assert result["device"] == "cpu"
    assert result["amp"] == "bf16"
    assert result["compute_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused_with_the_fix():
    with pytest.raises(SystemExit, match="no CUDA device"):
        cli.main(["bench-train", "--params", str(REPO / "params.yaml"), "--models", "heatmap", "--device", "cuda"])

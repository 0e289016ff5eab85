"""Devices: ``auto`` resolution (CUDA, else MPS, else CPU) with the availability monkeypatched (no
GPU here), clear refusals, the AMP and compile code paths where the CPU allows them, checkpoints
that load on any device, and the default path's weights equal to the explicit CPU path's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fhbiometry.training import device as dev
from fhbiometry.training import distributed as dist
from fhbiometry.training import loop as train
from fhbiometry.models.checkpoint import save_checkpoint
from fhbiometry.inference.runner import load_model, network_outputs
from fhbiometry.config.params import ParamError
from fhbiometry.config.schema import validate_params
from conftest import SIZE, fake_prepared, tiny_params

CPU = dev.Hardware(torch.device("cpu"))


@pytest.fixture(autouse=True)
def one_thread(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)


def gpus(monkeypatch, cuda: bool, mps: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(dev, "mps_available", lambda: mps)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)


@pytest.mark.parametrize("cuda,mps,expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    gpus(monkeypatch, cuda, mps)
    assert dev.resolve_type("auto") == expected
    assert dev.resolve({"type": "auto"}).device.type == expected


def test_cuda_process_takes_its_local_rank_gpu(monkeypatch):
    gpus(monkeypatch, True, False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    hw = dev.resolve({"type": "cuda", "amp": "fp16"}, local_rank=1)
    assert hw.device == torch.device("cuda:1")
    assert hw.amp == "fp16"
    assert hw.on_gpu
    assert dev.os.environ["CUBLAS_WORKSPACE_CONFIG"] == dev.CUBLAS_WORKSPACE


@pytest.mark.parametrize("settings,match", [
    ({"type": "cuda"}, r"device.type = 'cuda' but torch sees no CUDA device here: set device.type to auto or cpu"),
    ({"type": "mps"}, r"device.type = 'mps' but torch sees no Apple MPS device"),
    ({"type": "cpu", "amp": "fp16"}, r"device.amp = 'fp16' needs a CUDA device, but training runs on cpu"),
    ({"type": "auto", "amp": "fp16"}, r"device.amp = 'fp16' needs a CUDA device"),
    ({"type": "auto", "amp": "half"}, r"device.amp = 'half': choose one of \['none', 'bf16', 'fp16', 'auto'\]"),
    ({"type": "tpu"}, r"device.type = 'tpu': choose one of \['auto', 'cpu', 'cuda', 'mps'\]"),
])
def test_impossible_settings_are_refused_with_the_fix(monkeypatch, settings, match):
    gpus(monkeypatch, False, False)
    with pytest.raises(ParamError, match=match):
        dev.resolve(settings)


def test_schema_knows_the_device_section_and_its_defaults():
    params = tiny_params()
    del params["device"], params["launcher"]
    out = validate_params(params)
    assert out["device"] == dev.DEFAULTS
    assert out["launcher"] == "python"
    params["device"] = {"type": "gpu"}
    with pytest.raises(ParamError, match=r"device.type = 'gpu': choose one of"):
        validate_params(params)


def test_cpu_helpers_are_no_ops():
    x = torch.zeros(2, 1, 8, 8)
    model = torch.nn.Conv2d(1, 2, 3)
    assert dev.to_device(x, CPU, image=True) is x
    assert dev.prepare_model(model, CPU) is model
    assert dev.compiled(model, CPU) is model
    assert dev.make_scaler(CPU) is None
    assert dist.wrap(model, dist.World(), CPU.device) is model


@pytest.mark.slow
def test_compile_wraps_the_model_lazily():
    """torch.compile compiles on the first call (tens of seconds on a CPU): only the wrapping is
    checked; the state dict stays the model's own (no '_orig_mod.' prefix in checkpoints)."""
    model = torch.nn.Conv2d(1, 2, 3)
    wrapped = dev.compiled(model, dev.Hardware(torch.device("cpu"), compile=True))
    assert wrapped is not model
    assert wrapped._orig_mod is model


def small_run(hw: dev.Hardware, **model):
    params = tiny_params(epochs=1, batch_size=4, **model)
    cfg = train.model_config(params, "m")
    codec = train.make_codec(cfg["kind"], SIZE, params["codec"], train.VALIDATION_DECODE)
    data = fake_prepared(8, seed=1)
    tr, va = train.training_frames(data, fake_prepared(2, seed=2))
    run = train.start_run("m", cfg, codec, True, 7, tr, va, hw)
    train.start_steps(run)
    return run


@pytest.mark.slow
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_step_runs_where_the_cpu_allows_it(amp):
    """The mixed-precision step (autocast; fp16 with a gradient scaler) on the CPU's autocast: the
    params refuse fp16 off CUDA, so this builds the Hardware directly to exercise the code path."""
    run = small_run(dev.Hardware(torch.device("cpu"), amp=amp))
    assert (run.scaler is not None) == (amp == "fp16")
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    loss = train.train_step(run, np.arange(4))
    assert np.isfinite(loss)
    assert run.step == 1
    assert any(not torch.equal(before[k], v) for k, v in run.model.state_dict().items())


def test_channels_last_step_runs_on_the_cpu():
    run = small_run(dev.Hardware(torch.device("cpu"), channels_last=True), kind="heatmap", loss="mse",
                    head_channels=16)
    assert np.isfinite(train.train_step(run, np.arange(4)))


def test_checkpoint_loads_on_the_device_asked_for(tmp_path):
    run = small_run(CPU)
    meta = {"arch": "resnet18", "kind": "regression", "codec": run.codec.settings(),
            "input": {"size": SIZE, "resize": "letterbox"}, "landmarks": ["ofd_1", "ofd_2", "bpd_1", "bpd_2"],
            "head_channels": 128, "head_skips": True}
    path = save_checkpoint(tmp_path / "m.safetensors", run.model.state_dict(), meta)
    loaded = load_model(path, device=torch.device("cpu"))
    assert next(loaded.model.parameters()).device.type == "cpu"
    out = network_outputs(loaded.model, fake_prepared(2, seed=3)["image"])
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("model", [{}, {"kind": "heatmap", "loss": "mse", "head_channels": 32}],
                         ids=["regression", "heatmap"])
def test_default_path_equals_explicit_cpu_path_bit_for_bit(model):
    """``device: auto`` on a machine without GPU is the CPU path, with nothing added: the same
    weights, bit for bit, as an explicit cpu / no amp / no compile / contiguous run."""
    params = tiny_params(**model)
    del params["device"]
    explicit = tiny_params(**model)
    explicit["device"] = {"type": "cpu", "amp": "none", "compile": False, "channels_last": False}
    train_data, val_data = fake_prepared(12, seed=1), fake_prepared(4, seed=2)
    results = []
    for p in (params, explicit):
        train.seed_everything(int(p["seed"]), 1)
        results.append(train.train_model(p, "m", train_data, val_data, progress=False))
    (a, meta_a), (b, meta_b) = results
    assert meta_a == meta_b
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_on_the_cpu_and_auto_follow_the_cpus_bfloat16_support(monkeypatch, capsys):
    """bf16 is accepted on the CPU (emulated where oneDNN has no bfloat16 kernels, and the log says
    so); auto is bf16 exactly where it is native; mps refuses bf16."""
    gpus(monkeypatch, False, False)
    for native in (True, False):
        monkeypatch.setattr(dev, "native_bf16", lambda kind, native=native: native)
        assert dev.resolve({"type": "cpu", "amp": "bf16"}).amp == "bf16"
        assert ("emulated, slower" in capsys.readouterr().out) is not native
        assert dev.resolve({"type": "cpu", "amp": "auto"}).amp == ("bf16" if native else "none")
    with pytest.raises(ParamError, match=r"device.amp = 'bf16' is for CUDA and the CPU, but training runs on mps"):
        dev.resolve_amp("bf16", "mps")


@pytest.mark.slow
def test_bf16_training_on_the_cpu_is_deterministic_and_differs_from_float32():
    """Same seed, same bytes, twice with bf16 autocast on the CPU; not the float32 weights."""
    def weights(amp):
        run = small_run(dev.Hardware(torch.device("cpu"), amp=amp), kind="heatmap", loss="mse", head_channels=16)
        for _ in range(2):
            train.train_step(run, np.arange(4))
        return run.model.state_dict()
    a, b, f32 = weights("bf16"), weights("bf16"), weights("none")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], f32[k]) for k in a)

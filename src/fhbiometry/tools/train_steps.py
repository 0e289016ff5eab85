"""The timed training steps behind `fhbiometry bench-train` (tools/bench_train.py, its command
line and the meaning of every figure): the data path and the compute of ``train.train_step``
separated, their FLOPs counted, each variant applied, and the report's tables. Kept apart from the
command line so that `fhbiometry --help` imports no torch.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from fhbiometry.training import augment as aug
from fhbiometry.training import device as dev
from fhbiometry.training import loop as train
from fhbiometry.codecs import make_codec
from fhbiometry.models.networks import to_tensor
from fhbiometry.training.loop import seed_everything
from fhbiometry.config.schema import model_codec_params, model_config
from fhbiometry.core.store import load_npz
from fhbiometry.inference.onnx_backend import synthetic_frames
from fhbiometry.tools.machine import cuda_matmul_gflops, matmul_gflops

MATMUL_REPEATS = 5
TABLE_COLUMNS = ("model", "batch", "input", "frames/s", "data %", "step ms", "GFLOP/step", "fwd GFLOP",
                 "GFLOP/s", "% of matmul")
VARIANT_COLUMNS = ("model", "variant", "frames/s", "x baseline", "note")


# ---- inputs ---------------------------------------------------------------------------------
def synthetic_inputs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, S, S) uint8 frames (``onnx_backend.synthetic_frames``: a bright ring on speckle) and
    (n, 4, 2) landmarks of an ellipse centred in the image (OFD ends, then BPD ends), jittered a
    little: augmentation never has to redraw a geometry (the timings do not depend on the pixels)."""
    images = synthetic_frames(n, size, seed)
    rng = np.random.default_rng([seed, 1])
    c, a, b = (size - 1) / 2.0, 0.3 * size, 0.24 * size
    base = np.array([[c - a, c], [c + a, c], [c, c - b], [c, c + b]])
    points = base + rng.normal(0.0, 0.01 * size, size=(n, 4, 2))
    return images, points


def prepared_frames(path, size: int) -> tuple[np.ndarray, np.ndarray]:
    data = load_npz(path)
    images, points = np.asarray(data["image"]), np.asarray(data["points"], np.float64)
    keep = np.isfinite(points).all(axis=(1, 2))
    if images.shape[1:] != (size, size):
        raise ValueError(f"{path}: images are {images.shape[1:]}, the benchmark input is {size} px; "
                         "pass --size to match or prepare the data at this size")
    return images[keep], points[keep]


# ---- one model ------------------------------------------------------------------------------
def hardware(device: str, variant: str = "baseline") -> dev.Hardware:
    """Where and how a variant's steps run, as params ``device`` would say it (``device``: cpu,
    cuda or auto): bf16 autocast, channels-last memory or torch.compile for those variants."""
    return dev.resolve({"type": device, "amp": "bf16" if variant == "bf16" else "none",
                        "channels_last": variant == "channels_last", "compile": variant == "compile"})


def start(params: dict, name: str, batch: int, images, points, hw: dev.Hardware | None = None):
    """A seeded ``train.Run`` of ``models.<name>`` with batch size ``batch`` on ``hw`` (default the
    CPU), its model as the steps call it (``train.start_steps``: compiled when ``hw`` says so)."""
    cfg = model_config(params, name)
    cfg["batch_size"] = int(batch)
    codec = make_codec(cfg["kind"], int(params["input"]["size"]), model_codec_params(params, cfg), train.VALIDATION_DECODE)
    frames = {"image": images, "points": points}
    run = train.start_run(name, cfg, codec, bool(params["landmarks"]["canonical_order"]), int(params["seed"]),
                          frames, frames, hw)
    train.start_steps(run)
    return run


def data_path(run, idx) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``train.train_step`` does before the forward pass on the CPU: augment, encode, to
    tensors (still on the CPU)."""
    x_img, x_pts = aug.augment_batch(run.images[idx], run.points[idx], run.aug_rng, run.cfg["augment"],
                                     run.canonical)
    return to_tensor(x_img), torch.from_numpy(run.codec.encode(x_pts))


def compute(run, x: torch.Tensor, target: torch.Tensor) -> float:
    """What ``train.train_step`` does after the data path (its learning-rate schedule, the copy to
    the device and mixed precision included), one process."""
    cfg = run.cfg
    lr = cfg["lr"] * train.lr_factor(run.step, run.n_batches, cfg["epochs"], cfg["schedule"],
                                     cfg["warmup_epochs"])
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    x, target = dev.to_device(x, run.hw, image=True), dev.to_device(target, run.hw)
    with dev.autocast(run.hw):
        out = run.net(x)
    loss = run.loss_fn(out.float(), target)
    run.optimizer.zero_grad(set_to_none=True)
    train.backward_and_step(run, loss, len(target), len(target))
    run.step += 1
    return float(loss.detach())  # waits for the device: the step is done when it returns


def batches(n_frames: int, batch: int, count: int, seed: int) -> list[np.ndarray]:
    order = np.concatenate([np.random.default_rng([seed, i]).permutation(n_frames)
                            for i in range(count * batch // max(1, n_frames) + 1)])
    return [order[i * batch:(i + 1) * batch] for i in range(count)]


def count_flops(run, idx) -> tuple[float, float]:
    """(forward FLOPs, forward + loss + backward FLOPs) of one step on the batch ``idx``; the
    weights are not updated (gradients are dropped)."""
    x, target = data_path(run, idx)
    x, target = dev.to_device(x, run.hw, image=True), dev.to_device(target, run.hw)
    with FlopCounterMode(display=False) as fwd:
        out = run.model(x)
    with FlopCounterMode(display=False) as step:
        loss = run.loss_fn(run.model(x), target)
        loss.backward()
    del out
    run.optimizer.zero_grad(set_to_none=True)
    return float(fwd.get_total_flops()), float(step.get_total_flops())


def timed_steps(run, steps: int, warmup: int, seed: int) -> dict:
    """Mean data-path and compute seconds per step over ``steps`` steps after ``warmup`` steps."""
    data_s, compute_s, first_s = [], [], None
    for i, idx in enumerate(batches(len(run.points), run.cfg["batch_size"], warmup + steps, seed)):
        t0 = time.perf_counter()
        x, target = data_path(run, idx)
        t1 = time.perf_counter()
        compute(run, x, target)
        t2 = time.perf_counter()
        first_s = t2 - t0 if first_s is None else first_s
        if i >= warmup:
            data_s.append(t1 - t0)
            compute_s.append(t2 - t1)
    return {"data_s": float(np.mean(data_s)), "compute_s": float(np.mean(compute_s)), "first_step_s": first_s}


def bench_model(params: dict, name: str, frames, batch: int, steps: int, warmup: int,
                variant: str = "baseline", device: str = "cpu") -> dict:
    """Timings of ``models.<name>`` (one variant) on ``frames`` = (images, points), its steps on
    ``device`` (cpu, cuda, auto)."""
    seed = int(params["seed"])
    threads = 1 if variant == "threads1" else int(params["threads"])
    seed_everything(seed, threads)
    hw = hardware(device, variant)
    dev.deterministic(hw)
    run = start(params, name, batch, *frames, hw=hw)
    fwd_flops, step_flops = count_flops(run, np.arange(min(batch, len(run.points))))
    t = timed_steps(run, steps, warmup, seed)
    step_s = t["data_s"] + t["compute_s"]
    return {"model": name, "variant": variant, "device": str(hw.device), "amp": hw.amp, "threads": threads,
            "batch": int(batch),
            "input": int(params["input"]["size"]), "frames_per_s": batch / step_s, "step_s": step_s,
            "data_s": t["data_s"], "compute_s": t["compute_s"], "data_share": t["data_s"] / step_s,
            "first_step_s": t["first_step_s"], "forward_gflop": fwd_flops / 1e9, "step_gflop": step_flops / 1e9,
            "gflops": step_flops / 1e9 / t["compute_s"]}


def bench_variant(params: dict, name: str, frames, batch: int, steps: int, warmup: int, variant: str,
                  device: str = "cpu") -> dict:
    """``bench_model`` for one variant; a variant that fails is reported, not raised."""
    try:
        return bench_model(params, name, frames, batch, steps, warmup, variant, device)
    except Exception as err:  # noqa: BLE001 - e.g. torch.compile without a working compiler
        return {"model": name, "variant": variant, "error": f"{type(err).__name__}: {str(err)[:300]}"}


# ---- the machine's limit --------------------------------------------------------------------
def machine(hw: dev.Hardware | None = None) -> dict:
    """The CPU (and the GPU the steps run on, if one): names, torch, bf16 support, cores."""
    out = {"cpu": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
           "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "bf16_supported": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
           "cores": os.cpu_count()}
    if hw is not None and hw.device.type == "cuda":
        out.update(gpu=torch.cuda.get_device_name(hw.device), cuda=torch.version.cuda,
                   cudnn_tf32=bool(torch.backends.cudnn.allow_tf32))
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- report ---------------------------------------------------------------------------------
def markdown(columns, rows) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def table_row(result: dict, matmul: float) -> dict:
    return {"model": result["model"], "batch": result["batch"], "input": result["input"],
            "frames/s": f"{result['frames_per_s']:.1f}", "data %": f"{100 * result['data_share']:.1f}",
            "step ms": f"{1000 * result['step_s']:.0f}", "GFLOP/step": f"{result['step_gflop']:.2f}",
            "fwd GFLOP": f"{result['forward_gflop']:.2f}", "GFLOP/s": f"{result['gflops']:.1f}",
            "% of matmul": f"{100 * result['gflops'] / matmul:.0f}"}


def variant_row(result: dict, baseline: dict) -> dict:
    if "error" in result:
        return {"model": result["model"], "variant": result["variant"], "frames/s": "-", "x baseline": "-",
                "note": result["error"][:80]}
    note = f"first step {result['first_step_s']:.1f} s" if result["variant"] == "compile" else ""
    return {"model": result["model"], "variant": result["variant"], "frames/s": f"{result['frames_per_s']:.1f}",
            "x baseline": f"{result['frames_per_s'] / baseline['frames_per_s']:.2f}", "note": note}


def report(results: dict) -> str:
    matmul = results["matmul_gflops"]
    m = results["machine"]
    where = (f"GPU: {m['gpu']} (CUDA {m['cuda']}, convolutions TF32 {'on' if m['cudnn_tf32'] else 'off'}; the "
             f"data path on the CPU below), " if "gpu" in m else "")
    text = [f"{where}CPU: {m['cpu_model']} ({m['cpu_capability']}, bf16 {'yes' if m['bf16_supported'] else 'no'}), "
            f"torch {m['torch']}, {results['threads']} threads; float32 matmul "
            f"{results['matmul_n']}^3{' on the GPU' if 'gpu' in m else ''}: {matmul:.1f} GFLOP/s", "",
            markdown(TABLE_COLUMNS, [table_row(r, matmul) for r in results["baseline"]])]
    if results["variants"]:
        base = {r["model"]: r for r in results["baseline"]}
        text += ["", markdown(VARIANT_COLUMNS, [variant_row(r, base[r["model"]]) for r in results["variants"]])]
    return "\n".join(text)


def reference_gflops(hw: dev.Hardware, matmul_n: int, threads: int) -> float:
    """The float32 matmul figure of the device the steps run on."""
    if hw.device.type == "cuda":
        return cuda_matmul_gflops(matmul_n, MATMUL_REPEATS)["torch_gflops"]
    return matmul_gflops(matmul_n, threads, MATMUL_REPEATS)["torch_gflops"]


def measure(params: dict, models, batch: int, steps: int, warmup: int, variants, frames,
            matmul_n: int, device: str = "cpu") -> dict:
    """Every figure of the report, as one JSON-ready dict; the steps on ``device``."""
    threads = int(params["threads"])
    hw = hardware(device)
    results = {"machine": machine(hw), "device": str(hw.device), "threads": threads, "batch": batch,
               "steps": steps, "warmup": warmup, "matmul_n": matmul_n, "baseline": [],
               "matmul_gflops": reference_gflops(hw, matmul_n, threads), "variants": []}
    for name in models:
        results["baseline"].append(bench_model(params, name, frames, batch, steps, warmup, device=device))
        for variant in variants:
            results["variants"].append(bench_variant(params, name, frames, batch, steps, warmup, variant, device))
    seed_everything(int(params["seed"]), threads)
    return results

"""The timed training steps behind `fhbiometry bench-train` (tools/bench_train.py, its command
line and the meaning of every figure): the data path and the compute of ``train.train_step``
separated, their FLOPs counted, each variant applied, and the report's tables. Kept apart from the
command line so that `fhbiometry --help` imports no torch.
"""
from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from fhbiometry.training import augment as aug
from fhbiometry.training import loop as train
from fhbiometry.codecs import make_codec
from fhbiometry.models.networks import to_tensor
from fhbiometry.training.loop import seed_everything
from fhbiometry.config.schema import model_codec_params, model_config
from fhbiometry.core.store import load_npz
from fhbiometry.inference.onnx_backend import synthetic_frames
from fhbiometry.tools.machine import matmul_gflops

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
def start(params: dict, name: str, batch: int, images, points):
    """A seeded ``train.Run`` of ``models.<name>`` with batch size ``batch``."""
    cfg = model_config(params, name)
    cfg["batch_size"] = int(batch)
    codec = make_codec(cfg["kind"], int(params["input"]["size"]), model_codec_params(params, cfg), train.VALIDATION_DECODE)
    frames = {"image": images, "points": points}
    return train.start_run(name, cfg, codec, bool(params["landmarks"]["canonical_order"]), int(params["seed"]),
                           frames, frames)


def data_path(run, idx) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``train.train_step`` does before the forward pass: augment, encode, to tensors."""
    x_img, x_pts = aug.augment_batch(run.images[idx], run.points[idx], run.aug_rng, run.cfg["augment"],
                                     run.canonical)
    return to_tensor(x_img), torch.from_numpy(run.codec.encode(x_pts))


def compute(run, x: torch.Tensor, target: torch.Tensor, memory_format=None) -> float:
    """What ``train.train_step`` does after the data path (its learning-rate schedule included)."""
    cfg = run.cfg
    lr = cfg["lr"] * train.lr_factor(run.step, run.n_batches, cfg["epochs"], cfg["schedule"],
                                     cfg["warmup_epochs"])
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    if memory_format is not None:
        x = x.contiguous(memory_format=memory_format)
    loss = run.loss_fn(run.model(x), target)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), train.GRAD_CLIP)
    run.optimizer.step()
    run.step += 1
    return float(loss.detach())


def batches(n_frames: int, batch: int, count: int, seed: int) -> list[np.ndarray]:
    order = np.concatenate([np.random.default_rng([seed, i]).permutation(n_frames)
                            for i in range(count * batch // max(1, n_frames) + 1)])
    return [order[i * batch:(i + 1) * batch] for i in range(count)]


def count_flops(run, idx) -> tuple[float, float]:
    """(forward FLOPs, forward + loss + backward FLOPs) of one step on the batch ``idx``; the
    weights are not updated (gradients are dropped)."""
    x, target = data_path(run, idx)
    with FlopCounterMode(display=False) as fwd:
        out = run.model(x)
    with FlopCounterMode(display=False) as step:
        loss = run.loss_fn(run.model(x), target)
        loss.backward()
    del out
    run.optimizer.zero_grad(set_to_none=True)
    return float(fwd.get_total_flops()), float(step.get_total_flops())


def timed_steps(run, steps: int, warmup: int, seed: int, variant: str) -> dict:
    """Mean data-path and compute seconds per step over ``steps`` steps after ``warmup`` steps."""
    memory_format = torch.channels_last if variant == "channels_last" else None
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16" else contextlib.nullcontext()
    data_s, compute_s, first_s = [], [], None
    for i, idx in enumerate(batches(len(run.points), run.cfg["batch_size"], warmup + steps, seed)):
        t0 = time.perf_counter()
        x, target = data_path(run, idx)
        t1 = time.perf_counter()
        with autocast:
            compute(run, x, target, memory_format)
        t2 = time.perf_counter()
        first_s = t2 - t0 if first_s is None else first_s
        if i >= warmup:
            data_s.append(t1 - t0)
            compute_s.append(t2 - t1)
    return {"data_s": float(np.mean(data_s)), "compute_s": float(np.mean(compute_s)), "first_step_s": first_s}


def apply_variant(run, variant: str) -> None:
    if variant == "channels_last":
        run.model = run.model.to(memory_format=torch.channels_last)
    elif variant == "compile":
        run.model = torch.compile(run.model)


def bench_model(params: dict, name: str, frames, batch: int, steps: int, warmup: int,
                variant: str = "baseline") -> dict:
    """Timings of ``models.<name>`` (one variant) on ``frames`` = (images, points)."""
    seed = int(params["seed"])
    threads = 1 if variant == "threads1" else int(params["threads"])
    seed_everything(seed, threads)
    run = start(params, name, batch, *frames)
    fwd_flops, step_flops = count_flops(run, np.arange(min(batch, len(run.points))))
    apply_variant(run, variant)
    t = timed_steps(run, steps, warmup, seed, variant)
    step_s = t["data_s"] + t["compute_s"]
    return {"model": name, "variant": variant, "threads": threads, "batch": int(batch),
            "input": int(params["input"]["size"]), "frames_per_s": batch / step_s, "step_s": step_s,
            "data_s": t["data_s"], "compute_s": t["compute_s"], "data_share": t["data_s"] / step_s,
            "first_step_s": t["first_step_s"], "forward_gflop": fwd_flops / 1e9, "step_gflop": step_flops / 1e9,
            "gflops": step_flops / 1e9 / t["compute_s"]}


def bench_variant(params: dict, name: str, frames, batch: int, steps: int, warmup: int, variant: str) -> dict:
    """``bench_model`` for one variant; a variant that fails is reported, not raised."""
    try:
        return bench_model(params, name, frames, batch, steps, warmup, variant)
    except Exception as err:  # noqa: BLE001 - e.g. torch.compile without a working compiler
        return {"model": name, "variant": variant, "error": f"{type(err).__name__}: {str(err)[:300]}"}


# ---- the machine's limit --------------------------------------------------------------------
def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
            "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_supported": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
            "cores": os.cpu_count()}


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
    text = [f"CPU: {m['cpu_model']} ({m['cpu_capability']}, bf16 {'yes' if m['bf16_supported'] else 'no'}), "
            f"torch {m['torch']}, {results['threads']} threads; float32 matmul "
            f"{results['matmul_n']}^3: {matmul:.1f} GFLOP/s", "",
            markdown(TABLE_COLUMNS, [table_row(r, matmul) for r in results["baseline"]])]
    if results["variants"]:
        base = {r["model"]: r for r in results["baseline"]}
        text += ["", markdown(VARIANT_COLUMNS, [variant_row(r, base[r["model"]]) for r in results["variants"]])]
    return "\n".join(text)


def measure(params: dict, models, batch: int, steps: int, warmup: int, variants, frames,
            matmul_n: int) -> dict:
    """Every figure of the report, as one JSON-ready dict."""
    threads = int(params["threads"])
    results = {"machine": machine(), "threads": threads, "batch": batch, "steps": steps, "warmup": warmup,
               "matmul_n": matmul_n, "baseline": [],
               "matmul_gflops": matmul_gflops(matmul_n, threads, MATMUL_REPEATS)["torch_gflops"],
               "variants": []}
    for name in models:
        results["baseline"].append(bench_model(params, name, frames, batch, steps, warmup))
        for variant in variants:
            results["variants"].append(bench_variant(params, name, frames, batch, steps, warmup, variant))
    seed_everything(int(params["seed"]), threads)
    return results

"""Measure training throughput per model against the machine's own float32 matmul speed.

For each model of params.yaml (at ``input.size`` unless ``--size``) it times training steps as
``train.train_step`` does them, split into the data path (``augment.augment_batch`` +
``codec.encode`` + ``models.to_tensor``) and the compute (forward, loss, backward, gradient
clipping, optimizer step), and reports:

* frames/s: batch size / (data + compute seconds) per step;
* data %: the share of the step spent in the data path;
* GFLOP/step: the FLOPs of one training step counted by torch.utils.flop_counter.FlopCounterMode
  around forward, loss and backward (matmul and convolution families, 2 FLOPs per
  multiply-add; the optimizer's element-wise work is not counted); ``fwd`` is the forward alone
  (rule of thumb: step = 3 x forward, the backward computing input and weight gradients);
* GFLOP/s: GFLOP/step / compute seconds, and its share of the float32 matmul figure: the best of
  several 2048 x 2048 @ 2048 x 2048 ``torch.mm`` on the same threads (``machine.matmul_gflops``), measured in the same run.

The images are synthetic (``synthetic_inputs``: a ring on speckle, a plausible head's four landmarks) unless ``--data`` names a
prepared split (e.g. data/prepared/train.npz): the timings do not depend on the pixel values.
``--variants`` also times each model with channels_last, torch.compile, bf16 autocast and one
thread, and reports each one's frames/s as a ratio to the baseline. Run it on a quiet machine:
other processes on the same cores change every figure.
"""
from __future__ import annotations

import argparse
import contextlib
import json
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
from fhbiometry.config.params import load_params
from fhbiometry.training.loop import seed_everything
from fhbiometry.config.schema import model_config
from fhbiometry.core.store import load_npz
from fhbiometry.inference.onnx_backend import synthetic_frames
from fhbiometry.tools.common import model_names
from fhbiometry.tools.machine import matmul_gflops

SUMMARY = "measure training throughput against a matmul"
EXAMPLES = """\
Examples:
  fhbiometry bench-train --out bench_train.json               # the four models, batch 16
  fhbiometry bench-train --models heatmap --steps 20 --variants all
  fhbiometry bench-train --models heatmap --size 64 --steps 2 --batch 4
"""
VARIANTS = ("channels_last", "compile", "bf16", "threads1")
MATMUL_N = 2048
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
    codec = make_codec(cfg["kind"], int(params["input"]["size"]), params["codec"], train.VALIDATION_DECODE)
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
            matmul_n: int = MATMUL_N) -> dict:
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


def variant_list(text: str) -> list[str]:
    if not text:
        return []
    names = list(VARIANTS) if text == "all" else [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {list(VARIANTS)} or 'all'")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--models", nargs="+", help="models of params.yaml `models` (default: all)")
    parser.add_argument("--batch", type=int, default=16, help="frames per step (default: 16)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model (default: 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: params `threads`)")
    parser.add_argument("--size", type=int, help="input size in pixels (default: params `input.size`)")
    parser.add_argument("--data", help="a prepared split, e.g. data/prepared/train.npz (default: synthetic)")
    parser.add_argument("--variants", default="", help=f"comma list of {', '.join(VARIANTS)}, or 'all'")
    parser.add_argument("--matmul-size", type=int, default=MATMUL_N,
                        help=f"n of the n x n float32 matmul reference (default: {MATMUL_N})")
    parser.add_argument("--out", help="write every figure as JSON here")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.threads:
        params["threads"] = args.threads
    if args.size:
        params["input"]["size"] = args.size
    models = args.models or model_names(params)
    missing = [m for m in models if m not in params["models"]]
    if missing:
        raise SystemExit(f"--models: {missing} not in {args.params} `models`; choose from {model_names(params)}")
    size = int(params["input"]["size"])
    frames = (prepared_frames(args.data, size) if args.data
              else synthetic_inputs(max(4 * args.batch, 64), size, int(params["seed"])))
    results = measure(params, models, args.batch, args.steps, args.warmup, variant_list(args.variants), frames,
                      args.matmul_size)
    print(report(results), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"bench-train: wrote {args.out}")
    return 0

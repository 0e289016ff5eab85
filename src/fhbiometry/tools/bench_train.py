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
import json
from pathlib import Path

from fhbiometry.config.params import load_params
from fhbiometry.core.choices import DEVICE_TYPES
from fhbiometry.tools.common import model_names

SUMMARY = "measure training throughput against a matmul"
EXAMPLES = """\
Examples:
  fhbiometry bench-train --out bench_train.json               # the four models, batch 16
  fhbiometry bench-train --models heatmap --steps 20 --variants all
  fhbiometry bench-train --models heatmap --size 64 --steps 2 --batch 4
  fhbiometry bench-train --device cuda --batch 64 --variants bf16,channels_last,compile
"""
VARIANTS = ("channels_last", "compile", "bf16", "threads1")
BENCH_DEVICES = tuple(t for t in DEVICE_TYPES if t != "mps")  # the matmul reference runs on the CPU or CUDA
MATMUL_N = 2048


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
    parser.add_argument("--device", default="cpu", choices=BENCH_DEVICES,
                        help="where the steps run (default: cpu; the data path stays on the CPU)")
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
    from fhbiometry.tools import train_steps  # lazy: torch, kept out of `fhbiometry --help`

    import torch  # lazy: only where the benchmark runs

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here; use --device cpu (or auto)")

    size = int(params["input"]["size"])
    frames = (train_steps.prepared_frames(args.data, size) if args.data
              else train_steps.synthetic_inputs(max(4 * args.batch, 64), size, int(params["seed"])))
    results = train_steps.measure(params, models, args.batch, args.steps, args.warmup, variant_list(args.variants),
                                   frames, args.matmul_size, args.device)
    print(train_steps.report(results), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"bench-train: wrote {args.out}")
    return 0

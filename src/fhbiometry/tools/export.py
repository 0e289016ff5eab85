"""Write a trained model as ONNX for ONNX Runtime (`predict --backend onnx`, docs/speed.md).

The ONNX model takes the letterboxed frames as (N, S, S) uint8 (normalised inside the graph) and
returns the network's raw outputs; the batch axis is dynamic. The checkpoint's metadata (arch,
kind, codec settings, letterbox, landmarks) goes into the ONNX metadata_props (key `fhbiometry`,
JSON, with the opset), so the .onnx file alone is enough to predict. `--quantize int8` also writes
a statically quantized copy (`<out stem>.int8.onnx`), calibrated on the frames of `--calibration`
(default data/prepared/val.npz) or, when that file is absent, on synthetic frames.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fhbiometry.core.choices import DEFAULT_OPSET
from fhbiometry.refinement.settings import coarse_checkpoint

SUMMARY = "export a checkpoint as ONNX (optionally int8)"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry export --model models/heatmap.safetensors --out models/heatmap.onnx
  fhbiometry export --model models/heatmap.safetensors --out models/heatmap.onnx --quantize int8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=Path("models/heatmap.safetensors"),
                        help="checkpoint (.safetensors) to export (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="ONNX file to write (default: the checkpoint's path with .onnx)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none",
                        help="also write a quantized copy <out stem>.int8.onnx (default: %(default)s)")
    parser.add_argument("--calibration", type=Path, default=Path("data/prepared/val.npz"),
                        help="prepared frames for int8 calibration; synthetic frames if absent "
                             "(default: %(default)s)")
    parser.add_argument("--calibration-frames", type=int, default=64,
                        help="how many calibration frames (default: %(default)s)")


def int8_path(out: Path) -> Path:
    return out.with_name(out.stem + ".int8.onnx")


def run(args: argparse.Namespace) -> int:
    from fhbiometry.inference.runner import load_model  # lazy: torch kept out of `fhbiometry --help`
    from fhbiometry.inference.onnx_backend import calibration_frames, export_onnx, quantize_int8  # lazy: torch and onnx kept out of `fhbiometry --help`

    out = args.out or args.model.with_suffix(".onnx")
    loaded = load_model(args.model, fix=f"train it first (`dvc repro train@{args.model.stem}`)")
    export_onnx(loaded.model, loaded.meta, out, opset=args.opset)
    print(f"export: wrote {out} (opset {args.opset}, input uint8 (N, {loaded.letterbox.size}, "
          f"{loaded.letterbox.size}), dynamic batch)")
    if "refine" in loaded.meta:   # a refinement: `predict --backend onnx` runs its coarse model's ONNX first
        coarse = coarse_checkpoint(args.model, loaded.meta)
        print(f"export: {args.model} is a refinement (its metadata `refine` goes with it); export its coarse "
              f"model too: `fhbiometry export --model {coarse}`")
    if args.quantize == "int8":
        frames, source = calibration_frames(args.calibration, loaded.letterbox.size, args.calibration_frames)
        quantize_int8(out, int8_path(out), frames)
        print(f"export: wrote {int8_path(out)} (static int8, calibrated on {len(frames)} frames of {source})")
    return 0

"""Measure whether a model measures heads too small or too large, split by split.

Predicts the prepared arrays of each split (``data/prepared/<split>.npz``: the letterboxed frames
and their labels) with a checkpoint and prints, over the frames whose label the QC policy accepts,
the mean difference of each diameter (predicted - labelled, mm) and the median ratio labelled /
predicted (``calibration.estimate_factors``: the factor ``decode.size_calibration: validation``
would apply). Decoded with the checkpoint's own codec settings (params ``decode.method`` is not
read); ``--flip-test`` as ``decode.flip_test: true``. A bias that is there on the training frames too is learned, not a failure to
generalise (docs/hc18.md, "Beyond the training range").
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fhbiometry.core.geometry import diameters, to_mm
from fhbiometry.core.letterbox import to_original
from fhbiometry.core.store import load_npz
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.evaluation.evaluate import size_factors

SUMMARY = "a model's diameter bias on each prepared split"
EXAMPLES = """\
Examples:
  fhbiometry size-bias                                           # models/heatmap.safetensors on train, val, test
  fhbiometry size-bias --model models/resnet18.safetensors --splits val test --flip-test
"""


def split_bias(loaded, data: dict, flip_test: bool) -> dict:
    """{"frames", "ofd_bias_mm", "bpd_bias_mm", "ofd_factor", "bpd_factor"} of one split's arrays."""
    import torch  # lazy: torch kept out of `fhbiometry --help`

    from fhbiometry.inference.runner import TorchBackend, predict_frames  # lazy: torch kept out of `fhbiometry --help`

    with torch.no_grad():
        frames = predict_frames(TorchBackend(loaded.model), loaded.codec, np.asarray(data["image"]),
                                flip=flip_test, flip_test=flip_test)
    factors = size_factors("validation", frames, data)
    use = accepted_rows(data)
    pred = to_original(frames.points, np.asarray(data["transform"], np.float64))[use]
    true = np.asarray(data["points_orig"], np.float64)[use]
    spacing = np.asarray(data["spacing_mm"], np.float64)[use]
    err = to_mm(diameters(pred), spacing) - to_mm(diameters(true), spacing)
    return {"frames": int(use.sum()), "ofd_bias_mm": float(np.nanmean(err[:, 0])),
            "bpd_bias_mm": float(np.nanmean(err[:, 1])), "ofd_factor": factors["ofd"], "bpd_factor": factors["bpd"]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="models/heatmap.safetensors", help="the checkpoint")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="prepared splits")
    parser.add_argument("--prepared", default="data/prepared", help="folder of <split>.npz")
    parser.add_argument("--flip-test", action="store_true", help="predict as decode.flip_test: true does")
    parser.add_argument("--json", default=None, help="also write the figures to this file")


def run(args: argparse.Namespace) -> int:
    import torch  # lazy: torch kept out of `fhbiometry --help`

    from fhbiometry.inference.runner import load_model  # lazy: torch kept out of `fhbiometry --help`

    torch.set_num_threads(max(1, torch.get_num_threads()))
    loaded = load_model(Path(args.model), fix="give a checkpoint written by `dvc repro train@<model>`")
    out = {}
    print("| split | frames | OFD bias mm | BPD bias mm | OFD factor | BPD factor |")
    print("|---|---|---|---|---|---|")
    for split in args.splits:
        path = Path(args.prepared) / f"{split}.npz"
        if not path.is_file():
            print(f"size-bias: {path} not found: run `dvc repro prepare` first, or give --prepared")
            return 2
        b = out[split] = split_bias(loaded, load_npz(path), args.flip_test)
        print(f"| {split} | {b['frames']} | {b['ofd_bias_mm']:+.2f} | {b['bpd_bias_mm']:+.2f} | "
              f"{b['ofd_factor']:.4f} | {b['bpd_factor']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(args.model), "flip_test": args.flip_test, **out},
                                              indent=2, sort_keys=True) + "\n")
    return 0

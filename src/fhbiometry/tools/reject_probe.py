"""Measure how often `fhbiometry predict` rejects frames that hold no fetal head.

Runs predict's whole frame pipeline (readers, measured area, network and its mirror, confidence,
plausibility checks, cine aggregation: ``fhbiometry.measure.api.measure``) on pydicom's own
ultrasound example files (examples_palette.dcm, examples_ybr_color.dcm: a 30-frame JPEG cine,
examples_jpeg2k.dcm; those the installed decoders cannot read are listed as unreadable) and on
generated non-heads, one multi-frame DICOM cine each (blank, uniform grey, Gaussian noise,
speckle noise, a head cropped to a quarter, a text-only screen; fhbiometry.measure.probe). Prints
per input: frames, frames accepted, the share rejected and its cine's status, then the totals and
the goal of issue 19 (>= 95 % of non-head frames rejected, no cine measured). --out writes the
table as CSV and the totals as JSON. Exit status: 0 goal met, 1 goal not met, 2 unusable options.
See docs/predict.md (trust section).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import yaml

from fhbiometry.config.params import ParamError
from fhbiometry.measure.api import measure
from fhbiometry.measure.probe import probe_inputs, probe_table, probe_totals
from fhbiometry.measure.settings import DEFAULT_MODEL, params_file
from fhbiometry.config.checkpoint_meta import CheckpointError

SUMMARY = "share of non-head frames predict rejects"
EXAMPLES = """\
Examples:
  fhbiometry reject-probe                                          # models/heatmap.safetensors
  fhbiometry reject-probe --model ../main/models/heatmap.safetensors --frames 8 --out probe/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint (default: %(default)s)")
    parser.add_argument("--params", default=None, metavar="YAML", help="as for `fhbiometry predict`")
    parser.add_argument("--metrics", default=None, metavar="JSON", help="as for `fhbiometry predict`")
    parser.add_argument("--frames", type=int, default=8, metavar="N", help="frames per generated cine (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated frames (default: 0)")
    parser.add_argument("--out", default=None, metavar="DIR", help="write probe.csv and probe.json here")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    if args.frames < 1:
        print(f"error: --frames {args.frames} must be at least 1", file=sys.stderr)
        return 2
    try:
        params = yaml.safe_load(params_file(args.params, args.model).read_text())
        with tempfile.TemporaryDirectory() as tmp:
            inputs = probe_inputs(tmp, args.frames, params, args.seed)
            result = measure([p for p, _ in inputs], args.model, params=args.params, metrics=args.metrics,
                             overlays="none")
    except (CheckpointError, ParamError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = probe_table(inputs, result)
    totals = probe_totals(table)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\n{totals['frames']} non-head frame(s): {100 * totals['rejected_share']:.1f} % rejected "
          f"(goal >= 95 %); {totals['cines_measured']} cine(s) measured (goal 0); "
          f"{totals['unreadable']} input(s) unreadable; confidence threshold {result.settings.threshold:.3f} "
          f"({result.settings.threshold_source}); goal {'MET' if totals['goal_met'] else 'NOT MET'}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(args.out) / "probe.csv", index=False)
        (Path(args.out) / "probe.json").write_text(json.dumps({"model": args.model, **totals}, indent=2) + "\n")
    return 0 if totals["goal_met"] else 1

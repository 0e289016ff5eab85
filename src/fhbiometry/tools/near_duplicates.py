"""Measure the near-duplicate check on a data set: for each threshold (bits of the 64-bit dHash),
the share of consecutive frames of one subject found as near duplicates and the number of
different-subject pairs flagged (docs/leakage.md).

Reads the outputs of the `extract_frames` and `qc` stages (run the pipeline, or `dvc repro qc`,
first), for the default data set or any other `data.raw_dir`.
"""
from __future__ import annotations

import argparse

from fhbiometry.data.neardup import measure_files

SUMMARY = "measure the near-duplicate threshold on a data set"
EXAMPLES = """\
Examples:
  fhbiometry near-duplicates                                   # data/frames + data/qc of this repo
  fhbiometry near-duplicates --thresholds 0 2 4 6 8 --labels data/qc/labels.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", default="data/frames/frames.npz", help="frames archive (extract_frames)")
    parser.add_argument("--labels", default="data/qc/labels.csv", help="label table (qc)")
    parser.add_argument("--thresholds", type=int, nargs="+", default=[0, 2, 3, 4, 5, 6, 8, 10, 12, 14],
                        help="Hamming distances to measure")


def run(args: argparse.Namespace) -> int:

    print(measure_files(args.frames, args.labels, tuple(args.thresholds)).to_string(index=False))
    return 0

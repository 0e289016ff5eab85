"""Heatmap against contour kind on one prepared data set, same params, seed and budget.

A short CPU comparison (docs/architecture.md, "The contour codec"): copies a prepared split
(data/prepared/{train,val,test}.npz, e.g. a trained default pipeline's) into ``--out``, trains the
default `heatmap` model and the same model as kind ``contour`` for ``--epochs`` epochs (``--models``:
only those now, the others' results already in ``--out`` kept) through the
real stages (``training.loop.run``, ``evaluation.evaluate.run``) and prints their test figures:

    python tests/contour_compare.py --prepared data/prepared --out /tmp/contour-compare --epochs 4

``--round-trip``: instead, the codec's encode -> decode errors on exact synthetic ellipses (the
cases of tests/test_codec_contour.py), the largest landmark error per case in input pixels:

    python tests/contour_compare.py --round-trip
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

import yaml

from fhbiometry.config.params import load_params
from fhbiometry.config.schema import validate_params

REPO = Path(__file__).resolve().parents[1]


def row(m: dict, minutes) -> dict:
    """The figures compared: MRE, BPD / OFD / HC errors, worst-diameter error in original px,
    the share of frames off by > 5 % of a diameter, and the contour section's three fits."""
    w, r = m["worst_diameter_error"]["original_px"], m["relative_error"]
    out = {"mre_mm": m["mre_mm"], "mre_px": m["mre_px"], "bpd_mae_mm": m["bpd"]["mae_mm"],
           "bpd_p95_mm": m["bpd"]["p95_mm"], "ofd_mae_mm": m["ofd"]["mae_mm"], "ofd_p95_mm": m["ofd"]["p95_mm"],
           "worst_px_mean": w["mean"], "worst_px_median": w["median"],
           "over_5pct_frames": r["over_limit_frames"], "train_min": minutes}
    out.update({f"contour_{s}_mre_mm": v["mre_mm"] for s, v in m.get("contour", {}).items()})
    return out


def profile(epochs: int, threads: int, size: int) -> dict:
    """params.yaml with two models, the default heatmap model and the same as kind contour, for
    ``size`` px inputs (the prepared split's)."""
    params = load_params(REPO / "params.yaml")
    params["input"]["size"] = size
    heatmap = {**params["models"]["heatmap"], "epochs": epochs}
    params["models"] = {"heatmap": heatmap, "contour": {**copy.deepcopy(heatmap), "kind": "contour"}}
    params["threads"] = threads
    return validate_params(params)


def round_trip() -> dict:
    """Largest landmark error (input px) of encode -> decode per input size, rotation, gap, source."""
    import numpy as np

    from fhbiometry.codecs import make_codec
    from fhbiometry.core.geometry import pair_invariant_errors
    from test_codec_contour import CODEC, cut_sector, heads

    out = {}
    for size in (64, 128):
        codec = make_codec("contour", size, CODEC if size > 64 else {**CODEC, "sigma": 1.5})
        for rotate in (False, True):
            pts = heads(12, size, rotate)
            clean = codec.encode(pts)
            for gap, targets in (("no gap", clean), ("30% gap", cut_sector(clean, pts, codec))):
                for source in ("both", "contour", "landmarks"):
                    err = pair_invariant_errors(codec.decode(targets, source=source).points, pts)
                    key = f"{size}px {'rotated' if rotate else 'axis-aligned'} {gap} {source}"
                    out[key] = round(float(np.max(err)), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--round-trip", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["heatmap", "contour"], choices=["heatmap", "contour"],
                        help="the models to train now (the others' results in --out are reported as they are)")
    args = parser.parse_args()
    if args.round_trip:
        print(json.dumps(round_trip(), indent=1))
        return
    if args.prepared is None or args.out is None:
        parser.error("--prepared and --out are required (or --round-trip)")
    import torch

    from fhbiometry.evaluation import evaluate as ev
    from fhbiometry.training import loop as train

    import numpy as np

    size = int(np.load(args.prepared / "train.npz")["image"].shape[-1])
    params = profile(args.epochs, args.threads, size)
    (args.out / "data/prepared").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        target = args.out / f"data/prepared/{split}.npz"
        if not target.is_file():   # kept: a later --models run reuses the earlier models' results
            shutil.copy(args.prepared / f"{split}.npz", target)
    (args.out / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    old = args.out / "minutes.json"
    minutes = json.loads(old.read_text()) if old.is_file() else {}
    torch.set_num_threads(args.threads)
    for name in args.models:
        started = time.perf_counter()
        train.run(params, name, root=args.out, progress=False, resumable=False)
        minutes[name] = round((time.perf_counter() - started) / 60, 2)
        ev.run(params, name, root=args.out)
    rows = {name: row(json.loads((args.out / f"metrics/eval/{name}.json").read_text()), minutes.get(name))
            for name in params["models"] if (args.out / f"metrics/eval/{name}.json").is_file()}
    print(json.dumps(rows, indent=1))
    (args.out / "compare.json").write_text(json.dumps(rows, indent=1))
    (args.out / "minutes.json").write_text(json.dumps(minutes, indent=1))


if __name__ == "__main__":
    main()

"""Stage `prepare`: every frame letterboxed into the network input, one archive per split.

Reads data/frames/frames.npz, data/qc/labels.csv, data/split/split.csv; writes
data/prepared/{train,val,test}.npz and meta.json (docs/architecture.md, contract 5).
"""
import shutil

import pandas as pd

from fhbiometry.core.letterbox import Letterbox
from fhbiometry.config.params import load_params, run_stage
from fhbiometry.config.paths import Paths
from fhbiometry.data.prepare import prepare_all
from fhbiometry.core.store import load_npz, save_npz, write_json

PARAMS = ("input", "landmarks")


def main() -> None:
    params, paths = load_params(only=PARAMS), Paths()
    labels = pd.read_csv(paths.labels, dtype={"frame_id": str, "subject_id": str})
    split = pd.read_csv(paths.split, dtype={"frame_id": str, "subject_id": str})
    print(f"prepare: loading frames for {len(split)} split frames")
    frames = load_npz(paths.frames)
    arrays, meta = prepare_all(frames, labels, split, Letterbox(**params["input"]),
                               canonical=params["landmarks"]["canonical_order"])
    shutil.rmtree(paths.prepared_dir, ignore_errors=True)
    for name, data in arrays.items():
        save_npz(paths.prepared(name), data)
        print(f"prepare: {name}: {len(data['frame_id'])} frames -> {paths.prepared(name)}")
    write_json(paths.prepared_dir / "meta.json", meta)


if __name__ == "__main__":
    run_stage(main)

"""Stage `heatmaps`: letterboxed network inputs and Gaussian heatmap targets per split."""
from pathlib import Path
import shutil

import pandas as pd

from fhbiometry.codec import Codec
from fhbiometry.params import load_params
from fhbiometry.prepare import prepare_all
from fhbiometry.store import load_npz, save_npz, write_json

OUT = Path("data/prepared")


def main() -> None:
    params = load_params()
    codec = Codec.from_params(params["codec"])
    labels = pd.read_csv("data/qc/labels.csv", dtype={"frame_id": str, "subject_id": str})
    split = pd.read_csv("data/split/split.csv", dtype={"frame_id": str, "subject_id": str})
    print(f"heatmaps: loading frames for {len(split)} split frames")
    frames = load_npz("data/frames/frames.npz")
    arrays, meta = prepare_all(frames, labels, split, codec,
                               canonical=bool(params["codec"].get("canonical_order", True)))
    shutil.rmtree(OUT, ignore_errors=True)
    for name, data in arrays.items():
        save_npz(OUT / f"{name}.npz", data)
        print(f"heatmaps: {name}: {len(data['frame_id'])} frames -> {OUT / (name + '.npz')}")
    write_json(OUT / "meta.json", meta)


if __name__ == "__main__":
    main()

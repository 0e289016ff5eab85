"""Stage `split`: subject-grouped train/val/test split of the labelled frames, and the
near-duplicate frame pairs that cross it."""
import pandas as pd

from fhbiometry import neardup
from fhbiometry.params import get, load_params
from fhbiometry.split import make_split
from fhbiometry.store import load_npz, write_csv, write_json


def main() -> None:
    params = load_params()
    labels = pd.read_csv("data/qc/labels.csv", dtype={"frame_id": str, "subject_id": str})
    table, summary = make_split(labels, get(params, "split.fractions"), int(get(params, "seed")),
                                bool(get(params, "split.grouped")), str(get(params, "qc.policy")))
    summary["near_duplicates"] = neardup.cross_split_report(
        table, load_npz("data/frames/frames.npz"), get(params, "split.near_duplicates"))
    write_csv(table, "data/split/split.csv")
    write_json("metrics/split.json", summary)
    dup = summary["near_duplicates"]
    print("split: " + ", ".join(f"{k} {summary[k]['frames']} frames / {summary[k]['subjects']} subjects"
                                for k in ("train", "val", "test"))
          + f"; subjects in two splits: {summary['subject_overlap']}"
          + f"; near-duplicate pairs across splits: {dup['cross_split_total']}")
    neardup.enforce(dup)


if __name__ == "__main__":
    main()

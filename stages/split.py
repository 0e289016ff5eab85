"""Stage `split`: subject-grouped train/val/test split of the labelled frames."""
import pandas as pd

from fhbiometry.params import get, load_params
from fhbiometry.split import make_split
from fhbiometry.store import write_csv, write_json


def main() -> None:
    params = load_params()
    labels = pd.read_csv("data/qc/labels.csv", dtype={"frame_id": str, "subject_id": str})
    table, summary = make_split(labels, get(params, "split.fractions"), int(get(params, "seed")),
                                bool(get(params, "split.grouped")))
    write_csv(table, "data/split/split.csv")
    write_json("metrics/split.json", summary)
    print("split: " + ", ".join(f"{k} {summary[k]['frames']} frames / {summary[k]['subjects']} subjects"
                                for k in ("train", "val", "test"))
          + f"; subjects in two splits: {summary['subject_overlap']}")


if __name__ == "__main__":
    main()

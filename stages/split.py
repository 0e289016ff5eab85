"""Stage `split`: subject-grouped train/val/test split of the labelled frames."""
import pandas as pd

from fhbiometry.params import load_params
from fhbiometry.paths import Paths
from fhbiometry.split import make_split
from fhbiometry.store import write_csv, write_json

PARAMS = ("seed", "split")


def main() -> None:
    params, paths = load_params(only=PARAMS), Paths()
    labels = pd.read_csv(paths.labels, dtype={"frame_id": str, "subject_id": str})
    table, summary = make_split(labels, params["split"]["fractions"], params["seed"], params["split"]["grouped"])
    write_csv(table, paths.split)
    write_json(paths.split_metrics, summary)
    print("split: " + ", ".join(f"{k} {summary[k]['frames']} frames / {summary[k]['subjects']} subjects"
                                for k in ("train", "val", "test"))
          + f"; subjects in two splits: {summary['subject_overlap']}")


if __name__ == "__main__":
    main()

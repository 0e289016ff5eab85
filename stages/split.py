"""Stage `split`: subject-grouped train/val/test split of the labelled frames, and the
near-duplicate frame pairs that cross it."""
import pandas as pd

from fhbiometry.data import neardup
from fhbiometry.config.params import load_params, run_stage
from fhbiometry.config.paths import Paths
from fhbiometry.data.split import make_split
from fhbiometry.core.store import load_npz, write_csv, write_json

PARAMS = ("seed", "split", "qc.policy")


def main() -> None:
    params, paths = load_params(only=PARAMS), Paths()
    cfg = params["split"]
    labels = pd.read_csv(paths.labels, dtype={"frame_id": str, "subject_id": str})
    table, summary = make_split(labels, cfg["fractions"], params["seed"], cfg["grouped"], params["qc"]["policy"],
                                method=cfg["method"], head_size=cfg["head_size"])
    summary["near_duplicates"] = neardup.cross_split_report(table, load_npz(paths.frames), cfg["near_duplicates"])
    write_csv(table, paths.split)
    write_json(paths.split_metrics, summary)
    dup = summary["near_duplicates"]
    print("split: " + ", ".join(f"{k} {summary[k]['frames']} frames / {summary[k]['subjects']} subjects"
                                for k in ("train", "val", "test"))
          + f"; subjects in two splits: {summary['subject_overlap']}"
          + f"; near-duplicate pairs across splits: {dup['cross_split_total']}")
    neardup.enforce(dup)


if __name__ == "__main__":
    run_stage(main)

"""Stage `evaluate_refine@<name>`: a refinement's test predictions and metrics in px and mm.

    python stages/evaluate_refine.py --name heatmap_crop

Reads models/<name>.safetensors, data/refine/<name>/{val,test}.npz and data/frames/frames.npz (a
second pass cuts new crops); writes results/<name>/predictions.csv and metrics/eval/<name>.json.
"""
import argparse

from fhbiometry.config.params import load_params, run_stage
from fhbiometry.refinement.evaluate_stage import run_evaluate

PARAMS = ("threads", "data.label_source", "qc", "decode", "evaluate", "refine.{model}", "intervals")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="a key of `refine` in params.yaml")
    args = parser.parse_args()
    run_evaluate(load_params(only=PARAMS, model=args.name), args.name)


if __name__ == "__main__":
    run_stage(main)

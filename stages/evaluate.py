"""Stage `evaluate@<model>`: test-set predictions and metrics in px and mm.

    python stages/evaluate.py --model resnet18

Reads models/<model>.safetensors and data/prepared/test.npz; writes results/<model>/predictions.csv
and metrics/eval/<model>.json.
"""
import argparse

from fhbiometry.evaluation.evaluate import run
from fhbiometry.config.params import load_params, run_stage

PARAMS = ("threads", "data.label_source", "qc", "decode", "evaluate", "models.{model}", "intervals")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a key of `models` in params.yaml")
    args = parser.parse_args()
    run(load_params(only=PARAMS, model=args.model), args.model)


if __name__ == "__main__":
    run_stage(main)

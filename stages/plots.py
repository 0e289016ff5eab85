"""Stage `plots`: comparison figures and the summary table of every model in params `models`.

    python stages/plots.py

Reads metrics/eval/<model>.json, results/<model>/predictions.csv, metrics/train/<model>/ (DVCLive),
data/prepared/test.npz and models/; rewrites plots/models/.
"""
from fhbiometry.config.params import load_params, run_stage
from fhbiometry.reporting.plots import run

PARAMS = ("threads", "decode", "models", "plots")


def main() -> None:
    run(load_params(only=PARAMS))


if __name__ == "__main__":
    run_stage(main)

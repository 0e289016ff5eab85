"""Stage `train_refine@<name>`: train a head-normalised refinement (params `refine.<name>`).

    python stages/train_refine.py --name heatmap_crop

Reads data/refine/<name>/{train,val}.npz; writes models/<name>.safetensors and metrics/train/<name>/.
"""
import argparse

from fhbiometry.config.params import load_params, run_stage
from fhbiometry.refinement.train_stage import run_train

PARAMS = ("seed", "threads", "device", "landmarks", "codec", "train", "refine.{model}", "data.label_source")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="a key of `refine` in params.yaml")
    args = parser.parse_args()
    run_train(load_params(only=PARAMS, model=args.name), args.name)


if __name__ == "__main__":
    run_stage(main)

"""Stage `train@<model>`: train one model of params.yaml `models`.

    python stages/train.py --model resnet18

Reads data/prepared/{train,val}.npz; writes models/<model>.safetensors (best epoch by validation
MRE in mm) and the DVCLive directory metrics/train/<model>/.
"""
import argparse

from fhbiometry.params import load_params
from fhbiometry.train import run

PARAMS = ("seed", "threads", "input", "landmarks", "codec", "train", "models.{model}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a key of `models` in params.yaml")
    args = parser.parse_args()
    run(load_params(only=PARAMS, model=args.model), args.model)


if __name__ == "__main__":
    main()

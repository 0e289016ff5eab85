"""Stage `train@<model>`: train one model of params.yaml `models`.

    python stages/train.py --model resnet18
    torchrun --nproc_per_node 2 stages/train.py --model resnet18   # DDP (docs/scaling.md)

Reads data/prepared/{train,val}.npz; writes models/<model>.safetensors (best epoch by validation
MRE in mm) and the DVCLive directory metrics/train/<model>/; keeps .resume/<model>.safetensors
while it runs, so a rerun after a crash goes on from the last completed epoch.
"""
import argparse

from fhbiometry.config.params import load_params, run_stage
from fhbiometry.training.loop import run

PARAMS = ("seed", "threads", "device", "input", "landmarks", "codec", "train", "models.{model}",
          "data.label_source")  # the contour term's default weight (schema.model_codec_params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a key of `models` in params.yaml")
    args = parser.parse_args()
    run(load_params(only=PARAMS, model=args.model), args.model)


if __name__ == "__main__":
    run_stage(main)

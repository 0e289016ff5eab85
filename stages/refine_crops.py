"""Stage `refine_crops@<name>`: the crops of a head-normalised refinement (params `refine.<name>`).

    python stages/refine_crops.py --name heatmap_crop

Reads models/<coarse>.safetensors, data/prepared/{train,val,test}.npz and data/frames/frames.npz;
writes data/refine/<name>/{train,val,test}.npz and meta.json.
"""
import argparse

from fhbiometry.config.params import load_params, run_stage
from fhbiometry.refinement.crop_stage import run_crops

PARAMS = ("seed", "threads", "decode", "refine.{model}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="a key of `refine` in params.yaml")
    args = parser.parse_args()
    run_crops(load_params(only=PARAMS, model=args.name), args.name)


if __name__ == "__main__":
    run_stage(main)

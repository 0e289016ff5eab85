"""Stage `extract_frames`: raw DICOM / video / still images + labels -> data/frames/.

Writes data/frames/frames.npz (frame id -> 2-D uint8 frame), data/frames/manifest.csv and
data/frames/issues.csv (docs/architecture.md, contract 2). Params: section `data`.
"""
import logging
import sys
import time

from fhbiometry.data.extract import extract, stop_message, write_outputs
from fhbiometry.config.params import load_params, run_stage
from fhbiometry.config.paths import Paths
from fhbiometry.readers.media import InputError

PARAMS = ("data",)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_params(only=PARAMS)
    start = time.perf_counter()
    try:
        result = extract(params["data"])
    except InputError as err:
        sys.exit(stop_message(err, params["data"].get("on_bad_input", "fail")))
    paths = write_outputs(result, Paths().frames_dir)
    print(f"extract_frames: {len(result.frames)} frames, {len(result.issues)} issue(s) -> "
          f"{', '.join(str(p) for p in paths.values())} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    run_stage(main)

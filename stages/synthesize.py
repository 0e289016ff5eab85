"""Stage `synthesize`: the embedded default data set -> data/raw/synthetic/.

Multi-frame DICOM, H.264 MP4 and PNG stills of synthetic fetal head cine loops, plus
landmarks.csv, truth.csv and README.md (docs/architecture.md, contract 1).
Params: `seed` and section `synthesize`. The output folder is emptied first, so no stale file
from an earlier run (e.g. with more subjects) survives.
"""
import logging
import shutil
import time
from fhbiometry.config.params import load_params, run_stage
from fhbiometry.config.paths import Paths
from fhbiometry.synth import generate

PARAMS = ("seed", "synthesize")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params, out = load_params(only=PARAMS), Paths().synthetic
    start = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    summary = generate(out, params["synthesize"], seed=params["seed"])
    formats = ", ".join(f"{n} {f}" for f, n in summary["subjects"].items())
    faults = sum(summary["label_faults"].values())
    print(f"synthesize: {sum(summary['subjects'].values())} subjects ({formats}), "
          f"{summary['frames']} frames, {faults} injected label faults, {summary['files']} files "
          f"-> {out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    run_stage(main)

"""Measure new scans with a trained model: BPD, OFD, HC, cephalic index and gestational age.

INPUT: files and folders, any mix the extract_frames stage reads (multi-frame DICOM, video,
stills); pixel spacing from the DICOM tags, a sidecar <stem>.json {"pixel_spacing_mm": ...} or a
pixel-size table (--pixel-size-csv), else --spacing, else pixels only (with a warning).
Writes OUT/frames.csv (one row per frame), OUT/summary.csv and OUT/summary.json (one row per
cine: the median of its accepted frames; a cine with no accepted frame has no measurement,
status "no accepted frame", unless --measure-rejected) and overlays at the original resolution, prints the
summary, and writes OUT/report.html (one page: every cine's best frame, numbers and frames).
--sr writes a DICOM Structured Report per study under OUT/sr/. --server URL --study UID reads
the study from a DICOMweb server instead of INPUT files and, with --sr, stores the SRs back
(credentials from FHB_DICOMWEB_USERNAME / FHB_DICOMWEB_PASSWORD / FHB_DICOMWEB_TOKEN or a
config file, never the command line). Exit status: 0, 1 when an input could not be read (the others are still measured and
written), 2 when the checkpoint or an option is unusable. Reads params.yaml (qc, data, decode,
evaluate.confidence) and the evaluate stage's metrics/eval/<model>.json of the model's pipeline
(<root> of <root>/models/<name>.safetensors; --params, --metrics), printing where. See
docs/predict.md.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
import sys

from fhbiometry.clinical.dicomweb import ServerError, fetch_study, studies
from fhbiometry.config.checkpoint_meta import CheckpointError
from fhbiometry.config.params import ParamError
from fhbiometry.inference.backends import BACKENDS, DEFAULT_BACKEND
from fhbiometry.measure.api import measure
from fhbiometry.measure.discovery import list_inputs
from fhbiometry.measure.intervals import interval_note
from fhbiometry.measure.outputs import OutputError
from fhbiometry.measure.overlays import OVERLAY_MODES
from fhbiometry.measure.settings import DEFAULT_MODEL
from fhbiometry.measure.terminal import terminal_table, unmeasured_lines
from fhbiometry.readers.media import InputError

SUMMARY = "measure BPD, OFD, HC of new scans"
EXAMPLES = """\
Examples:
  fhbiometry predict scan.dcm                                  # models/heatmap.safetensors -> predictions/
  fhbiometry predict cines/ stills/ --out results/patient7 --spacing 0.12
  fhbiometry predict clip.mp4 --model models/resnet18.safetensors --overlays all
  fhbiometry predict clip.mp4 --model models/heatmap_crop.safetensors    # a refinement: its coarse model first
  fhbiometry predict data/raw/synthetic/dicom/sub001.dcm --sr --out results/sub001   # + results/sub001/sr/*.dcm
  fhbiometry predict --server http://localhost:8042/dicom-web --study 1.2.3... --sr  # DICOMweb in and out
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="files and folders to measure")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint (default: %(default)s)")
    parser.add_argument("--coarse", default=None, metavar="CHECKPOINT",
                        help="with a refinement's checkpoint as --model: its coarse model (default: "
                             "<refine.coarse>.safetensors beside it)")
    parser.add_argument("--out", default="predictions", help="output folder (default: %(default)s)")
    parser.add_argument("--spacing", type=float, default=None, metavar="MM",
                        help="pixel size in mm where the input gives none")
    parser.add_argument("--pixel-size-csv", default=None, metavar="CSV",
                        help="table of pixel sizes (columns as params data.pixel_size_columns)")
    parser.add_argument("--overlays", choices=OVERLAY_MODES, default="best",
                        help="overlay the best frame of each cine, every frame, or none (default: best)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default=DEFAULT_BACKEND, help="what runs the network")
    parser.add_argument("--confidence-threshold", type=float, default=None, metavar="X",
                        help="frames below it are rejected (default: the evaluate stage's, else 0.5)")
    parser.add_argument("--batch", type=int, default=32, metavar="N", help="frames per forward pass")
    parser.add_argument("--params", default=None, metavar="YAML",
                        help="parameter file (default: params.yaml of the model's pipeline, "
                             "<root>/params.yaml for <root>/models/<name>.safetensors, else ./params.yaml)")
    parser.add_argument("--metrics", default=None, metavar="JSON",
                        help="the evaluate stage's metrics of the model: confidence threshold, size "
                             "calibration (default: <root>/metrics/eval/<name>.json beside the model)")
    parser.add_argument("--measure-rejected", action="store_true",
                        help="the old behaviour, for research only: a cine with no accepted frame gets the "
                             "median of its REJECTED frames (status stays 'no accepted frame', basis says so)")
    parser.add_argument("--sr", action="store_true", help="write a DICOM SR per study under OUT/sr/")
    parser.add_argument("--server", default=None, metavar="URL",
                        help="DICOMweb root of a DICOM server to read --study from (and store the SRs to)")
    parser.add_argument("--study", default=None, metavar="UID", help="StudyInstanceUID to fetch from --server")
    parser.add_argument("--server-config", default=None, metavar="JSON",
                        help="DICOMweb credentials file (default: $FHB_DICOMWEB_CONFIG, "
                             "~/.config/fhbiometry/dicomweb.json; see docs/predict.md)")


def server_inputs(args) -> list | None:
    """The study fetched from ``--server`` into OUT/study/ (WADO-RS); None with its studies listed
    when ``--study`` is missing."""
    if not args.study:
        print("error: --server needs --study UID; studies on the server:", file=sys.stderr)
        for uid, patient, date in studies(args.server, args.server_config):
            print(f"  {uid}  patient {patient}  {date}", file=sys.stderr)
        return None
    folder = Path(args.out) / "study"
    print(f"fetched {len(fetch_study(args.server, args.study, folder, args.server_config))} instance(s) of "
          f"study {args.study} from {args.server} -> {folder}")
    return [folder]


def print_outputs(args, result, clinic) -> None:
    """The summary table, the settings used and what was written (and stored)."""
    s = result.settings
    print(terminal_table(result.summary))
    for line in unmeasured_lines(result.summary):
        print(line)
    print(f"\n{len(result.frames)} frame(s) of {len(result.summary)} cine(s); confidence threshold "
          f"{s.threshold:.3f} ({s.threshold_source})")
    print(f"params: {s.params_source}; evaluate metrics: {s.metrics_source}")
    if s.coarse_source:
        print(f"refinement {args.model} on the heads of the coarse model {s.coarse_source} "
              f"({s.decode.get('refine_passes', 1)} pass(es))")
    print(interval_note(s))
    print(f"wrote {args.out}/frames.csv, summary.csv, summary.json, report.html" +
          ("" if args.overlays == "none" else f", overlays/ ({args.overlays})") +
          (f", sr/ ({len(clinic.srs)} SR)" if args.sr else ""))
    if clinic.stored:
        print(f"stored {len(clinic.stored)} SR(s) at {args.server} (STOW-RS)")


def run(args: argparse.Namespace) -> int:
    from fhbiometry.clinical.outputs import write_clinical  # lazy: clinical imports pydicom; kept out of `fhbiometry --help`

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.spacing is not None and not args.spacing > 0:
        print(f"error: --spacing {args.spacing} must be a positive number of mm per pixel", file=sys.stderr)
        return 2
    if bool(args.inputs) == bool(args.server):
        print("error: give INPUT files and folders, or --server URL --study UID (not both)", file=sys.stderr)
        return 2
    try:
        inputs = server_inputs(args) if args.server else args.inputs
        if inputs is None:
            return 2
        result = measure(inputs, args.model, args.spacing, args.out, args.pixel_size_csv, args.overlays,
                         args.backend, args.confidence_threshold, args.batch, args.params, progress=True,
                         metrics=args.metrics, measure_rejected=args.measure_rejected, coarse=args.coarse)
        clinic = write_clinical(result, {rel: p for p, rel in list_inputs(inputs)}, args.out, args.model,
                                args.sr, args.server, args.server_config)
    except (CheckpointError, ParamError, InputError, FileNotFoundError, OutputError, ServerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_outputs(args, result, clinic)
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if result.errors else 0

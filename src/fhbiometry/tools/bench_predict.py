"""Prediction speed on this machine's CPU, as ratios to a matrix multiply measured in the same run.

For each model (`models/<name>.safetensors` when present, else an untrained network of the same
architecture at `--size`: the speed does not depend on the weights) and each backend (torch,
onnx, onnx-int8): ms per frame at batch 1 and batch 32 (best of `--iterations` runs after one
warm-up run; the median is in the JSON), the model's FLOPs per frame
(torch.utils.flop_counter, a multiply-add counts 2), the achieved GFLOP/s and its % of the
practical limit: a float32 `torch.mm` of 2048 x 2048 matrices (best of 5) on the same `--threads`.
Then end-to-end frames per second from a multi-frame DICOM file to summary.csv (read, letterbox,
network, decode, millimetres, per-cine median) with the fastest float backend. Prints a markdown
table and writes JSON. Goals (issue 11): >= 75 % at batch 1, >= 85 % at batch 32, >= 60 frames/s.
Measure on a quiet machine: other processes on the cores make every figure meaningless.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fhbiometry.core.geometry import LANDMARKS, diameters
from fhbiometry.core.letterbox import Letterbox, to_original
from fhbiometry.measure.api import measure
from fhbiometry.readers.media import read_dicom
from fhbiometry.tools.machine import matmul_gflops, timed

SUMMARY = "measure prediction speed against a matmul"
EXAMPLES = """\
Examples:
  fhbiometry bench-predict                                  # heatmap + resnet18, 2 threads
  fhbiometry bench-predict --models heatmap resnet18 --threads 2 --out metrics/bench.json
"""
UNTRAINED = {"heatmap": ("resnet18", "heatmap"), "alexnet": ("alexnet", "regression"),
             "resnet18": ("resnet18", "regression"), "resnet34": ("resnet34", "regression")}
BATCHES = (1, 32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=["heatmap", "resnet18"],
                        help="model names: models/<name>.safetensors, or an untrained network of "
                             f"arch {sorted(UNTRAINED)} when absent (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    parser.add_argument("--size", type=int, default=128,
                        help="input size of the untrained networks (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=10, help="timed runs per figure (default: %(default)s)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n^3 matmul (default: %(default)s)")
    parser.add_argument("--e2e-frames", type=int, default=256,
                        help="frames of the end-to-end DICOM cine (default: %(default)s)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 model")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--calibration", type=Path, default=Path("data/prepared/val.npz"),
                        help="frames for int8 calibration; synthetic when absent (default: %(default)s)")
    parser.add_argument("--test-split", type=Path, default=Path("data/prepared/test.npz"),
                        help="frames on which the int8 landmarks are compared with the float model's, "
                             "in mm (skipped when absent) (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON file (default: %(default)s)")


# ---- measurements -------------------------------------------------------------------------------
def flops_per_frame(model, size: int) -> float:
    """FLOPs of one forward pass on one frame (a multiply-add counts 2)."""
    import torch  # lazy: torch kept out of `fhbiometry --help`
    from torch.utils.flop_counter import FlopCounterMode  # lazy: torch kept out of `fhbiometry --help`

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros((1, 1, size, size)))
    return float(counter.get_total_flops())


# ---- models and backends ------------------------------------------------------------------------
def load_or_build(name: str, models_dir: Path, size: int):
    """(model, meta, source): the checkpoint models_dir/<name>.safetensors, else untrained."""
    import torch  # lazy: torch kept out of `fhbiometry --help`

    from fhbiometry.codecs import make_codec  # lazy: codecs import torch; kept out of `fhbiometry --help`
    from fhbiometry.inference.runner import load_model  # lazy: torch kept out of `fhbiometry --help`
    from fhbiometry.models.networks import build_model  # lazy: torch kept out of `fhbiometry --help`

    path = models_dir / f"{name}.safetensors"
    if path.is_file():
        loaded = load_model(path)
        return loaded.model, loaded.meta, str(path)
    if name not in UNTRAINED:
        raise ValueError(f"{path} does not exist and {name!r} names no architecture: give one of "
                         f"{sorted(UNTRAINED)} or train the model (`dvc repro train@{name}`)")
    arch, kind = UNTRAINED[name]
    torch.manual_seed(0)
    model = build_model(arch, kind).eval()
    codec = make_codec(kind, size, {"coordinates": "normalised", "stride": 4, "sigma": 2.0, "peak": 1.0})
    meta = {"arch": arch, "kind": kind, "codec": codec.settings(), "input": Letterbox(size=size).to_dict(),
            "landmarks": list(LANDMARKS)}
    return model, meta, f"untrained {kind} {arch}"


class TorchPath:
    """The PyTorch path: ``inference.network_outputs`` on (N, S, S) uint8 frames."""

    def __init__(self, model, batch_size: int = 32):
        self.model, self.batch_size = model, batch_size

    def outputs(self, images):
        from fhbiometry.inference.runner import network_outputs  # lazy: torch kept out of `fhbiometry --help`

        return network_outputs(self.model, images, self.batch_size)


def make_backends(model, meta, work: Path, args) -> dict:
    """name -> backend (``outputs(images)``) for torch, onnx and (unless --no-int8) onnx-int8."""
    from fhbiometry.inference.onnx_backend import OnnxBackend, calibration_frames, export_onnx, quantize_int8  # lazy: torch and onnx kept out of `fhbiometry --help`

    size = int(meta["input"]["size"])
    float_path = export_onnx(model, meta, work / "model.onnx")
    backends = {"torch": TorchPath(model), "onnx": OnnxBackend(float_path, threads=args.threads)}
    if not args.no_int8:
        frames, _ = calibration_frames(args.calibration, size, 32)
        int8 = quantize_int8(float_path, work / "model.int8.onnx", frames)
        backends["onnx-int8"] = OnnxBackend(int8, threads=args.threads)
    return backends


def bench_backend(backend, frames: np.ndarray, flops: float, limit: float, iterations: int) -> dict:
    """ms/frame, GFLOP/s and % of ``limit`` GFLOP/s at each batch size of BATCHES."""
    row = {}
    for batch in BATCHES:
        images = frames[:batch]
        best, median = timed(lambda: backend.outputs(images), iterations)
        gflops = flops * batch / best / 1e9
        row[f"batch{batch}"] = {"ms_per_frame": 1e3 * best / batch, "ms_per_frame_median": 1e3 * median / batch,
                                "gflops": gflops, "pct_of_matmul": 100.0 * gflops / limit}
    return row


# ---- end to end ---------------------------------------------------------------------------------
def write_cine(path: Path, frames: np.ndarray, spacing_mm: float = 0.2) -> Path:
    """An uncompressed multi-frame ultrasound DICOM of (N, H, W) uint8 ``frames``."""
    from pydicom.dataset import Dataset, FileMetaDataset  # lazy: pydicom kept out of `fhbiometry --help`
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # lazy: pydicom kept out of `fhbiometry --help`

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # US multi-frame image
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["fhbiometry-bench"])
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "US", "bench"
    ds.PixelSpacing = [spacing_mm, spacing_mm]
    ds.Rows, ds.Columns, ds.NumberOfFrames = int(frames.shape[1]), int(frames.shape[2]), len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(frames, np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_to_summary(dicom: Path, backend, codec, letterbox, out_csv: Path) -> dict:
    """Read the cine, letterbox, run the network, decode, map to original pixels, measure BPD / OFD
    in mm and write the per-cine median to ``out_csv``. Returns the seconds of each step."""
    clock = [time.perf_counter()]
    cine = read_dicom(dicom)
    clock.append(time.perf_counter())
    inputs, transforms = zip(*(letterbox.image_to_input(frame) for frame in cine.frames))
    images = np.stack(inputs)
    clock.append(time.perf_counter())
    outputs = backend.outputs(images)
    clock.append(time.perf_counter())
    points = to_original(codec.decode(outputs).points, np.stack(transforms))
    ofd_bpd = diameters(points) * cine.spacing_mm
    pd.DataFrame({"source": [dicom.name], "frames": [len(points)], "ofd_mm": [np.median(ofd_bpd[:, 0])],
                  "bpd_mm": [np.median(ofd_bpd[:, 1])]}).to_csv(out_csv, index=False)
    clock.append(time.perf_counter())
    return dict(zip(("read", "letterbox", "network", "decode_and_write"), np.diff(clock).tolist()))


def bench_end_to_end(backend, meta: dict, work: Path, n_frames: int, iterations: int) -> dict:
    """Frames per second from the DICOM cine to summary.csv (best of up to 3 runs after a warm-up),
    and the seconds of each step in the best run."""
    from fhbiometry.codecs import codec_from_settings  # lazy: codecs import torch; kept out of `fhbiometry --help`
    from fhbiometry.inference.onnx_backend import synthetic_frames  # lazy: torch kept out of `fhbiometry --help`

    dicom = work / "cine.dcm"
    if not dicom.is_file():
        write_cine(dicom, synthetic_frames(n_frames, 320, seed=1)[:, 32:288])  # 256 x 320 frames
    codec, letterbox = codec_from_settings(meta["codec"]), Letterbox(**meta["input"])
    runs = [dicom_to_summary(dicom, backend, codec, letterbox, work / "summary.csv")
            for _ in range(1 + max(1, min(iterations, 3)))][1:]
    totals = [sum(r.values()) for r in runs]
    best = runs[int(np.argmin(totals))]
    return {"frames": n_frames, "frames_per_s": n_frames / min(totals),
            "frames_per_s_median": n_frames / statistics.median(totals), "seconds": best,
            "pipeline": "read_dicom + letterbox + network + decode + mm + summary.csv (the bench's own "
                        "steps, not `fhbiometry predict`)"}


def bench_predict_command(checkpoint: Path, backend: str, work: Path, n_frames: int, threads: int) -> dict:
    """Frames per second of ``fhbiometry predict`` itself (the Python API: reading, letterbox, the
    network twice (the frame and its mirror, for the confidence), decoding, biometry, flags, the
    CSV and JSON files, no overlays) on the benchmark's multi-frame DICOM; best of 2 after a warm-up."""
    dicom = work / "cine.dcm"
    times = []
    for i in range(3):
        start = time.perf_counter()
        measure([dicom], model=checkpoint, out=work / f"predict_{backend}", overlays="none", backend=backend,
                spacing=0.2)
        times.append(time.perf_counter() - start)
    return {"frames": n_frames, "frames_per_s": n_frames / min(times[1:]), "backend": backend,
            "pipeline": "fhbiometry predict (measure): read, letterbox, network on the frame and its mirror, "
                        "decode, biometry, confidence, flags, frames.csv + summary.csv/json"}


def int8_difference(backends: dict, split: Path, size: int) -> dict | None:
    """Landmark distance (mm) of the int8 model to the float model on a prepared split, when the
    split exists and has frames of the model's input size."""
    from fhbiometry.inference.onnx_backend import landmark_difference_mm  # lazy: torch kept out of `fhbiometry --help`

    if "onnx-int8" not in backends or not split.is_file():
        return None
    with np.load(split) as data:
        if data["image"].shape[1:] != (size, size):
            return None
    return landmark_difference_mm(backends["onnx-int8"], backends["onnx"], split)


# ---- report -------------------------------------------------------------------------------------
def bench_model(name: str, args, limit: float, work: Path) -> dict:
    from fhbiometry.inference.onnx_backend import synthetic_frames  # lazy: torch kept out of `fhbiometry --help`

    model, meta, source = load_or_build(name, args.models_dir, args.size)
    size = int(meta["input"]["size"])
    flops = flops_per_frame(model, size)
    frames = synthetic_frames(max(BATCHES), size)
    result = {"source": source, "arch": meta["arch"], "kind": meta["kind"], "input_size": size,
              "flops_per_frame": flops, "backends": {}}
    backends = make_backends(model, meta, work, args)
    checkpoint = Path(args.models_dir) / f"{name}.safetensors"
    copy = None
    if checkpoint.is_file():  # a copy with the export beside it, as `predict --backend onnx` opens it
        copy = work / "checkpoint" / checkpoint.name
        copy.parent.mkdir()
        copy.write_bytes(checkpoint.read_bytes())
        copy.with_suffix(".onnx").write_bytes((work / "model.onnx").read_bytes())
    for backend_name, backend in backends.items():
        row = bench_backend(backend, frames, flops, limit, args.iterations)
        row["end_to_end"] = bench_end_to_end(backend, meta, work, args.e2e_frames, args.iterations)
        if copy is not None and backend_name in ("torch", "onnx"):
            row["predict_command"] = bench_predict_command(copy, backend_name, work, args.e2e_frames, args.threads)
        result["backends"][backend_name] = row
    result["int8_vs_float"] = int8_difference(backends, args.test_split, size)
    return result


def practical_limit(matmul: dict) -> float:
    """The practical limit, GFLOP/s: the faster of the torch and numpy float32 matmuls of the run."""
    return max(matmul["torch_gflops"], matmul["numpy_gflops"])


def markdown(report: dict) -> str:
    lines = [f"matmul {report['matmul']['n']}^3 float32: {report['matmul']['torch_gflops']:.1f} GFLOP/s (torch), "
             f"{report['matmul']['numpy_gflops']:.1f} (numpy); % matmul is of the faster; "
             f"{report['threads']} threads", "",
             "| model | backend | GFLOP/frame | ms/frame b1 | % matmul b1 | ms/frame b32 | % matmul b32 | e2e frames/s "
             "| `predict` frames/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    limit = practical_limit(report["matmul"])
    for name, model in report["models"].items():
        for backend, row in model["backends"].items():
            b1, b32 = row["batch1"], row["batch32"]
            command = f"{row['predict_command']['frames_per_s']:.0f}" if "predict_command" in row else "-"
            lines.append(f"| {name} ({model['source']}) | {backend} | {model['flops_per_frame'] / 1e9:.2f} | "
                         f"{b1['ms_per_frame']:.2f} | {100 * b1['gflops'] / limit:.0f} | {b32['ms_per_frame']:.2f} | "
                         f"{100 * b32['gflops'] / limit:.0f} | {row['end_to_end']['frames_per_s']:.0f} | {command} |")
    for name, model in report["models"].items():
        diff = model.get("int8_vs_float")
        if diff:
            lines.append(f"\n{name}: int8 vs float landmarks on {diff['split']} ({diff['frames']} frames): median "
                         f"{diff['median_mm']:.3f} mm, 95th percentile {diff['p95_mm']:.3f} mm, max {diff['max_mm']:.3f} mm")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:

    import torch  # lazy: torch kept out of `fhbiometry --help`

    torch.set_num_threads(args.threads)
    limit = matmul_gflops(args.matmul_size, args.threads)
    report = {"threads": args.threads, "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "flops_convention": "a multiply-add counts 2 FLOPs",
              "matmul": limit, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            work = Path(tmp) / name
            work.mkdir()
            report["models"][name] = bench_model(name, args, practical_limit(limit), work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(markdown(report))
    print(f"bench-predict: wrote {args.out}")
    return 0

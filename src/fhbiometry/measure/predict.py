"""Measure new scans: DICOM cines, videos and stills -> BPD, OFD, HC, cephalic index and
gestational age per frame and per cine, with a confidence (``fhbiometry predict``, docs/predict.md).

Inputs are read by the readers of ``extract_frames`` (``readers.read_file``) and their pixel
spacing found the same way (``extract.resolve_spacing``: DICOM tags, sidecar ``<stem>.json``,
a pixel-size table); ``spacing_mm`` is used only where none of those gives one. Without any
spacing the frame is measured in pixels only (mm columns empty) and a warning says so.

Each frame is letterboxed with the checkpoint's ``Letterbox``, predicted by a backend
(``BACKENDS``) and once more mirrored (the flip agreement of the confidence), and its
points mapped back to the original pixels (and, with params ``decode.size_calibration:
validation``, each diameter scaled by the factors the evaluate stage estimated on the validation
frames: calibration.py). A cine is a multi-frame file; stills are grouped by
subject id (DICOM PatientID, sidecar ``subject_id``, ``data.subject_pattern`` on the file stem,
else the stem). Its robust measurement is the median over the frames that pass the QC flags and
the confidence threshold (all frames, with ``fallback`` true, when none passes).
"""
from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fhbiometry.readers import media as rd
from fhbiometry.core.biometry import ga_from_bpd_weeks, ga_from_hc_weeks, measurements
from fhbiometry.trust.calibration import apply_factors
from fhbiometry.trust.confidence import DEFAULT_THRESHOLD, confidence, group_medians
from fhbiometry.data.extract import index_inputs, resolve_spacing
from fhbiometry.core.geometry import COORD_COLUMNS, anatomical_naming, diameters
from fhbiometry.core.letterbox import to_original
from fhbiometry.data.qc import _flag_points
from fhbiometry.readers.media import InputError

log = logging.getLogger(__name__)


def _torch_backend(loaded, path, batch_size: int = 32):
    from fhbiometry.inference.runner import TorchBackend

    return TorchBackend.from_checkpoint(loaded, path, batch_size)


def _onnx_backend(loaded, path, batch_size: int = 32):
    from fhbiometry.inference.onnx_backend import OnnxBackend  # onnxruntime only when asked for

    return OnnxBackend.from_checkpoint(loaded, path, batch_size)


def _onnx_int8_backend(loaded, path, batch_size: int = 32):
    from fhbiometry.inference.onnx_backend import OnnxBackend

    return OnnxBackend.int8_from_checkpoint(loaded, path, batch_size)


# what runs the network: name -> factory(loaded checkpoint, checkpoint path, batch size); every
# backend has ``outputs(images)`` (``inference.TorchBackend``, ``onnx_backend.OnnxBackend``)
BACKENDS = {"torch": _torch_backend, "onnx": _onnx_backend, "onnx-int8": _onnx_int8_backend}


def make_backend(name: str, loaded, path, batch_size: int = 32):
    """The backend ``name`` (a key of ``BACKENDS``) for a loaded checkpoint."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[name](loaded, path, batch_size)

DEFAULT_MODEL = "models/heatmap.safetensors"
OVERLAY_MODES = ("best", "all", "none")
FLAG_NAMES = ("ratio", "not_perpendicular", "midpoint_offset", "outside")  # qc.py flag names
SUMMARY_VALUES = ("bpd_px", "ofd_px", "bpd_mm", "ofd_mm", "hc_mm", "cephalic_index")
CSV_DIGITS = 4
HADLOCK = ("Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted "
           "analysis of multiple fetal growth parameters. Radiology 1984;152:497-501")


@dataclass
class Settings:
    """What ``predict`` needs besides the inputs: params sections and the command's options."""

    qc: dict
    confidence: dict
    decode: dict
    data: dict
    threshold: float
    threshold_source: str
    spacing_mm: float = 0.0
    pixel_sizes: dict = field(default_factory=dict)
    batch_size: int = 32
    size_factors: dict | None = None      # calibration.py: from the evaluate stage's metrics


@dataclass
class Scan:
    """One input file read: frames, spacing (NaN when unknown) and its source, ids."""

    path: Path
    rel: str
    frames: np.ndarray
    spacing: float
    spacing_source: str
    subject: str
    cine: str


@dataclass
class Result:
    frames: pd.DataFrame
    summary: pd.DataFrame
    errors: list                     # InputError of each input that could not be read
    settings: Settings
    best_images: dict = field(default_factory=dict)   # cine -> (H, W) image of its best frame


# ---- inputs -------------------------------------------------------------------------------
def list_inputs(inputs) -> list[tuple[Path, str]]:
    """(file, name used for the pixel-size table) of every input: a file as given, a folder's
    readable files (``readers.find_inputs``, relative to the folder)."""
    out = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            rels, _ = index_inputs(path, rd.find_inputs(path))
            out += list(rels.items())
        else:
            out.append((path, path.name))
    return out


def read_scan(path: Path, rel: str, settings: Settings, subject_rx) -> Scan:
    """Read one input with the extract stage's readers and spacing rules (InputError if unusable)."""
    if not path.is_file():
        raise InputError(path, "input not found", "check the path (a file or a folder of inputs)")
    content = rd.read_file(path, int(settings.data.get("max_image_pixels", rd.DEFAULT_MAX_PIXELS)))
    sidecar = rd.read_sidecar(path)
    try:
        spacing, source = resolve_spacing(path, rel, (content.spacing_mm, content.spacing_source), sidecar,
                                          settings.pixel_sizes, settings.spacing_mm)
    except InputError:  # resolve_spacing's only error: no spacing anywhere
        spacing, source = float("nan"), "none"
    source = "--spacing" if source == "default" else source
    subject, _ = rd.subject_with_source(path.stem, subject_rx, content.patient_id, sidecar.get("subject_id"))
    cine = rel if content.multi_frame else subject
    return Scan(path, rel, content.frames, float(spacing), source, subject, cine)


# ---- per-frame table ------------------------------------------------------------------------
def plausibility_flags(points_orig, width, height, qc: dict) -> pd.DataFrame:
    """The geometric QC checks of qc.py on predicted points (original pixels): one boolean
    column ``flag_<name>`` per ``FLAG_NAMES``, with the thresholds of params ``qc``."""
    pts = np.asarray(points_orig, np.float64)
    n = len(pts)
    out = _flag_points(pts, np.full_like(pts, np.nan), np.full(n, "ok"), np.ones(n),
                       np.asarray(width, np.float64), np.asarray(height, np.float64),
                       np.full(n, np.nan), {**qc, "reference": ""})
    return pd.DataFrame({f"flag_{name}": out["flags"][name] for name in FLAG_NAMES})


def frame_table(scan: Scan, points_orig, conf: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """One row per frame of ``scan``: ids, landmarks (original px), diameters in px and mm,
    HC, cephalic index, gestational ages, confidence and its terms, QC flags, ``accepted``."""
    n, (h, w) = len(points_orig), scan.frames.shape[1:]
    d_px = diameters(points_orig)
    d_mm = d_px * scan.spacing
    cols = {"source_file": scan.rel, "frame_index": np.arange(n), "cine_id": scan.cine,
            "subject_id": scan.subject, "width": w, "height": h,
            "spacing_mm": scan.spacing, "spacing_source": scan.spacing_source}
    cols.update(zip(COORD_COLUMNS, np.asarray(points_orig, np.float64).reshape(n, 8).T))
    cols.update({"bpd_px": d_px[:, 1], "ofd_px": d_px[:, 0], "bpd_mm": d_mm[:, 1], "ofd_mm": d_mm[:, 0]})
    cols.update(measurements(d_mm[:, 1], d_mm[:, 0]))
    cols["cephalic_index"] = 100.0 * d_px[:, 1] / d_px[:, 0]   # needs no spacing
    table = pd.DataFrame(cols)
    table = pd.concat([table, conf.reset_index(drop=True),
                       plausibility_flags(points_orig, np.full(n, w), np.full(n, h), settings.qc)], axis=1)
    flags = table[[c for c in table.columns if c.startswith("flag_")]].any(axis=1)
    table["plausible"] = ~flags
    table["accepted"] = table["plausible"] & (table["confidence"] >= settings.threshold)
    return table


def predict_scan(scan: Scan, loaded, backend, settings: Settings, bar=None):
    """(frame table, (N, H, W) frames) of one scan: letterbox, predict (and the mirror), map back."""
    from fhbiometry.inference.runner import predict_frames

    letterbox, codec = loaded.letterbox, loaded.codec
    pts, peaks, flips = [], [], []
    for start in range(0, len(scan.frames), settings.batch_size):
        chunk = scan.frames[start:start + settings.batch_size]
        boxed = [letterbox.image_to_input(f) for f in chunk]
        images, transform = np.stack([b[0] for b in boxed]), np.stack([b[1] for b in boxed])
        fp = predict_frames(backend, codec, images, flip=True, flip_test=bool(settings.decode.get("flip_test")))
        pts.append(apply_factors(to_original(fp.points, transform), settings.size_factors))
        flips.append(to_original(fp.flip_points, transform))
        peaks.append(fp.peak)
        if bar is not None:
            bar.update(len(chunk))
    points, flipped = np.concatenate(pts), np.concatenate(flips)
    if settings.qc.get("naming", "anatomical") == "anatomical":
        points, swapped = anatomical_naming(points)
        flipped = np.where(swapped[:, None, None], flipped[:, [2, 3, 0, 1]], flipped)
    peak = None if peaks[0] is None else np.concatenate(peaks)
    conf = confidence(points, flipped, peak, settings.qc, settings.confidence,
                      float(codec.peak))
    return frame_table(scan, points, conf, settings)


# ---- per-cine summary -----------------------------------------------------------------------
def summarise(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per cine: median and IQR over its accepted frames (all frames with ``fallback``
    when none is accepted), counts, gestational ages of the medians, the best frame."""
    if frames.empty:
        return pd.DataFrame(columns=["cine_id"])
    agg = group_medians(frames[list(SUMMARY_VALUES)].to_numpy(), frames["cine_id"].to_numpy(),
                        frames["accepted"].to_numpy())
    best = frames.loc[frames.groupby("cine_id", sort=False)["confidence"].idxmax()].set_index("cine_id")
    rows = []
    for _, r in agg.iterrows():
        b = best.loc[r["group"]]
        row = {"cine_id": r["group"], "subject_id": b["subject_id"], "n_frames": r["n_frames"],
               "n_used": r["n_used"], "n_rejected": r["n_rejected"], "fallback": bool(r["fallback"])}
        for k, name in enumerate(SUMMARY_VALUES):
            row[name] = r[f"median_{k}"]
        for k, name in enumerate(SUMMARY_VALUES[2:5], start=2):
            row[f"{name}_iqr"] = r[f"iqr_{k}"]
        row["ga_bpd_weeks"] = float(ga_from_bpd_weeks(row["bpd_mm"]))
        row["ga_hc_weeks"] = float(ga_from_hc_weeks(row["hc_mm"]))
        row.update(best_source_file=b["source_file"], best_frame_index=int(b["frame_index"]),
                   best_confidence=float(b["confidence"]))
        rows.append(row)
    return pd.DataFrame(rows)


# ---- overlays -------------------------------------------------------------------------------
def ellipse_outline(points, n: int = 96) -> np.ndarray:
    """(n, 2) points of the ellipse with the OFD and BPD as axes, centred between the midpoints."""
    p = np.asarray(points, np.float64)
    centre = 0.5 * (p[:2].mean(0) + p[2:].mean(0))
    u = p[1] - p[0]
    a, b = np.linalg.norm(u) / 2.0, np.linalg.norm(p[3] - p[2]) / 2.0
    u = u / max(2.0 * a, 1e-9)
    v = np.array([-u[1], u[0]])
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)[:, None]
    return centre + a * np.cos(t) * u + b * np.sin(t) * v


def overlay_text(row) -> str:
    """Two lines: the diameters, then HC, cephalic index and confidence."""
    if np.isfinite(row["bpd_mm"]):
        return (f"BPD {row['bpd_mm']:.1f} mm  OFD {row['ofd_mm']:.1f} mm\n"
                f"HC {row['hc_mm']:.1f} mm  CI {row['cephalic_index']:.0f}  conf {row['confidence']:.2f}")
    return (f"BPD {row['bpd_px']:.1f} px  OFD {row['ofd_px']:.1f} px\n"
            f"(no spacing)  CI {row['cephalic_index']:.0f}  conf {row['confidence']:.2f}")


def draw_overlay(image: np.ndarray, row, path) -> Path:
    """The frame at its original resolution with the landmarks, both diameters, the ellipse and
    the numbers, as a PNG (no metadata, so the same inputs give the same bytes)."""
    from PIL import Image, ImageDraw

    p = row[list(COORD_COLUMNS)].to_numpy(np.float64).reshape(4, 2)
    im = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(im)
    colour = (0, 230, 118) if row["accepted"] else (255, 145, 0)
    if np.isfinite(p).all():
        draw.line([tuple(q) for q in np.vstack([ellipse_outline(p), ellipse_outline(p)[:1]])],
                  fill=(0, 176, 255), width=1)
        draw.line([tuple(p[0]), tuple(p[1])], fill=colour, width=2)
        draw.line([tuple(p[2]), tuple(p[3])], fill=colour, width=2)
        for x, y in p:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(255, 23, 68), width=2)
    text = overlay_text(row)
    draw.rectangle(draw.multiline_textbbox((4, 4), text), fill=(0, 0, 0))
    draw.multiline_text((4, 4), text, fill=(255, 255, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG")
    return path


def overlay_name(row) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(row["source_file"]))
    return f"{stem}_f{int(row['frame_index']):04d}.png"


# ---- running --------------------------------------------------------------------------------
def resolve_threshold(value, model_path) -> tuple[float, str]:
    """The confidence threshold: ``value`` when given, else the evaluate stage's (validation
    quantile, metrics/eval/<model>.json section ``confidence``), else 0.5."""
    from fhbiometry.config.paths import Paths

    if value is not None:
        return float(value), "--confidence-threshold"
    metrics = Paths(".").eval_metrics(Path(model_path).name.split(".")[0])
    if metrics.is_file():
        found = json.loads(metrics.read_text()).get("confidence", {}).get("threshold")
        if found is not None and np.isfinite(found):
            return float(found), f"{metrics.as_posix()} (evaluate stage, validation quantile)"
    return DEFAULT_THRESHOLD, "default 0.5 (no metrics/eval/<model>.json)"


def run_predict(inputs, loaded, backend, settings: Settings, overlays: str = "best", out=None,
                progress: bool = True) -> Result:
    """Predict every input (unreadable ones are logged and listed in ``errors``); with ``out``,
    overlays are written as they are made (``all``) or for each cine's best frame (``best``)."""
    subject_rx = rd.compile_subject_pattern(settings.data.get("subject_pattern", r"^(?P<subject>[A-Za-z]*\d+)"))
    tables, errors, best = [], [], {}
    bar = tqdm(desc="predict", unit="frame", disable=not progress, file=sys.stderr)
    for path, rel in list_inputs(inputs):
        try:
            scan = read_scan(path, rel, settings, subject_rx)
        except InputError as err:
            log.error("%s -> file skipped", err)
            errors.append(err)
            continue
        if not np.isfinite(scan.spacing):
            log.warning("WARNING: %s has no pixel spacing (no DICOM tag, sidecar %s.json or pixel-size table "
                        "row): measured in PIXELS only, mm columns left empty; give --spacing MM", rel, path.stem)
        table = predict_scan(scan, loaded, backend, settings, bar)
        for i, row in table.iterrows():
            if overlays == "all" and out is not None:
                draw_overlay(scan.frames[i], row, Path(out) / "overlays" / overlay_name(row))
            if overlays == "best" and row["confidence"] > best.get(row["cine_id"], (-1.0,))[0]:
                best[row["cine_id"]] = (row["confidence"], scan.frames[i].copy(), row)
        tables.append(table)
    bar.close()
    frames = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    result = Result(frames, summarise(frames), errors, settings, {k: v[1:] for k, v in best.items()})
    if out is not None and overlays == "best":
        for image, row in result.best_images.values():
            draw_overlay(image, row, Path(out) / "overlays" / overlay_name(row))
    return result


def write_outputs(result: Result, out, model_path) -> dict[str, Path]:
    """frames.csv, summary.csv and summary.json under ``out``."""
    from fhbiometry.core.store import write_csv, write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"frames": out / "frames.csv", "summary": out / "summary.csv", "json": out / "summary.json"}
    write_csv(result.frames, paths["frames"], digits=CSV_DIGITS)
    write_csv(result.summary, paths["summary"], digits=CSV_DIGITS)
    records = json.loads(result.summary.to_json(orient="records", double_precision=CSV_DIGITS + 2))
    write_json(paths["json"], {
        "model": Path(model_path).as_posix(), "confidence_threshold": result.settings.threshold,
        "threshold_source": result.settings.threshold_source, "gestational_age_formula": HADLOCK,
        "units": {"*_mm": "millimetres", "*_px": "original image pixels", "ga_*": "weeks", "hc": "Ramanujan"},
        "unreadable_inputs": [str(e) for e in result.errors], "cines": records})
    return paths


def terminal_table(summary: pd.DataFrame) -> str:
    """The summary as a readable fixed-width table."""
    if summary.empty:
        return "(no frames measured)"
    t = pd.DataFrame({"cine": summary["cine_id"],
                      "frames": [f"{u}/{n}" + ("!" if f else "") for u, n, f in
                                 zip(summary["n_used"], summary["n_frames"], summary["fallback"])]})
    mm = summary["bpd_mm"].notna()
    for name in ("bpd", "ofd"):
        t[f"{name.upper()}"] = np.where(mm, summary[f"{name}_mm"].map("{:.1f} mm".format),
                                        summary[f"{name}_px"].map("{:.1f} px".format))
    t["HC"] = np.where(mm, summary["hc_mm"].map("{:.1f} mm".format), "-")
    t["CI"] = summary["cephalic_index"].map("{:.1f}".format)
    t["GA(BPD)"] = summary["ga_bpd_weeks"].map(lambda v: f"{v:.1f} wk" if np.isfinite(v) else "-")
    t["GA(HC)"] = summary["ga_hc_weeks"].map(lambda v: f"{v:.1f} wk" if np.isfinite(v) else "-")
    t["best"] = [f"#{i} ({c:.2f})" for i, c in zip(summary["best_frame_index"], summary["best_confidence"])]
    return t.to_string(index=False)


def resolve_size_factors(method: str, model_path) -> dict | None:
    """The size calibration of params ``decode.size_calibration``: None for ``none``; for
    ``validation`` the factors the evaluate stage estimated on the validation frames
    (metrics/eval/<model>.json, section ``size_calibration``)."""
    from fhbiometry.config.paths import Paths

    if method == "none":
        return None
    name = Path(model_path).name.split(".")[0]
    metrics = Paths(".").eval_metrics(name)
    found = json.loads(metrics.read_text()).get("size_calibration") if metrics.is_file() else None
    if not found:
        raise FileNotFoundError(f"{metrics.as_posix()}: no size_calibration section for decode.size_calibration: "
                                f"{method}; run `dvc repro evaluate@{name}` with these params, or set it to none")
    return found


def load_settings(params_path, spacing_mm=None, pixel_size_csv=None, threshold=None, model_path=DEFAULT_MODEL,
                  batch_size: int = 32) -> Settings:
    """Settings from params.yaml (qc, data, decode, evaluate.confidence) and the options."""
    from fhbiometry.config.params import load_params

    params = load_params(params_path)
    pixel_sizes = {}
    if pixel_size_csv:
        pixel_sizes = rd.read_pixel_size_table(pixel_size_csv, params["data"]["pixel_size_columns"])
    value, source = resolve_threshold(threshold, model_path)
    factors = resolve_size_factors(params["decode"].get("size_calibration", "none"), model_path)
    return Settings(params["qc"], params["evaluate"]["confidence"], params["decode"], params["data"], value,
                    source, float(spacing_mm or 0.0), pixel_sizes, int(batch_size), factors)


def measure(inputs, model=DEFAULT_MODEL, spacing=None, out=None, pixel_size_csv=None, overlays: str = "best",
            backend: str = "torch", confidence_threshold=None, batch_size: int = 32,
            params="params.yaml", progress: bool = False) -> Result:
    """``predict`` returning the whole ``Result`` (with the inputs that could not be read)."""
    from fhbiometry.inference.runner import load_model

    if overlays not in OVERLAY_MODES:
        raise ValueError(f"overlays must be one of {OVERLAY_MODES}, got {overlays!r}")
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    settings = load_settings(params, spacing, pixel_size_csv, confidence_threshold, model, batch_size)
    loaded = load_model(Path(model), fix="give the path of a checkpoint written by `dvc repro train@<model>`")
    result = run_predict(inputs, loaded, make_backend(backend, loaded, model, batch_size), settings,
                         overlays, out, progress)
    if out is not None:
        write_outputs(result, out, model)
    return result


def predict(inputs, model=DEFAULT_MODEL, spacing=None, out=None, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure ``inputs`` (files and folders, any mix ``extract_frames`` reads) with the checkpoint
    ``model``: returns (frame table, per-cine summary), also written under ``out`` when given,
    with overlays. ``spacing``: mm per pixel where the input gives none. Options: those of
    ``measure`` (pixel_size_csv, overlays, backend, confidence_threshold, batch_size, params,
    progress). Inputs that cannot be read are logged and skipped."""
    result = measure(inputs, model, spacing, out, **options)
    return result.frames, result.summary


class _CallableModule(type(sys)):
    """``import fhbiometry.measure.predict`` makes the package attribute ``predict`` this module (the
    import system sets it after the package's lazy ``__getattr__``); calling it still measures."""

    def __call__(self, *args, **kwargs):
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

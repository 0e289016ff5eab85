"""Frames from DICOM (single/multi-frame), video (PyAV) and still images; pixel spacing; subject ids.

Every frame becomes a 2-D ``uint8`` grayscale array:

* 8-bit grayscale is kept as is;
* RGB (and DICOM YBR, which pydicom converts to RGB) becomes luminance
  ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), rounded;
* more than 8 bits (16-bit DICOM or PNG, float TIFF) is rescaled linearly from the file's
  minimum..maximum (over all frames of the file, so a cine keeps one mapping) to 0..255,
  and a note is logged.

Nothing else is applied (no cropping, no contrast change, no resizing).

Bad inputs raise :class:`InputError`, whose message names the file (and row) and the fix.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DICOM_EXTS = (".dcm", ".dicom")
VIDEO_EXTS = (".mp4", ".avi", ".mov")
STILL_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SKIP_EXTS = (".csv", ".json", ".md", ".txt")
ANNOTATION_SUFFIX = "_Annotation.png"


class InputError(Exception):
    """A raw input (image, video, DICOM, table row) is missing or unusable.

    ``file`` and ``row`` (1-based spreadsheet row, header = row 1; ``None`` for files) say
    where, ``problem`` what, ``fix`` what to do.
    """

    def __init__(self, file, problem: str, fix: str = "", row: int | None = None):
        self.file = str(file)
        self.problem = problem
        self.fix = fix
        self.row = row
        where = self.file if row is None else f"{self.file}, row {row}"
        super().__init__(f"{where}: {problem}" + (f". Fix: {fix}" if fix else ""))


@dataclass
class FileFrames:
    """What one raw file holds: ``frames`` (N, H, W) uint8 and DICOM metadata where present."""

    frames: np.ndarray
    multi_frame: bool
    spacing_mm: float | None = None
    spacing_source: str = ""
    patient_id: str = ""


# ----------------------------------------------------------------------------- discovery

def find_inputs(raw_dir, annotation_pattern: str = "") -> list[Path]:
    """Image, DICOM and video files under ``raw_dir`` (recursive), sorted by relative path.

    Skipped: ``*_Annotation.png`` files, everything under the folder of
    ``annotation_pattern`` (relative to ``raw_dir``), csv/json/md/txt files, hidden files,
    and files with other extensions (counted in a logged warning). Two inputs with the same
    file stem in different folders raise :class:`InputError` (frame ids would collide).
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError(raw_dir, "raw folder does not exist",
                         "set data.raw_dir in params.yaml to a folder of images/DICOM/videos "
                         "(or run the synthesize stage)")
    ann_dir = Path(annotation_pattern).parent.as_posix() if annotation_pattern else "."
    readable = DICOM_EXTS + VIDEO_EXTS + STILL_EXTS
    found, unknown = [], []
    for path in sorted(raw_dir.rglob("*"), key=lambda p: p.relative_to(raw_dir).as_posix()):
        if not path.is_file():
            continue
        rel = path.relative_to(raw_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if ann_dir not in ("", ".") and rel.as_posix().startswith(ann_dir.rstrip("/") + "/"):
            continue
        if path.name.endswith(ANNOTATION_SUFFIX):
            continue
        ext = path.suffix.lower()
        if ext in SKIP_EXTS:
            continue
        if ext in readable:
            found.append(path)
        else:
            unknown.append(rel.as_posix())
    if unknown:
        log.warning("skipped %d file(s) with unknown extensions under %s (e.g. %s); readable: %s",
                    len(unknown), raw_dir, ", ".join(unknown[:3]), " ".join(readable))
    by_stem: dict[str, Path] = {}
    for path in found:
        other = by_stem.get(path.stem)
        if other is not None:
            raise InputError(path, f"has the same file name (stem {path.stem!r}) as {other}",
                             "rename one of them: frame ids and label rows are matched by file name")
        by_stem[path.stem] = path
    return found


def kind_of(path) -> str:
    """'dicom', 'video' or 'still' from the file extension."""
    ext = Path(path).suffix.lower()
    if ext in DICOM_EXTS:
        return "dicom"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in STILL_EXTS:
        return "still"
    raise ValueError(f"{path}: not a readable input extension")


def read_file(path) -> FileFrames:
    """Read any supported input file."""
    kind = kind_of(path)
    if kind == "dicom":
        return read_dicom(path)
    if kind == "video":
        frames = read_video(path)
        return FileFrames(frames, multi_frame=True)
    frames = read_still(path)
    return FileFrames(frames, multi_frame=frames.shape[0] > 1)


def frame_ids(stem: str, n_frames: int, multi_frame: bool) -> list[str]:
    """``stem`` for a single-frame file, ``f"{stem}_f{index:03d}"`` for each frame otherwise."""
    if not multi_frame:
        return [stem]
    return [f"{stem}_f{i:03d}" for i in range(n_frames)]


# ----------------------------------------------------------------------------- pixels

def luminance(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (...) uint8 luminance, ITU-R BT.601 weights, rounded."""
    rgb = np.asarray(rgb, dtype=np.float64)[..., :3]
    y = rgb @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def to_uint8(arr: np.ndarray, name="") -> np.ndarray:
    """Grayscale values of any dtype -> uint8. uint8 and bool pass; others are rescaled
    from their min..max to 0..255 (a constant array becomes 0) with a logged note."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float64)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    log.info("%s: %s pixel values %g..%g rescaled linearly to 8 bit", name, arr.dtype, lo, hi)
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def read_still(path) -> np.ndarray:
    """A still image (PNG/JPEG/BMP/TIFF, every page of a multi-page TIFF) -> (N, H, W) uint8."""
    from PIL import Image, ImageSequence

    path = Path(path)
    try:
        with Image.open(path) as im:
            pages = []
            for page in ImageSequence.Iterator(im):
                pages.append(_pil_to_array(page))
    except (OSError, ValueError, SyntaxError) as err:
        raise InputError(path, f"cannot read image ({err})",
                         "replace the file with a readable PNG/JPEG/BMP/TIFF or remove it") from err
    shapes = {p.shape for p in pages}
    if len(shapes) != 1:
        raise InputError(path, f"pages have different sizes {sorted(shapes)}",
                         "split the file into single images")
    stack = np.stack(pages)
    if stack.dtype != np.uint8:
        stack = to_uint8(stack, path)
    return stack


def _pil_to_array(im) -> np.ndarray:
    """One PIL image -> 2-D array (uint8 for 8-bit modes, the raw values otherwise)."""
    mode = im.mode
    if mode == "L":
        return np.asarray(im)
    if mode == "LA":
        return np.asarray(im)[..., 0]
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode.startswith("I") or mode == "F":
        return np.asarray(im)
    return luminance(np.asarray(im.convert("RGB")))


def read_video(path) -> np.ndarray:
    """All frames of a video (PyAV) -> (N, H, W) uint8 luminance."""
    import av

    path = Path(path)
    fix = "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`) or remove it"
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(path, "holds no video stream", fix)
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                frames.append(luminance(frame.to_ndarray(format="rgb24")))
    except InputError:
        raise
    except Exception as err:  # PyAV raises many FFmpeg error classes
        raise InputError(path, f"video cannot be decoded ({type(err).__name__}: {err})", fix) from err
    if not frames:
        raise InputError(path, "video has no decodable frames", fix)
    return np.stack(frames)


def read_dicom(path) -> FileFrames:
    """Single- or multi-frame DICOM -> frames, pixel spacing (if any) and PatientID."""
    import pydicom

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:
        raise InputError(path, f"cannot read DICOM ({type(err).__name__}: {err})",
                         "replace the file with a valid DICOM file or remove it") from err
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise InputError(path, "DICOM has no pixel data (e.g. a report or structured document)",
                         "remove it from data.raw_dir or export the image series")
    try:
        arr = ds.pixel_array  # pydicom converts YBR colour spaces to RGB
    except Exception as err:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise InputError(path, f"DICOM pixel data cannot be decoded (transfer syntax {syntax}: {err})",
                         "convert it to uncompressed DICOM (e.g. `gdcmconv --raw`) or install the "
                         "pixel data handler pydicom names") from err
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if n_frames == 1:
        arr = arr[None]
    if samples > 1:
        if arr.dtype != np.uint8:
            arr = to_uint8(arr, path)
        arr = luminance(arr)
    elif arr.dtype != np.uint8:
        arr = to_uint8(arr, path)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        log.warning("%s: MONOCHROME1 (inverted grayscale) kept as stored", path)
    spacing, source = dicom_spacing(ds, path)
    patient = str(ds.get("PatientID", "") or "").strip()
    return FileFrames(np.ascontiguousarray(arr), multi_frame=n_frames > 1,
                      spacing_mm=spacing, spacing_source=source, patient_id=patient)


# ----------------------------------------------------------------------------- spacing

def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _pair_spacing(values, path, tag: str) -> float | None:
    """DICOM (row, column) spacing -> the column (x) spacing; warn when not square."""
    try:
        row, col = (_positive(v) for v in list(values)[:2])
    except (TypeError, ValueError):
        return None
    if col is None:
        return None
    if row is not None and not math.isclose(row, col, rel_tol=1e-6):
        log.warning("%s: non-square %s (row %g mm, column %g mm); using the column (x) spacing",
                    path, tag, row, col)
    return col


def dicom_spacing(ds, path="") -> tuple[float | None, str]:
    """Pixel spacing in mm from a DICOM dataset and the tag it came from, first found wins:

    1. ``PixelSpacing`` (also inside ``SharedFunctionalGroupsSequence`` / ``PixelMeasuresSequence``),
    2. ``SequenceOfUltrasoundRegions[0].PhysicalDeltaX`` (cm, so * 10),
    3. ``ImagerPixelSpacing``.

    Non-square spacing: the column (x) spacing is used and a warning logged.
    Returns ``(None, "")`` when none is present and valid.
    """
    if "PixelSpacing" in ds:
        v = _pair_spacing(ds.PixelSpacing, path, "PixelSpacing")
        if v is not None:
            return v, "dicom:PixelSpacing"
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        measures = shared[0].get("PixelMeasuresSequence")
        if measures and "PixelSpacing" in measures[0]:
            v = _pair_spacing(measures[0].PixelSpacing, path, "PixelSpacing")
            if v is not None:
                return v, "dicom:PixelSpacing"
    regions = ds.get("SequenceOfUltrasoundRegions")
    if regions:
        region = regions[0]
        units = region.get("PhysicalUnitsXDirection", 3)
        dx = _positive(region.get("PhysicalDeltaX"))
        if dx is not None and units == 3:  # 3 = cm
            dy = _positive(region.get("PhysicalDeltaY"))
            if dy is not None and not math.isclose(abs(dx), abs(dy), rel_tol=1e-6):
                log.warning("%s: non-square ultrasound region (dx %g cm, dy %g cm); using dx",
                            path, dx, dy)
            return dx * 10.0, "dicom:PhysicalDeltaX"
        if dx is not None:
            log.warning("%s: PhysicalDeltaX units code %s is not cm (3); ignored", path, units)
    if "ImagerPixelSpacing" in ds:
        v = _pair_spacing(ds.ImagerPixelSpacing, path, "ImagerPixelSpacing")
        if v is not None:
            return v, "dicom:ImagerPixelSpacing"
    return None, ""


def read_sidecar(path) -> dict:
    """The sidecar ``<stem>.json`` next to ``path`` ({} when absent)."""
    path = Path(path)
    side = path.with_suffix(".json")
    if not side.exists():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError) as err:
        raise InputError(side, f"sidecar is not valid JSON ({err})",
                         'write it as {"pixel_spacing_mm": 0.2, "subject_id": "..."}') from err
    if not isinstance(data, dict):
        raise InputError(side, "sidecar must hold a JSON object",
                         'write it as {"pixel_spacing_mm": 0.2, "subject_id": "..."}')
    if "pixel_spacing_mm" in data and _positive(data["pixel_spacing_mm"]) is None:
        raise InputError(side, f"pixel_spacing_mm = {data['pixel_spacing_mm']!r} is not a "
                         "positive number", "set it to the pixel size in millimetres")
    return data


def read_pixel_size_table(csv_path, columns: dict, report=None) -> dict[str, float]:
    """Pixel sizes from a table (HC18 layout: ``filename, pixel size(mm)``).

    ``columns`` = ``{"image": header, "spacing": header}`` (params ``data.pixel_size_columns``).
    Returns image name as written -> spacing (first row wins). A row with a bad value raises
    InputError, or, when ``report(error, action)`` is given, is reported and skipped.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise InputError(csv_path, "pixel-size table not found",
                         "set data.pixel_size_csv (relative to data.raw_dir) or '' for none")
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.columns = [c.strip() for c in df.columns]
    want = {k: str(columns.get(k, "")).strip() for k in ("image", "spacing")}
    missing = [h for h in want.values() if h not in df.columns]
    if missing:
        raise InputError(csv_path, f"missing column(s) {missing}; present: {list(df.columns)}",
                         "set data.pixel_size_columns.image / .spacing to the table's headers")
    out: dict[str, float] = {}
    for i, (name, value) in enumerate(zip(df[want["image"]], df[want["spacing"]])):
        v = _positive(str(value).strip())
        if v is None:
            err = InputError(csv_path, f"column {want['spacing']!r}: {value!r} is not a positive "
                             "number", "correct the pixel size (mm) in that row", row=i + 2)
            if report is None:
                raise err
            report(err, "row skipped")
            continue
        out.setdefault(str(name).strip().replace("\\", "/"), v)
    return out


def lookup_by_name(table: dict, rel_path: str):
    """Find a value keyed by relative path, file name or stem of ``rel_path`` (None if absent)."""
    p = Path(rel_path)
    for key in (p.as_posix(), p.name, p.stem):
        if key in table:
            return table[key]
    return None


# ----------------------------------------------------------------------------- subjects

def compile_subject_pattern(pattern: str) -> re.Pattern:
    from .params import ParamError

    try:
        rx = re.compile(pattern)
    except re.error as err:
        raise ParamError(f"params.yaml: data.subject_pattern {pattern!r} is not a valid regex: {err}")
    if "subject" not in rx.groupindex:
        raise ParamError(f"params.yaml: data.subject_pattern {pattern!r} needs a named group "
                         "(?P<subject>...)")
    return rx


def subject_from_stem(stem: str, pattern) -> str | None:
    """Group ``subject`` of ``pattern`` searched in ``stem``; None when it does not match.

    HC18 ``014_2HC`` -> ``014``; synthetic ``sub014_2HC`` -> ``sub014``
    with the default ``^(?P<subject>[A-Za-z]*\\d+)``.
    """
    rx = pattern if isinstance(pattern, re.Pattern) else compile_subject_pattern(pattern)
    m = rx.search(stem)
    if m is None or not m.group("subject"):
        return None
    return m.group("subject")


def subject_id(stem: str, pattern, patient_id: str = "", sidecar_id=None) -> str:
    """DICOM PatientID if non-empty, else the sidecar's ``subject_id``, else ``pattern`` on the
    stem, else the stem itself (with a logged warning: each such file is its own subject)."""
    if patient_id and str(patient_id).strip():
        return str(patient_id).strip()
    if sidecar_id is not None and str(sidecar_id).strip():
        return str(sidecar_id).strip()
    found = subject_from_stem(stem, pattern)
    if found is not None:
        return found
    log.warning("%s: subject_pattern does not match; using the file stem as subject id", stem)
    return stem

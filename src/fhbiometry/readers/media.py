"""Frames from DICOM (single/multi-frame), video (PyAV) and still images; pixel spacing; subject ids.

Every frame becomes a 2-D ``uint8`` grayscale array:

* 8-bit grayscale is kept as is;
* RGB (and DICOM YBR, which pydicom converts to RGB) becomes luminance
  ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), rounded;
* more than 8 bits (16-bit DICOM or PNG, float TIFF) is rescaled linearly from the file's
  minimum..maximum (over all frames of the file, so a cine keeps one mapping) to 0..255,
  and a note is logged.

Nothing else is applied (no cropping, no contrast change, no resizing).

Every conversion or guess is returned as a note ``(name, detail)`` in :attr:`FileFrames.notes`
(names and actions in :data:`NOTES`); ``extract`` records each in issues.csv and the QC report
counts them (``inputs`` in metrics/qc.json). An image, DICOM frame or video frame larger than
``max_pixels`` (params ``data.max_image_pixels``) raises :class:`InputError`, checked from the
header before decoding where the format allows (stills, DICOM; video: the stream header).

Bad inputs raise :class:`InputError`, whose message names the file (and row) and the fix.
"""
from __future__ import annotations

import json
import logging
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DICOM_EXTS = (".dcm", ".dicom")
VIDEO_EXTS = (".mp4", ".avi", ".mov")
STILL_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SKIP_EXTS = (".csv", ".json", ".md", ".txt")
ANNOTATION_SUFFIX = "_Annotation.png"
DEFAULT_MAX_PIXELS = 50_000_000  # params data.max_image_pixels

# Conversions and guesses made about an input, never silent: name -> action in issues.csv.
NOTES = {
    "colour_to_grey": "converted",              # RGB/YBR/palette/CMYK -> BT.601 luminance
    "alpha_dropped": "converted",               # an alpha channel or palette transparency ignored
    "rescaled_to_8bit": "converted",            # 16-bit / 32-bit / float values rescaled min..max
    "bilevel_to_grey": "converted",             # 1-bit image -> 0/255
    "monochrome1_kept": "kept as stored",       # DICOM MONOCHROME1 (inverted grey) not inverted
    "modality_not_us": "kept",                  # DICOM Modality is not US (or absent)
    "spacing_non_square": "column spacing used",  # DICOM row and column spacing differ
    "spacing_units_ignored": "ignored",         # ultrasound region PhysicalDeltaX not in cm
    "spacing_default": "default spacing used",  # no spacing found: data.default_spacing_mm
    "subject_from_stem": "stem used as subject",  # data.on_unmatched_subject: accept
}


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
    notes: list = field(default_factory=list)  # (name, detail) pairs, names from NOTES


def note(notes: list | None, name: str, detail: str) -> None:
    """Record a conversion or guess (``name`` from NOTES) when a notes list is given."""
    if name not in NOTES:
        raise ValueError(f"unknown note {name!r}")
    if notes is not None and (name, detail) not in notes:
        notes.append((name, detail))


def note_name(problem) -> str | None:
    """The note name of an issues.csv ``problem`` written by a note, None for a real problem."""
    name = str(problem).split(":", 1)[0]
    return name if name in NOTES else None


def error_detail(err: Exception, path: Path) -> str:
    """A library error as ``Type: message`` with the file's full path shortened to its name
    (issues.csv stays free of machine paths)."""
    return f"{type(err).__name__}: {str(err).replace(str(path), Path(path).name)}"


def check_pixels(path, width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """InputError when ``width * height`` exceeds ``max_pixels`` (params data.max_image_pixels)."""
    if max_pixels and int(width) * int(height) > max_pixels:
        raise InputError(path, f"image too large: {what} of {int(width)} x {int(height)} = "
                         f"{int(width) * int(height)} pixels exceeds data.max_image_pixels = {max_pixels}",
                         "downscale or crop the file, remove it, or raise data.max_image_pixels "
                         "if the size is genuine and memory allows")


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


def read_file(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFrames:
    """Read any supported input file (frames over ``max_pixels`` pixels raise InputError)."""
    kind = kind_of(path)
    if kind == "dicom":
        return read_dicom(path, max_pixels)
    notes: list = []
    if kind == "video":
        frames = read_video(path, max_pixels)
        return FileFrames(frames, multi_frame=True, notes=notes)
    frames = read_still(path, max_pixels, notes)
    return FileFrames(frames, multi_frame=frames.shape[0] > 1, notes=notes)


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


def to_uint8(arr: np.ndarray, name="", notes: list | None = None) -> np.ndarray:
    """Grayscale values of any dtype -> uint8. uint8 passes, bool becomes 0/255; others are
    rescaled from their min..max to 0..255 (a constant array becomes 0) with a logged note."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        note(notes, "bilevel_to_grey", "1-bit values -> 0/255")
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float64)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    log.info("%s: %s pixel values %g..%g rescaled linearly to 8 bit", name, arr.dtype, lo, hi)
    note(notes, "rescaled_to_8bit", f"{arr.dtype} values {lo:g}..{hi:g} -> 0..255")
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


@contextmanager
def pillow_limit_off():
    """Pillow's own decompression-bomb check off: the caller checks the size from the header
    (:func:`check_pixels`) before decoding, so the error names the file and the params key."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_still(path, max_pixels: int = DEFAULT_MAX_PIXELS, notes: list | None = None) -> np.ndarray:
    """A still image (PNG/JPEG/BMP/TIFF, every page of a multi-page TIFF) -> (N, H, W) uint8."""
    from PIL import Image, ImageSequence

    path = Path(path)
    try:
        with pillow_limit_off(), Image.open(path) as im:
            pages = []
            for page in ImageSequence.Iterator(im):
                check_pixels(path, *page.size, max_pixels)  # header only, before decoding
                pages.append(_pil_to_array(page, notes))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise InputError(path, f"cannot read image: {error_detail(err, path)}",
                         "replace the file with a readable PNG/JPEG/BMP/TIFF or remove it") from err
    shapes = {p.shape for p in pages}
    if len(shapes) != 1:
        raise InputError(path, f"pages have different sizes {sorted(shapes)}",
                         "split the file into single images")
    stack = np.stack(pages)
    if stack.dtype != np.uint8:
        stack = to_uint8(stack, path, notes)
    return stack


def _pil_to_array(im, notes: list | None = None) -> np.ndarray:
    """One PIL image -> 2-D array (uint8 for 8-bit modes, the raw values otherwise)."""
    mode = im.mode
    if "A" in mode or "a" in mode or "transparency" in im.info:
        note(notes, "alpha_dropped", f"mode {mode}: transparency ignored")
    if mode == "L":
        return np.asarray(im)
    if mode == "LA":
        return np.asarray(im)[..., 0]
    if mode == "1":
        note(notes, "bilevel_to_grey", "mode 1 -> 0/255")
        return np.asarray(im.convert("L"))
    if mode.startswith("I") or mode == "F":
        return np.asarray(im)
    note(notes, "colour_to_grey", f"mode {mode} -> BT.601 luminance")
    return luminance(np.asarray(im.convert("RGB")))


def read_video(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """All frames of a video (PyAV) -> (N, H, W) uint8 luminance (BT.601 of the RGB decode)."""
    import av

    path = Path(path)
    fix = "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`) or remove it"
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(path, "holds no video stream", fix)
            stream = container.streams.video[0]
            check_pixels(path, stream.codec_context.width, stream.codec_context.height,
                         max_pixels, "video frame")
            for frame in container.decode(stream):
                check_pixels(path, frame.width, frame.height, max_pixels, "video frame")
                frames.append(luminance(frame.to_ndarray(format="rgb24")))
    except InputError:
        raise
    except Exception as err:  # PyAV raises many FFmpeg error classes
        raise InputError(path, f"video cannot be decoded: {error_detail(err, path)}", fix) from err
    if not frames:
        raise InputError(path, "video has no decodable frames", fix)
    return np.stack(frames)


def read_dicom(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFrames:
    """Single- or multi-frame DICOM -> frames, pixel spacing (if any), PatientID and notes."""
    import pydicom

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:
        raise InputError(path, f"cannot read DICOM: {error_detail(err, path)}",
                         "replace the file with a valid DICOM file or remove it") from err
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise InputError(path, "DICOM has no pixel data (a report or structured document, or a "
                         "file truncated before its pixel data)",
                         "remove it from data.raw_dir, export the image series, or copy the file again")
    check_pixels(path, ds.get("Columns", 0) or 0, ds.get("Rows", 0) or 0, max_pixels, "DICOM frame")
    notes: list = []
    modality = str(ds.get("Modality", "") or "").strip()
    if modality != "US":
        log.warning("%s: Modality is %r, not US (ultrasound); read anyway", path, modality)
        note(notes, "modality_not_us", f"Modality {modality!r}")
    arr = _dicom_grey(ds, path, notes)
    spacing, source = dicom_spacing(ds, path, notes)
    patient = str(ds.get("PatientID", "") or "").strip()
    return FileFrames(np.ascontiguousarray(arr), multi_frame=int(ds.get("NumberOfFrames", 1) or 1) > 1,
                      spacing_mm=spacing, spacing_source=source, patient_id=patient, notes=notes)


def _dicom_grey(ds, path: Path, notes: list) -> np.ndarray:
    """The decoded pixel data as (N, H, W) uint8 grey (colour -> luminance, > 8 bit rescaled)."""
    try:
        arr = ds.pixel_array  # pydicom converts YBR colour spaces to RGB
    except Exception as err:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise InputError(path, f"DICOM pixel data cannot be decoded: transfer syntax {syntax}: "
                         f"{error_detail(err, path)}",
                         "copy the file again if it is truncated, convert it to uncompressed DICOM "
                         "(e.g. `gdcmconv --raw`) or install the pixel data handler pydicom names") from err
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if n_frames == 1:
        arr = arr[None]
    if samples > 1:
        if arr.dtype != np.uint8:
            arr = to_uint8(arr, path, notes)
        note(notes, "colour_to_grey",
             f"{ds.get('PhotometricInterpretation', '')} -> BT.601 luminance")
        arr = luminance(arr)
    elif arr.dtype != np.uint8:
        arr = to_uint8(arr, path, notes)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        log.warning("%s: MONOCHROME1 (inverted grayscale) kept as stored", path)
        note(notes, "monochrome1_kept", "inverted grey kept as stored (bright = low values)")
    return arr


# ----------------------------------------------------------------------------- spacing

def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _pair_spacing(values, path, tag: str, notes: list | None = None) -> float | None:
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
        note(notes, "spacing_non_square", f"{tag} row {row:g} mm, column {col:g} mm: column used")
    return col


def dicom_spacing(ds, path="", notes: list | None = None) -> tuple[float | None, str]:
    """Pixel spacing in mm from a DICOM dataset and the tag it came from, first found wins:

    1. ``PixelSpacing`` (also inside ``SharedFunctionalGroupsSequence`` / ``PixelMeasuresSequence``),
    2. ``SequenceOfUltrasoundRegions[0].PhysicalDeltaX`` (cm, so * 10),
    3. ``ImagerPixelSpacing``.

    Non-square spacing: the column (x) spacing is used and a warning logged.
    Returns ``(None, "")`` when none is present and valid.
    """
    if "PixelSpacing" in ds:
        v = _pair_spacing(ds.PixelSpacing, path, "PixelSpacing", notes)
        if v is not None:
            return v, "dicom:PixelSpacing"
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        measures = shared[0].get("PixelMeasuresSequence")
        if measures and "PixelSpacing" in measures[0]:
            v = _pair_spacing(measures[0].PixelSpacing, path, "PixelSpacing", notes)
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
            note(notes, "spacing_non_square", f"ultrasound region dx {dx:g} cm, dy {dy:g} cm: dx used")
            return dx * 10.0, "dicom:PhysicalDeltaX"
        if dx is not None:
            log.warning("%s: PhysicalDeltaX units code %s is not cm (3); ignored", path, units)
            note(notes, "spacing_units_ignored", f"PhysicalDeltaX units code {units} is not cm (3)")
    if "ImagerPixelSpacing" in ds:
        v = _pair_spacing(ds.ImagerPixelSpacing, path, "ImagerPixelSpacing", notes)
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
        raise InputError(side, f"sidecar is not valid JSON: {error_detail(err, side)}",
                         'write it as {"pixel_spacing_mm": 0.2, "subject_id": "..."}') from err
    if not isinstance(data, dict):
        raise InputError(side, "sidecar must hold a JSON object",
                         'write it as {"pixel_spacing_mm": 0.2, "subject_id": "..."}')
    if "pixel_spacing_mm" in data and _positive(data["pixel_spacing_mm"]) is None:
        raise InputError(side, f"pixel_spacing_mm = {data['pixel_spacing_mm']!r} is not a "
                         "positive number", "set it to the pixel size in millimetres")
    return data


def read_table_column(csv_path, image: str, column: str, what: str, fix: str, report=None) -> dict[str, float]:
    """Positive numbers of one column of a per-image table (the pixel-size table): image name as
    written -> value (first row wins). A missing file or column raises InputError naming it and
    ``fix``; a row with a bad value raises InputError, or, when ``report(error, action)`` is
    given, is reported and skipped."""
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise InputError(csv_path, "pixel-size table not found",
                         "set data.pixel_size_csv (relative to data.raw_dir) or '' for none")
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.columns = [c.strip() for c in df.columns]
    missing = [h for h in (image, column) if h not in df.columns]
    if missing:
        raise InputError(csv_path, f"missing column(s) {missing}; present: {list(df.columns)}", fix)
    out: dict[str, float] = {}
    for i, (name, value) in enumerate(zip(df[image], df[column])):
        v = _positive(str(value).strip())
        if v is None:
            err = InputError(csv_path, f"column {column!r}: {value!r} is not a positive number",
                             f"correct the {what} in that row", row=i + 2)
            if report is None:
                raise err
            report(err, "row skipped" if what == "pixel size (mm)" else f"{what} skipped")
            continue
        out.setdefault(str(name).strip().replace("\\", "/"), v)
    return out


def read_pixel_size_table(csv_path, columns: dict, report=None) -> dict[str, float]:
    """Pixel sizes from a table (HC18 layout: ``filename, pixel size(mm)``); ``columns`` =
    ``{"image": header, "spacing": header}`` (params ``data.pixel_size_columns``)."""
    return read_table_column(csv_path, str(columns.get("image", "")).strip(),
                             str(columns.get("spacing", "")).strip(), "pixel size (mm)",
                             "set data.pixel_size_columns.image / .spacing to the table's headers", report)


def read_reference_hc(csv_path, columns: dict, report=None) -> dict[str, float]:
    """Reference head circumferences (mm) from the pixel-size table's column ``columns["hc"]``
    (HC18: ``head circumference (mm)``); {} when that key is '' or absent."""
    header = str(columns.get("hc", "") or "").strip()
    if not header:
        return {}
    return read_table_column(csv_path, str(columns.get("image", "")).strip(), header,
                             "head circumference (mm)",
                             "set data.pixel_size_columns.hc to the table's HC header, or '' for none", report)


def lookup_by_name(table: dict, rel_path: str):
    """Find a value keyed by relative path, file name or stem of ``rel_path`` (None if absent)."""
    p = Path(rel_path)
    for key in (p.as_posix(), p.name, p.stem):
        if key in table:
            return table[key]
    return None


# ----------------------------------------------------------------------------- subjects

def compile_subject_pattern(pattern: str) -> re.Pattern:
    """``data.subject_pattern`` compiled (``schema.Data`` checks it has a group ``subject``)."""
    return re.compile(pattern)


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


SUBJECT_SOURCES = ("dicom", "sidecar", "pattern", "stem")


def subject_with_source(stem: str, pattern, patient_id: str = "", sidecar_id=None) -> tuple[str, str]:
    """``(subject id, source)``: DICOM PatientID if non-empty (``dicom``), else the sidecar's
    ``subject_id`` (``sidecar``), else ``pattern`` on the stem (``pattern``), else the stem
    itself (``stem``: each such file is its own subject; the caller decides if that is allowed)."""
    if patient_id and str(patient_id).strip():
        return str(patient_id).strip(), "dicom"
    if sidecar_id is not None and str(sidecar_id).strip():
        return str(sidecar_id).strip(), "sidecar"
    found = subject_from_stem(stem, pattern)
    if found is not None:
        return found, "pattern"
    return stem, "stem"


def subject_id(stem: str, pattern, patient_id: str = "", sidecar_id=None) -> str:
    """The subject id of :func:`subject_with_source` (a warning is logged for the stem fallback)."""
    subject, source = subject_with_source(stem, pattern, patient_id, sidecar_id)
    if source == "stem":
        log.warning("%s: subject_pattern does not match; using the file stem as subject id", stem)
    return subject

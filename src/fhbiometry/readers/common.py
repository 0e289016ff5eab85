"""What every reader shares: the error, the record of conversions (notes), the size limit,
the pixel conversions to 8-bit grey and the record a reader returns (:class:`FileFrames`).

Every frame becomes a 2-D ``uint8`` grayscale array:

* 8-bit grayscale is kept as is;
* RGB (and DICOM YBR, which pydicom converts to RGB) becomes luminance
  ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), rounded;
* more than 8 bits (16-bit DICOM or PNG, float TIFF) is rescaled linearly from the file's
  minimum..maximum (over all frames of the file, so a cine keeps one mapping) to 0..255,
  and a note is logged.

Every conversion or guess is returned as a note ``(name, detail)`` in :attr:`FileFrames.notes`
(names and actions in :data:`NOTES`); ``extract`` records each in issues.csv and the QC report
counts them (``inputs`` in metrics/qc.json).
"""
from __future__ import annotations

import logging
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

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
    # added later: counted in metrics/qc.json only where they occur (ALWAYS_COUNTED)
    "exif_orientation_applied": "rotated",      # a still's EXIF orientation applied (as displayed)
    "frame_count_from_data": "data length trusted",  # DICOM NumberOfFrames disagrees with the data
    "regions_unused": "no region spacing",      # several / no 2-D tissue ultrasound regions
    "hidden_file_skipped": "file skipped",      # a file or folder whose name starts with '.'
    "subject_ids_merged": "one subject",        # ids that differ only by case, space or Unicode form
}
# The note names metrics/qc.json always lists (0 when none), as before later names were added;
# the others are listed only where they occur, so existing QC reports keep their bytes.
ALWAYS_COUNTED = tuple(list(NOTES)[:10])


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
    """What one raw file holds: ``frames`` (N, H, W) uint8 and DICOM metadata where present.

    ``regions``: the DICOM's ultrasound regions (``readers.regions.Region``, in the file's
    order; empty for other files), for cropping to the tissue region (``tissue_region``)."""

    frames: np.ndarray
    multi_frame: bool
    spacing_mm: float | None = None
    spacing_source: str = ""
    patient_id: str = ""
    notes: list = field(default_factory=list)  # (name, detail) pairs, names from NOTES
    regions: tuple = ()


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


# a plain decimal number: no '1_0_0' (Python's float() accepts underscores), no 'inf' / 'nan'
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_number(value) -> float | None:
    """A finite number written plainly (``12``, ``-3.5``, ``1e-3``), else None (also for
    ``1_0_0``, ``inf``, ``nan``, '' and comma decimals)."""
    text = str(value).strip()
    if not _NUMBER.fullmatch(text):
        return None
    v = float(text)
    return v if math.isfinite(v) else None


def positive(value) -> float | None:
    """``value`` as a finite number > 0, else None (numbers pass as they are, text is parsed
    by :func:`parse_number`)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        v = float(value)
    else:
        v = parse_number(value)
        if v is None:
            return None
    return v if math.isfinite(v) and v > 0 else None


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
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved

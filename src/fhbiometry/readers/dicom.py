"""DICOM (single- and multi-frame): frames, pixel spacing, PatientID, ultrasound regions.

The pixel spacing, first found wins (:func:`dicom_spacing`):

1. ``PixelSpacing`` (also inside ``SharedFunctionalGroupsSequence`` / ``PixelMeasuresSequence``),
2. the one 2-D tissue region of ``SequenceOfUltrasoundRegions`` (``PhysicalDeltaX``, cm, so * 10;
   ``readers.regions.tissue_region``: never the first region whatever it is; several or none
   give no region spacing, with a note),
3. ``ImagerPixelSpacing``.

Non-square spacing: the column (x) spacing is used and a note recorded. A negative spacing
component is refused (InputError). ``NumberOfFrames`` that disagrees with the pixel data: the
frames the data holds are read, with a note (fewer data than declared: InputError).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from fhbiometry.readers.common import (DEFAULT_MAX_PIXELS, FileFrames, InputError, check_pixels, error_detail,
                                       luminance, note, positive, to_uint8)
from fhbiometry.readers.regions import read_regions, tissue_region
from fhbiometry.readers.registry import register

log = logging.getLogger(__name__)

PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@register(".dcm", ".dicom", kind="dicom")
def read_dicom(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFrames:
    """Single- or multi-frame DICOM -> frames, pixel spacing (if any), PatientID, regions, notes."""
    import pydicom  # lazy: pydicom only when a DICOM is read

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:
        raise InputError(path, f"cannot read DICOM: {error_detail(err, path)}",
                         "replace the file with a valid DICOM file or remove it") from err
    if not any(tag in ds for tag in PIXEL_TAGS):
        raise InputError(path, "DICOM has no pixel data (a report or structured document, or a "
                         "file truncated before its pixel data)",
                         "remove it from data.raw_dir, export the image series, or copy the file again")
    check_pixels(path, ds.get("Columns", 0) or 0, ds.get("Rows", 0) or 0, max_pixels, "DICOM frame")
    notes: list = []
    modality = str(ds.get("Modality", "") or "").strip()
    if modality != "US":
        log.warning("%s: Modality is %r, not US (ultrasound); read anyway", path, modality)
        note(notes, "modality_not_us", f"Modality {modality!r}")
    arr = dicom_grey(ds, path, notes)
    regions = read_regions(ds)
    spacing, source = dicom_spacing(ds, path, notes, regions)
    patient = str(ds.get("PatientID", "") or "").strip()
    return FileFrames(np.ascontiguousarray(arr), multi_frame=arr.shape[0] > 1, spacing_mm=spacing,
                      spacing_source=source, patient_id=patient, notes=notes, regions=regions)


def decode(ds, path: Path) -> np.ndarray:
    """``ds.pixel_array`` (pydicom converts YBR colour spaces to RGB); InputError if it fails."""
    try:
        return ds.pixel_array
    except Exception as err:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise InputError(path, f"DICOM pixel data cannot be decoded: transfer syntax {syntax}: "
                         f"{error_detail(err, path)}",
                         "copy the file again if it is truncated, correct NumberOfFrames, convert it to "
                         "uncompressed DICOM (e.g. `gdcmconv --raw`) or install the pixel data handler "
                         "pydicom names") from err


def as_frames(arr: np.ndarray, ds, path: Path, notes: list) -> np.ndarray:
    """The decoded array as (N, H, W[, 3]) with N the number of frames the pixel data holds;
    a note when NumberOfFrames (absent = 1) says otherwise, never a 3-D "frame"."""
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frame_dims = 3 if samples > 1 else 2
    if arr.ndim == frame_dims:
        arr = arr[None]
    if arr.ndim != frame_dims + 1:
        raise InputError(path, f"DICOM pixel data decodes to shape {arr.shape}, not frames of "
                         f"{'colour' if samples > 1 else 'grey'} pixels",
                         "check Rows, Columns, SamplesPerPixel and NumberOfFrames, or remove the file")
    declared = ds.get("NumberOfFrames", None)
    try:
        expected = 1 if declared is None or declared == "" else int(declared)
    except (TypeError, ValueError):
        expected = None
    if expected != arr.shape[0]:
        log.warning("%s: NumberOfFrames %r but the pixel data holds %d frame(s); read %d",
                    path, declared, arr.shape[0], arr.shape[0])
        note(notes, "frame_count_from_data", f"NumberOfFrames {declared!r} but the pixel data holds "
             f"{arr.shape[0]} frame(s): {arr.shape[0]} read")
    return arr


def dicom_grey(ds, path: Path, notes: list) -> np.ndarray:
    """The decoded pixel data as (N, H, W) uint8 grey (colour -> luminance, > 8 bit rescaled)."""
    arr = as_frames(decode(ds, path), ds, path, notes)
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
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

def pair_spacing(values, path, tag: str, notes: list | None = None) -> float | None:
    """DICOM (row, column) spacing -> the column (x) spacing, a note when not square; None when
    absent or zero; InputError when a component is negative or not a number."""
    try:
        items = list(values)[:2] if not isinstance(values, (str, bytes)) else [values]
    except TypeError:
        items = [values]
    parsed = [positive(v) for v in items]
    bad = [v for v, p in zip(items, parsed) if p is None and not _is_zero(v)]
    if bad or len(items) != 2:
        raise InputError(path, f"{tag} [{', '.join(str(v) for v in items)}] is not two numbers > 0 "
                         "(row, column spacing in mm)",
                         f"correct or remove the {tag} tag (another spacing source is then used: "
                         "the ultrasound region, a sidecar, data.pixel_size_csv, data.default_spacing_mm)")
    row, col = parsed
    if col is None:
        return None
    if row is not None and not math.isclose(row, col, rel_tol=1e-6):
        log.warning("%s: non-square %s (row %g mm, column %g mm); using the column (x) spacing",
                    path, tag, row, col)
        note(notes, "spacing_non_square", f"{tag} row {row:g} mm, column {col:g} mm: column used")
    return col


def _is_zero(value) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def region_spacing(regions, path, notes: list | None) -> float | None:
    """The column spacing (mm) of the one 2-D tissue region, or None with a note saying why."""
    if not regions:
        return None
    region, why = tissue_region(regions)
    if region is None:
        log.warning("%s: ultrasound regions give no spacing: %s", path, why)
        note(notes, "regions_unused", why)
        return None
    if region.spacing_mm is None:
        name = "spacing_units_ignored" if "units" in region.note else "regions_unused"
        log.warning("%s: the tissue ultrasound region has no usable spacing: %s", path, region.note)
        note(notes, name, f"tissue region: {region.note}")
        return None
    dy, dx = region.spacing_mm
    if not math.isclose(dx, dy, rel_tol=1e-6):
        log.warning("%s: non-square ultrasound region (dy %g mm, dx %g mm); using dx", path, dy, dx)
        note(notes, "spacing_non_square", f"ultrasound region dy {dy:g} mm, dx {dx:g} mm: dx used")
    return dx


def dicom_spacing(ds, path="", notes: list | None = None, regions=None) -> tuple[float | None, str]:
    """Pixel spacing in mm from a DICOM dataset and the tag it came from (module docstring);
    ``(None, "")`` when none is present and valid. ``regions``: ``read_regions(ds)`` if read."""
    if "PixelSpacing" in ds:
        v = pair_spacing(ds.PixelSpacing, path, "PixelSpacing", notes)
        if v is not None:
            return v, "dicom:PixelSpacing"
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        measures = shared[0].get("PixelMeasuresSequence")
        if measures and "PixelSpacing" in measures[0]:
            v = pair_spacing(measures[0].PixelSpacing, path, "PixelSpacing", notes)
            if v is not None:
                return v, "dicom:PixelSpacing"
    v = region_spacing(read_regions(ds) if regions is None else regions, path, notes)
    if v is not None:
        return v, "dicom:PhysicalDeltaX"
    if "ImagerPixelSpacing" in ds:
        v = pair_spacing(ds.ImagerPixelSpacing, path, "ImagerPixelSpacing", notes)
        if v is not None:
            return v, "dicom:ImagerPixelSpacing"
    return None, ""

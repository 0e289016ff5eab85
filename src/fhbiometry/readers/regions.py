"""DICOM ultrasound regions (``SequenceOfUltrasoundRegions``, US Region Calibration module).

A scanner screen may hold several regions: the 2-D B-mode image, a Doppler or M-mode strip,
a second image. Each carries its own bounds and calibration. :func:`read_regions` reads all of
them (never raising on a missing or malformed attribute); :func:`tissue_region` chooses the one
2-D tissue region, or none with the reason, and never guesses between several.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SPATIAL_2D = 1      # RegionSpatialFormat 1 = 2-D (tissue or flow)
DATA_TISSUE = 1     # RegionDataType 1 = tissue
UNITS_CM = 3        # PhysicalUnitsX/YDirection 3 = cm


@dataclass(frozen=True)
class Region:
    """One ultrasound region: bounds in pixels (inclusive, as RegionLocationMinX0..MaxY1),
    its spatial format and data type codes (None when absent), ``spacing_mm`` = (dy, dx) in mm
    from PhysicalDeltaY / X when both units are cm, else None with ``note`` saying why."""

    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int | None
    data_type: int | None
    spacing_mm: tuple[float, float] | None
    note: str = ""


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _delta(value) -> float | None:
    """A physical delta as a finite number > 0 (sign ignored, as some scanners write it)."""
    try:
        v = abs(float(value))
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def region_spacing(item) -> tuple[tuple[float, float] | None, str]:
    """``((dy, dx) mm, "")`` of one region item, or ``(None, why)``."""
    ux, uy = _int(item.get("PhysicalUnitsXDirection")), _int(item.get("PhysicalUnitsYDirection"))
    dx, dy = _delta(item.get("PhysicalDeltaX")), _delta(item.get("PhysicalDeltaY"))
    if dx is None or dy is None:
        missing = [n for n, v in (("PhysicalDeltaX", dx), ("PhysicalDeltaY", dy)) if v is None]
        return None, f"{' and '.join(missing)} missing or not a number > 0"
    if ux != UNITS_CM or uy != UNITS_CM:
        return None, f"physical units codes X {ux}, Y {uy} are not cm ({UNITS_CM})"
    return (dy * 10.0, dx * 10.0), ""


def read_region(item) -> Region:
    """One item of SequenceOfUltrasoundRegions as a :class:`Region` (absent bounds: -1)."""
    bounds = [_int(item.get(k)) for k in ("RegionLocationMinX0", "RegionLocationMinY0",
                                          "RegionLocationMaxX1", "RegionLocationMaxY1")]
    spacing, why = region_spacing(item)
    return Region(*(-1 if b is None else b for b in bounds),
                  spatial_format=_int(item.get("RegionSpatialFormat")),
                  data_type=_int(item.get("RegionDataType")), spacing_mm=spacing, note=why)


def read_regions(ds) -> tuple[Region, ...]:
    """Every ultrasound region of a DICOM data set, in the file's order (empty without any)."""
    try:
        items = list(ds.get("SequenceOfUltrasoundRegions") or [])
    except TypeError:
        return ()
    return tuple(read_region(item) for item in items if hasattr(item, "get"))


def describe(region: Region) -> str:
    """``(x0, y0)-(x1, y1) format F type T`` for messages."""
    return (f"({region.x0}, {region.y0})-({region.x1}, {region.y1}) format {region.spatial_format} "
            f"type {region.data_type}")


def tissue_region(regions) -> tuple[Region | None, str]:
    """The single 2-D tissue region (spatial format 1, data type 1) and ``""``, or None and the
    reason: no region, no 2-D tissue region, or several (never a guess between them)."""
    regions = tuple(regions)
    if not regions:
        return None, "no ultrasound region"
    tissue = [r for r in regions if r.spatial_format == SPATIAL_2D and r.data_type == DATA_TISSUE]
    if not tissue:
        return None, (f"none of the {len(regions)} ultrasound region(s) is 2-D tissue (RegionSpatialFormat 1, "
                      f"RegionDataType 1): " + "; ".join(describe(r) for r in regions))
    if len(tissue) > 1:
        return None, (f"{len(tissue)} 2-D tissue ultrasound regions, none chosen: "
                      + "; ".join(describe(r) for r in tissue))
    return tissue[0], ""

"""Which files a measurement reads and what one file holds: the inputs found in files and
folders, each read with the extract stage's readers and spacing rules into a ``Scan``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fhbiometry.data.extract import index_inputs, resolve_spacing
from fhbiometry.measure.area import Area, choose_area, whole_frame
from fhbiometry.readers import media as rd
from fhbiometry.readers.media import InputError
from fhbiometry.readers.regions import tissue_region


@dataclass
class Scan:
    """One input file read: frames, spacing (NaN when unknown) and its source, ids, the reader's
    notes (conversions and guesses, ``(name, detail)`` pairs)."""

    path: Path
    rel: str
    frames: np.ndarray
    spacing: float
    spacing_source: str
    subject: str
    cine: str
    notes: list = field(default_factory=list)
    area: Area | None = None        # where the frames are measured (area.py); None: the whole frame

    def __post_init__(self):
        if self.area is None:
            self.area = whole_frame(*self.frames.shape[1:])


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


def read_scan(path: Path, rel: str, settings, subject_rx) -> Scan:
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
    area = choose_area(content.frames, list(content.regions), tissue_region(content.regions))
    notes = [f"{name}: {detail}" for name, detail in content.notes] + ([f"region: {area.note}"] if area.note else [])
    if area.spacing_mm is not None:     # the measured region's own spacing comes first
        spacing, source = area.spacing_mm, "dicom:tissue region PhysicalDeltaX"
    return Scan(path, rel, content.frames, float(spacing), source, subject, cine, notes, area)

"""The front door of the readers: find the inputs under a folder and read any of them.

``find_inputs`` lists what ``extract_frames`` and ``predict`` read (every extension of the
reader registry, ``readers.registry``); ``read_file`` reads one with the reader registered for
its extension (``readers.dicom``, ``readers.video``, ``readers.stills``, or one added elsewhere).
Nothing is applied to the pixels beyond the conversions to 8-bit grey of ``readers.common``
(and a still's EXIF orientation): no cropping, no contrast change, no resizing. Every
conversion or guess is a note (``readers.common.NOTES``). An image, DICOM frame or video frame
larger than ``max_pixels`` (params ``data.max_image_pixels``) raises :class:`InputError`, checked
from the header before decoding where the format allows.

Bad inputs raise :class:`InputError`, whose message names the file (and row) and the fix.
This module also gives the readers' public names in one place (``from fhbiometry.readers import
media as rd``: ``rd.read_sidecar``, ``rd.subject_with_source``, ...).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from fhbiometry.readers import dicom, stills, video  # noqa: F401  (registers the built-in readers)
from fhbiometry.readers.common import (ALWAYS_COUNTED, DEFAULT_MAX_PIXELS, NOTES, FileFrames,  # noqa: F401
                                       InputError, check_pixels, error_detail, luminance, note, note_name,
                                       pillow_limit_off, to_uint8)
from fhbiometry.readers.dicom import dicom_spacing, read_dicom  # noqa: F401
from fhbiometry.readers.registry import extensions, reader_for
from fhbiometry.readers.stills import read_still  # noqa: F401
from fhbiometry.readers.subjects import (DEFAULT_SUBJECT_PATTERN, compile_subject_pattern,  # noqa: F401
                                         canonical_subjects, normalise_subject, subject_from_stem,
                                         subject_id, subject_with_source)
from fhbiometry.readers.tables import (lookup_by_name, read_pixel_size_table, read_reference_hc,  # noqa: F401
                                       read_sidecar, read_table_column)
from fhbiometry.readers.video import read_video  # noqa: F401

log = logging.getLogger(__name__)

DICOM_EXTS = extensions("dicom")
VIDEO_EXTS = extensions("video")
STILL_EXTS = extensions("still")
SKIP_EXTS = (".csv", ".json", ".md", ".txt")
ANNOTATION_SUFFIX = "_Annotation.png"


# ----------------------------------------------------------------------------- discovery

def walk_files(raw_dir: Path):
    """Every file under ``raw_dir``, following symlinked folders (a folder reached twice, as
    through a link loop, is walked once): ``(path, relative posix path)``."""
    seen: set[str] = set()
    for top, dirs, files in os.walk(raw_dir, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in files:
            path = Path(top) / name
            if path.is_file():
                yield path, path.relative_to(raw_dir).as_posix()


def find_inputs(raw_dir, annotation_pattern: str = "", skipped: list | None = None) -> list[Path]:
    """Readable files under ``raw_dir`` (recursive, symlinked folders followed), sorted by
    relative path.

    Skipped: ``*_Annotation.png`` files, everything under the folder of ``annotation_pattern``
    (relative to ``raw_dir``), csv/json/md/txt files, hidden files and folders (a name starting
    with '.': counted in a logged warning and, with ``skipped``, appended to it as relative
    paths), and files with other extensions (counted in a logged warning). Two inputs with the
    same file stem in different folders raise :class:`InputError` (frame ids would collide).
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError(raw_dir, "raw folder does not exist",
                         "set data.raw_dir in params.yaml to a folder of images/DICOM/videos "
                         "(or run the synthesize stage)")
    ann_dir = Path(annotation_pattern).parent.as_posix() if annotation_pattern else "."
    readable = extensions()
    found, unknown, hidden = [], [], []
    for path, rel in sorted(walk_files(raw_dir), key=lambda item: item[1]):
        if ann_dir not in ("", ".") and rel.startswith(ann_dir.rstrip("/") + "/"):
            continue
        ext = path.suffix.lower()
        if path.name.endswith(ANNOTATION_SUFFIX) or ext in SKIP_EXTS:
            continue
        if any(part.startswith(".") for part in rel.split("/")):
            hidden.append(rel)
        elif ext in readable:
            found.append(path)
        else:
            unknown.append(rel)
    if unknown:
        log.warning("skipped %d file(s) with unknown extensions under %s (e.g. %s); readable: %s",
                    len(unknown), raw_dir, ", ".join(unknown[:3]), " ".join(readable))
    if hidden:
        log.warning("skipped %d hidden file(s) under %s (a name starting with '.', e.g. %s); rename "
                    "them to read them", len(hidden), raw_dir, ", ".join(hidden[:3]))
        if skipped is not None:
            skipped += hidden
    check_stems(found)
    return found


def check_stems(found: list[Path]) -> None:
    """InputError when two inputs share a file stem (frame ids and label rows would collide)."""
    by_stem: dict[str, Path] = {}
    for path in found:
        other = by_stem.get(path.stem)
        if other is not None:
            raise InputError(path, f"has the same file name (stem {path.stem!r}) as {other}",
                             "rename one of them: frame ids and label rows are matched by file name")
        by_stem[path.stem] = path


def kind_of(path) -> str:
    """The registered reader's kind ('dicom', 'video', 'still', ...) from the file extension."""
    reader = reader_for(path)
    if reader is None:
        raise ValueError(f"{path}: not a readable input extension (readable: {' '.join(extensions())})")
    return reader.kind


def read_file(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFrames:
    """Read any supported input file with its registered reader (frames over ``max_pixels``
    pixels raise InputError)."""
    reader = reader_for(path)
    if reader is None:
        raise InputError(path, f"no reader for the extension {Path(path).suffix!r}",
                         f"convert it to one of: {' '.join(extensions())}")
    return reader.read(path, max_pixels)


def frame_ids(stem: str, n_frames: int, multi_frame: bool) -> list[str]:
    """``stem`` for a single-frame file, ``f"{stem}_f{index:03d}"`` for each frame otherwise."""
    if not multi_frame:
        return [stem]
    return [f"{stem}_f{i:03d}" for i in range(n_frames)]

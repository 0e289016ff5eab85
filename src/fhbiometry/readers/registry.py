"""The readers by file extension: the one source of the extensions ``extract_frames`` and
``predict`` accept.

A reader is a function ``read(path, max_pixels) -> FileFrames``, registered for its extensions
(lower case, with the dot) and a kind (``dicom``, ``video``, ``still``, or a new one)::

    @register(".nii", kind="volume")
    def read_nifti(path, max_pixels=DEFAULT_MAX_PIXELS) -> FileFrames: ...

``readers.media`` imports the built-in readers (``dicom``, ``video``, ``stills``) so that they
are registered; a reader registered anywhere else (a plug-in, a test) is used the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Reader:
    kind: str
    read: Callable


READERS: dict[str, Reader] = {}


def register(*extensions: str, kind: str):
    """Decorator: ``read`` becomes the reader of ``extensions`` (an extension already taken by
    another reader is an error, so two readers never compete for a file)."""
    def wrap(read: Callable) -> Callable:
        for ext in extensions:
            ext = ext.lower()
            if not ext.startswith("."):
                raise ValueError(f"reader extension {ext!r} must start with '.'")
            old = READERS.get(ext)
            if old is not None and old.read is not read:
                raise ValueError(f"extension {ext} already has the reader {old.read.__module__}.{old.read.__name__}")
            READERS[ext] = Reader(kind, read)
        return read
    return wrap


def unregister(*extensions: str) -> None:
    """Remove the readers of ``extensions`` (for tests and plug-ins that are unloaded)."""
    for ext in extensions:
        READERS.pop(ext.lower(), None)


def extensions(kind: str | None = None) -> tuple[str, ...]:
    """The registered extensions (of one ``kind``), sorted."""
    return tuple(sorted(e for e, r in READERS.items() if kind is None or r.kind == kind))


def reader_for(path) -> Reader | None:
    """The reader registered for the extension of ``path`` (None when there is none)."""
    return READERS.get(Path(path).suffix.lower())

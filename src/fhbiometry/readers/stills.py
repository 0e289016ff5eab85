"""Still images (PNG, JPEG, BMP, TIFF; every page of a multi-page TIFF) -> (N, H, W) uint8.

An EXIF orientation (tag 274, values 2..8: rotated or mirrored as stored) is applied, so the
frame is the image as viewers display it and as labels drawn on it are given; each time with
the note ``exif_orientation_applied``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence

from fhbiometry.readers.common import (DEFAULT_MAX_PIXELS, FileFrames, InputError, check_pixels, error_detail,
                                       luminance, note, pillow_limit_off, to_uint8)
from fhbiometry.readers.registry import register

log = logging.getLogger(__name__)

EXIF_ORIENTATION = 0x0112
ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180", 4: "mirrored top-bottom",
                5: "transposed", 6: "rotated 90 clockwise", 7: "transversed", 8: "rotated 90 counter-clockwise"}


@register(".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", kind="still")
def read_still_file(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFrames:
    """A still image file as :class:`FileFrames` (several frames for a multi-page TIFF)."""
    notes: list = []
    frames = read_still(path, max_pixels, notes)
    return FileFrames(frames, multi_frame=frames.shape[0] > 1, notes=notes)


def upright(im, path, notes: list | None = None):
    """``im`` with its EXIF orientation applied (Pillow's ``ImageOps.exif_transpose``) and a
    note; ``im`` itself when it has none (or orientation 1)."""
    try:
        orientation = int(im.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (TypeError, ValueError):
        orientation = 1
    if orientation not in ORIENTATIONS:
        return im
    log.warning("%s: EXIF orientation %d (%s as stored) applied", path, orientation, ORIENTATIONS[orientation])
    note(notes, "exif_orientation_applied", f"EXIF orientation {orientation} ({ORIENTATIONS[orientation]} "
         "as stored): read as displayed")
    return ImageOps.exif_transpose(im)


def read_still(path, max_pixels: int = DEFAULT_MAX_PIXELS, notes: list | None = None) -> np.ndarray:
    """A still image (PNG/JPEG/BMP/TIFF, every page of a multi-page TIFF) -> (N, H, W) uint8."""
    path = Path(path)
    try:
        with pillow_limit_off(), Image.open(path) as im:
            pages = []
            for page in ImageSequence.Iterator(im):
                check_pixels(path, *page.size, max_pixels)  # header only, before decoding
                pages.append(pil_to_array(upright(page, path, notes), notes))
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


def pil_to_array(im, notes: list | None = None) -> np.ndarray:
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

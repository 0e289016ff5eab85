"""Where in a frame to measure: the ultrasound image area, found before the network sees it.

* A DICOM with ``SequenceOfUltrasoundRegions``: its 2-D tissue region (RegionSpatialFormat 1,
  RegionDataType 1; not a Doppler or M-mode strip), bounds inclusive, with the spacing of that
  region (``PhysicalDeltaX`` in cm): ``region`` "dicom tissue region". A region that does not lie
  inside the image is not used (a note says so).
* Otherwise (video, stills, DICOM without a usable region) a rule on the pixels, not a network:
  the non-dark pixels (mean over the frames > ``DARK``), opened with a square of about 1/50 of
  the frame so that text, caliper marks and thin lines fall away; the largest connected part is
  the image area (its bounding box, the thin tips of a sector added back). When bright pixels lie
  outside it (interface chrome: text, other panels) the frame is cropped to it: "detected
  sector"; when nothing lies outside it, or no part covers ``MIN_SHARE`` of the frame, the whole
  frame is measured: "whole frame".

The network sees the crop only; its landmarks are mapped back to the original image's pixels
(``Area.to_frame``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DICOM_REGION = "dicom tissue region"
DETECTED_SECTOR = "detected sector"
WHOLE_FRAME = "whole frame"
AREA_KINDS = (DICOM_REGION, DETECTED_SECTOR, WHOLE_FRAME)
DARK = 12             # grey level (0..255) at or below which a pixel is background
MIN_SHARE = 0.05      # the largest bright part must cover this share of the frame
MIN_CHROME = 20       # bright pixels outside the area that make it worth cropping
SAMPLE_FRAMES = 16    # frames averaged for the detection


@dataclass(frozen=True)
class Area:
    """Inclusive pixel bounds of the measured area, how they were found, the area's spacing (mm
    per pixel, None when it gives none) and a note for the outputs."""

    x0: int
    y0: int
    x1: int
    y1: int
    kind: str
    spacing_mm: float | None = None
    note: str = ""

    @property
    def width(self) -> int:
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        return self.y1 - self.y0 + 1

    def crop(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W) frames -> (N, height, width) frames of the area."""
        return np.ascontiguousarray(frames[:, self.y0:self.y1 + 1, self.x0:self.x1 + 1])

    def to_frame(self, points) -> np.ndarray:
        """Points in the area's pixels -> the original image's pixels."""
        return np.asarray(points, np.float64) + np.array([self.x0, self.y0], np.float64)

    def to_area(self, points) -> np.ndarray:
        """Points in the original image's pixels -> the area's pixels."""
        return np.asarray(points, np.float64) - np.array([self.x0, self.y0], np.float64)


def whole_frame(height: int, width: int, note: str = "") -> Area:
    return Area(0, 0, int(width) - 1, int(height) - 1, WHOLE_FRAME, None, note)


def mean_frame(frames: np.ndarray) -> np.ndarray:
    """The mean of up to ``SAMPLE_FRAMES`` frames spread over the cine (float64)."""
    pick = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), SAMPLE_FRAMES)).round().astype(int))
    return np.asarray(frames[pick], np.float64).mean(axis=0)


def largest_part(mask: np.ndarray, side: int) -> np.ndarray:
    """The largest 8-connected part of ``mask`` after an opening with a ``side`` square."""
    from scipy import ndimage  # scipy (installed with scikit-learn) only when a frame is searched

    opened = ndimage.binary_opening(mask, structure=np.ones((side, side), bool))
    labels, n = ndimage.label(opened, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())[1:]
    part = labels == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_dilation(part, structure=np.ones((side, side), bool)) & mask


def detect_area(frames: np.ndarray) -> Area:
    """The image area of (N, H, W) frames without DICOM regions (module docstring)."""
    h, w = frames.shape[1:]
    mask = mean_frame(frames) > DARK
    side = max(3, int(round(min(h, w) / 50)) | 1)
    part = largest_part(mask, side)
    if part.sum() < MIN_SHARE * h * w:
        return whole_frame(h, w, f"no image area found (no bright part covers {MIN_SHARE:.0%} of the frame)")
    chrome = int((mask & ~part).sum())
    if chrome < MIN_CHROME:
        return whole_frame(h, w)
    ys, xs = np.nonzero(part)
    return Area(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()), DETECTED_SECTOR, None,
                f"{chrome} bright pixels outside the image area left out")


def region_area(region, height: int, width: int) -> tuple[Area | None, str]:
    """The ``Area`` of a chosen DICOM tissue region (``x0, y0, x1, y1`` inclusive, ``spacing_mm``),
    or None and why when its bounds do not lie inside the (height, width) image."""
    x0, y0, x1, y1 = (int(v) for v in (region.x0, region.y0, region.x1, region.y1))
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        return None, (f"ultrasound region bounds x {x0}..{x1}, y {y0}..{y1} do not lie inside the "
                      f"{width} x {height} image: region not used")
    if (x0, y0, x1, y1) == (0, 0, width - 1, height - 1):
        return Area(x0, y0, x1, y1, DICOM_REGION, region.spacing_mm, "the tissue region is the whole image"), ""
    return Area(x0, y0, x1, y1, DICOM_REGION, region.spacing_mm), ""


def choose_area(frames: np.ndarray, regions: list, choice: tuple) -> Area:
    """The measured area of one file: the DICOM tissue region ``choice`` = (region or None, reason)
    of ``regions`` (the file's ultrasound regions, [] when it has none) where usable, else the
    detected image area, with a note saying why."""
    h, w = frames.shape[1:]
    region, reason = choice
    if region is not None:
        area, reason = region_area(region, h, w)
        if area is not None:
            return area
    found = detect_area(frames)
    if not regions:
        return found
    note = "; ".join(n for n in (reason, found.note) if n)
    return Area(found.x0, found.y0, found.x1, found.y1, found.kind, None, note)

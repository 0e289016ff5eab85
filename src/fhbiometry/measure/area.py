"""Where in a frame to measure: the ultrasound image area, found before the network sees it.

* A DICOM with ``SequenceOfUltrasoundRegions``: its 2-D tissue region (RegionSpatialFormat 1,
  RegionDataType 1; not a Doppler or M-mode strip), bounds inclusive, with the spacing of that
  region (``PhysicalDeltaX`` in cm): ``region`` "dicom tissue region". A region that does not lie
  inside the image is not used (a note says so).
* Otherwise (video, stills, DICOM without a usable region) a rule on the pixels, not a network:
  the non-dark pixels (mean over the frames > ``DARK``), made solid (closed, holes filled) and
  opened with a square of 1/15 of the frame's shorter side so that text, caliper marks and thin
  lines fall away; the largest solid part, with the large parts next to it (an image cut by an
  acoustic shadow), is the image area (its bounding box, the thin tips of a sector added back:
  ``image_part``). When at least ``MIN_CHROME`` bright pixels lie
  outside that box (interface chrome: text, other panels) the frame is cropped to it: "detected
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
MIN_PART = 0.01       # share of the frame a solid part needs to join the image area
SAMPLE_FRAMES = 16    # frames averaged for the detection
SIDE_FRACTION = 15    # the opening's square: 1/15 of the frame's shorter side (text lines are thinner)


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


def solid_parts(mask: np.ndarray, side: int) -> tuple[np.ndarray, list]:
    """Labels of the solid parts of ``mask`` (closed: speckle and narrow gaps bridged; holes
    filled: dark fluid inside the image; opened with a ``side`` square: text lines, caliper marks
    and thin lines fall away) and the (area, (x0, y0, x1, y1)) of each, largest first."""
    from scipy import ndimage  # lazy: scipy (installed with scikit-learn) only when a frame is searched

    solid = ndimage.binary_fill_holes(ndimage.binary_closing(mask, np.ones((side // 2 | 1,) * 2, bool)))
    labels, n = ndimage.label(ndimage.binary_opening(solid, np.ones((side, side), bool)), np.ones((3, 3), bool))
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    boxes = [(int(areas[k]), (s[1].start, s[0].start, s[1].stop - 1, s[0].stop - 1))
             for k, s in enumerate(ndimage.find_objects(labels))]
    order = sorted(range(n), key=lambda k: -boxes[k][0])
    return labels, [(k + 1, *boxes[k]) for k in order]


def near(a, b, gap: int) -> bool:
    """Whether boxes (x0, y0, x1, y1) ``a`` and ``b`` are less than ``gap`` pixels apart."""
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]


def image_part(mask: np.ndarray, side: int, min_area: float) -> np.ndarray:
    """The pixels of ``mask`` that form the image: the largest solid part and every part of at
    least ``min_area`` pixels closer than ``side`` to it (an image cut by an acoustic shadow stays
    whole; a separate panel does not join), grown back by ``side`` and intersected with ``mask``
    (the thin tips of a sector return)."""
    from scipy import ndimage  # lazy: scipy (installed with scikit-learn) only when a frame is searched

    labels, parts = solid_parts(mask, side)
    big = [p for p in parts if p[1] >= min_area]
    if not big:
        return np.zeros_like(mask)
    chosen, box, grown = [big[0][0]], big[0][2], True
    while grown:
        grown = False
        for label, _, other in big:
            if label not in chosen and near(box, other, side):
                chosen.append(label)
                box = (min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3]))
                grown = True
    return ndimage.binary_dilation(np.isin(labels, chosen), np.ones((side, side), bool)) & mask


def detect_area(frames: np.ndarray) -> Area:
    """The image area of (N, H, W) frames without DICOM regions (module docstring)."""
    h, w = frames.shape[1:]
    mask = mean_frame(frames) > DARK
    part = image_part(mask, max(5, int(round(min(h, w) / SIDE_FRACTION)) | 1), MIN_PART * h * w)
    if part.sum() < MIN_SHARE * h * w:
        return whole_frame(h, w, f"no image area found (no bright part covers {MIN_SHARE:.0%} of the frame)")
    ys, xs = np.nonzero(part)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    chrome = int(mask.sum() - mask[y0:y1 + 1, x0:x1 + 1].sum())
    if chrome < MIN_CHROME:
        return whole_frame(h, w)
    return Area(x0, y0, x1, y1, DETECTED_SECTOR, None, f"{chrome} bright pixels outside the image area left out")


def region_spacing_mm(region) -> tuple[float | None, str]:
    """The column (x) spacing in mm of a ``readers.regions.Region`` (``spacing_mm`` = (dy, dx)),
    and a note when it is missing or not square."""
    if region.spacing_mm is None:
        return None, f"the tissue region gives no spacing ({region.note or 'no PhysicalDeltaX/Y in cm'})"
    dy, dx = region.spacing_mm
    if not np.isclose(dy, dx, rtol=1e-6):
        return float(dx), f"the tissue region's spacing is not square (dy {dy:g} mm, dx {dx:g} mm): dx used"
    return float(dx), ""


def region_area(region, height: int, width: int) -> tuple[Area | None, str]:
    """The ``Area`` of a chosen DICOM tissue region (``readers.regions.Region``: bounds
    inclusive, ``spacing_mm``), or None and why when its bounds do not lie inside the
    (height, width) image."""
    x0, y0, x1, y1 = (int(v) for v in (region.x0, region.y0, region.x1, region.y1))
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        return None, (f"ultrasound region bounds x {x0}..{x1}, y {y0}..{y1} do not lie inside the "
                      f"{width} x {height} image: region not used")
    spacing, note = region_spacing_mm(region)
    return Area(x0, y0, x1, y1, DICOM_REGION, spacing, note), ""


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

"""Landmark labels: tables with configurable columns, and HC18 ellipse annotations -> landmarks.

Two label sources (params ``data.label_source``):

* ``csv``: a landmark table (``data.landmarks_csv``) whose headers are given by
  ``data.columns`` (canonical name -> header). Values are kept as named by the table (no
  reordering: that is the qc stage's job).
* ``ellipse``: HC18 annotation images (``data.annotation_pattern``) holding the outline of
  the ellipse fitted to the outer skull; the landmarks are the ellipse's axis ends
  (OFD = major axis, BPD = minor axis, ``geometry.ellipse_landmarks``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fhbiometry.core.geometry import COORD_COLUMNS, ellipse_landmarks
from fhbiometry.readers.common import (DEFAULT_MAX_PIXELS, InputError, check_pixels, error_detail, parse_number,
                                       pillow_limit_off)
from fhbiometry.readers.stills import upright
from fhbiometry.readers.tables import separator_hint

CANONICAL_COLUMNS = ("image", "frame") + COORD_COLUMNS
OK = "ok"
MISSING = "missing"


# ----------------------------------------------------------------------------- tables

def table_headers(columns: dict) -> dict[str, str]:
    """Canonical name -> table header from params ``data.columns`` ('' = absent, only for frame;
    ``schema.Columns`` validates them)."""
    return {name: str(columns[name]).strip() for name in CANONICAL_COLUMNS}


def _frame_indices(df: pd.DataFrame, header: str | None, bad) -> np.ndarray:
    """The frame column as ints (0 without one; -1 where ``bad`` was told of a bad value)."""
    frames = np.zeros(len(df), dtype=np.int64)
    if header:
        for i, value in enumerate(df[header]):
            f = _number(value)
            if f is None or f < 0 or not float(f).is_integer():
                bad(i, header, value, "not a frame index (0, 1, 2, ...)")
                frames[i] = -1
            else:
                frames[i] = int(f)
    return frames


def read_landmark_table(csv_path, columns: dict, strict: bool = True) -> pd.DataFrame:
    """Read and validate a landmark table.

    Returns one row per table row with columns ``row`` (1-based spreadsheet row, header = 1),
    ``image`` (as written), ``frame`` (int; 0 without a frame column; -1 when unusable),
    the 8 ``COORD_COLUMNS`` (float) and ``status`` (``ok`` or the first problem of the row).

    Missing headers always raise InputError. A non-numeric, empty or non-finite coordinate
    (or a bad frame value) raises InputError naming file, row and column when ``strict``;
    otherwise that value becomes NaN (frame -1) and ``status`` records the problem.
    """
    csv_path = Path(csv_path)
    headers = table_headers(columns)
    df = _load_table(csv_path, headers)
    out = pd.DataFrame({"row": np.arange(2, len(df) + 2, dtype=np.int64),
                        "image": [str(v).strip().replace("\\", "/") for v in df[headers["image"]]]})
    status = [OK] * len(df)

    def bad(i: int, header: str, value: str, what: str) -> None:
        problem = f"column {header!r}: {value!r} is {what}"
        if strict:
            raise InputError(csv_path, problem,
                             "correct the value, or set data.on_bad_input: exclude to keep the "
                             "frame with label_status recording the problem", row=i + 2)
        if status[i] == OK:
            status[i] = problem

    out["frame"] = _frame_indices(df, headers["frame"], bad)
    for name in COORD_COLUMNS:
        header = headers[name]
        values = np.full(len(df), np.nan)
        for i, value in enumerate(df[header]):
            v = _number(value)
            if v is None:
                bad(i, header, value, "empty" if not str(value).strip() else "not a number")
            else:
                values[i] = v
        out[name] = values
    for i, value in enumerate(out["image"]):
        if not value:
            bad(i, headers["image"], value, "empty (no image name)")
    out["status"] = status
    return out


def _load_table(csv_path: Path, headers: dict[str, str]) -> pd.DataFrame:
    """The table as text; InputError when absent, unparsable or missing a configured header."""
    if not csv_path.exists():
        raise InputError(csv_path, "landmark table not found",
                         "set data.landmarks_csv (relative to data.raw_dir) to the table, or "
                         "use data.label_source: ellipse")
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, OSError) as err:
        raise InputError(csv_path, f"cannot parse the landmark table ({err})",
                         "save it as a comma-separated table with one header row") from err
    df.columns = [str(c).strip() for c in df.columns]
    wanted = {k: v for k, v in headers.items() if v}
    missing = [f"{v} (data.columns.{k})" for k, v in wanted.items() if v not in df.columns]
    if missing:
        raise InputError(csv_path, f"missing column(s): {', '.join(missing)}; the table has: "
                         f"{', '.join(df.columns)}" + separator_hint(csv_path, df.columns),
                         "set data.columns.<name> in params.yaml to the table's header names")
    return df


def _number(value) -> float | None:
    """A plainly written finite number (``readers.common.parse_number``: not ``1_0_0``)."""
    return parse_number(value)


# ----------------------------------------------------------------------------- ellipses

def annotation_path(raw_dir, pattern: str, stem: str) -> Path:
    """Annotation image of a frame: ``pattern`` with ``{stem}`` = the frame id, under ``raw_dir``
    (HC18: ``annotations/{stem}_Annotation.png`` -> ``annotations/014_2HC_Annotation.png``)."""
    return Path(raw_dir) / pattern.format(stem=stem)


def outline_points(mask: np.ndarray) -> np.ndarray:
    """(N, 2) ``(x, y)`` pixel-centre coordinates of the non-zero pixels of an outline image."""
    ys, xs = np.nonzero(np.asarray(mask))
    return np.stack([xs, ys], axis=1).astype(np.float64)


def fit_ellipse(xy: np.ndarray) -> tuple[float, float, float, float, float] | None:
    """Least-squares ellipse through ``xy`` (N, 2): ``(cx, cy, semi_a, semi_b, angle_rad)`` with
    ``angle_rad`` the direction of ``semi_a`` from +x (image coordinates), or None on failure."""
    from skimage.measure import EllipseModel  # lazy: scikit-image only when an ellipse is fitted

    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 5:
        return None
    # Centre the data for numerical stability, then shift back.
    offset = xy.mean(axis=0)
    model = EllipseModel.from_estimate(xy - offset)
    if not model:
        return None
    (cx, cy), (a, b), theta = model.center, model.axis_lengths, float(model.theta)
    values = (float(cx) + offset[0], float(cy) + offset[1], float(a), float(b), theta)
    if not all(math.isfinite(v) for v in values) or a <= 0 or b <= 0:
        return None
    return values


def annotation_landmarks(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Landmarks (4, 2) from an HC18 annotation image (an ellipse outline on black).

    Raises InputError naming the file when it cannot be read, is larger than ``max_pixels``
    (params ``data.max_image_pixels``, checked before decoding) or no ellipse fits.
    """
    path = Path(path)
    fix = "check the annotation image (a closed ellipse outline on black) or remove it"
    try:
        with pillow_limit_off(), Image.open(path) as im:
            check_pixels(path, *im.size, max_pixels, "annotation image")
            arr = np.asarray(upright(im, path).convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(path, f"cannot read annotation image: {error_detail(err, path)}", fix) from err
    xy = outline_points(arr > 127)
    fit = fit_ellipse(xy)
    if fit is None:
        raise InputError(path, f"no ellipse could be fitted to the outline ({len(xy)} pixels)", fix)
    h, w = arr.shape
    cx, cy, a, b, _ = fit
    if max(a, b) > 2 * max(h, w) or not (-w < cx < 2 * w and -h < cy < 2 * h):
        raise InputError(path, f"fitted ellipse is implausible: centre {cx:.0f},{cy:.0f}, "
                         f"semi-axes {a:.0f},{b:.0f} px", fix)
    return ellipse_landmarks(*fit)

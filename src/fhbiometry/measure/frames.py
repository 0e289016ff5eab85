"""The per-frame table of a scan: each frame letterboxed, its landmarks located by a backend (and
once more mirrored, for the flip agreement of the confidence), mapped back to the original pixels
(size calibration applied), measured (diameters, HC, cephalic index, gestational ages), scored
(confidence, plausibility flags) and accepted or rejected."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fhbiometry.core.biometry import measurements
from fhbiometry.core.geometry import COORD_COLUMNS, anatomical_naming, diameters
from fhbiometry.core.letterbox import to_original
from fhbiometry.data.qc import _flag_points
from fhbiometry.trust.calibration import apply_factors
from fhbiometry.trust.confidence import confidence

FLAG_NAMES = ("ratio", "not_perpendicular", "midpoint_offset", "outside")  # qc.py flag names


def plausibility_flags(points_orig, width, height, qc: dict) -> pd.DataFrame:
    """The geometric QC checks of qc.py on predicted points (original pixels): one boolean
    column ``flag_<name>`` per ``FLAG_NAMES``, with the thresholds of params ``qc``."""
    pts = np.asarray(points_orig, np.float64)
    n = len(pts)
    out = _flag_points(pts, np.full_like(pts, np.nan), np.full(n, "ok"), np.ones(n),
                       np.asarray(width, np.float64), np.asarray(height, np.float64),
                       np.full(n, np.nan), {**qc, "reference": ""})
    return pd.DataFrame({f"flag_{name}": out["flags"][name] for name in FLAG_NAMES})


def frame_table(scan, points_orig, conf: pd.DataFrame, settings) -> pd.DataFrame:
    """One row per frame of ``scan``: ids, landmarks (original px), diameters in px and mm,
    HC, cephalic index, gestational ages, confidence and its terms, QC flags, ``accepted``."""
    n, (h, w) = len(points_orig), scan.frames.shape[1:]
    d_px = diameters(points_orig)
    d_mm = d_px * scan.spacing
    cols = {"source_file": scan.rel, "frame_index": np.arange(n), "cine_id": scan.cine,
            "subject_id": scan.subject, "width": w, "height": h,
            "spacing_mm": scan.spacing, "spacing_source": scan.spacing_source}
    cols.update(zip(COORD_COLUMNS, np.asarray(points_orig, np.float64).reshape(n, 8).T))
    cols.update({"bpd_px": d_px[:, 1], "ofd_px": d_px[:, 0], "bpd_mm": d_mm[:, 1], "ofd_mm": d_mm[:, 0]})
    cols.update(measurements(d_mm[:, 1], d_mm[:, 0]))
    cols["cephalic_index"] = 100.0 * d_px[:, 1] / d_px[:, 0]   # needs no spacing
    table = pd.DataFrame(cols)
    table = pd.concat([table, conf.reset_index(drop=True),
                       plausibility_flags(points_orig, np.full(n, w), np.full(n, h), settings.qc)], axis=1)
    flags = table[[c for c in table.columns if c.startswith("flag_")]].any(axis=1)
    table["plausible"] = ~flags
    table["accepted"] = table["plausible"] & (table["confidence"] >= settings.threshold)
    return table


def locate_landmarks(scan, loaded, backend, settings, bar=None) -> pd.DataFrame:
    """The frame table of one scan: letterbox, run the network (and on the mirror), map back."""
    # runner imports torch: imported here so that the light modules of measure/ stay torch-free
    from fhbiometry.inference.runner import predict_frames

    letterbox, codec = loaded.letterbox, loaded.codec
    pts, peaks, flips = [], [], []
    for start in range(0, len(scan.frames), settings.batch_size):
        chunk = scan.frames[start:start + settings.batch_size]
        boxed = [letterbox.image_to_input(f) for f in chunk]
        images, transform = np.stack([b[0] for b in boxed]), np.stack([b[1] for b in boxed])
        fp = predict_frames(backend, codec, images, flip=True, flip_test=bool(settings.decode.get("flip_test")))
        pts.append(apply_factors(to_original(fp.points, transform), settings.size_factors))
        flips.append(to_original(fp.flip_points, transform))
        peaks.append(fp.peak)
        if bar is not None:
            bar.update(len(chunk))
    points, flipped = np.concatenate(pts), np.concatenate(flips)
    if settings.qc.get("naming", "anatomical") == "anatomical":
        points, swapped = anatomical_naming(points)
        flipped = np.where(swapped[:, None, None], flipped[:, [2, 3, 0, 1]], flipped)
    peak = None if peaks[0] is None else np.concatenate(peaks)
    conf = confidence(points, flipped, peak, settings.qc, settings.confidence,
                      float(getattr(codec, "peak", 1.0)))
    return frame_table(scan, points, conf, settings)

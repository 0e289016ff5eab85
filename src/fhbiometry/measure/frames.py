"""The per-frame table of a scan: each frame cropped to its measured area (area.py), letterboxed, its landmarks located by a backend (and
once more mirrored, for the flip agreement of the confidence), mapped back to the original pixels
(size calibration applied), measured (diameters, HC, cephalic index, gestational ages), scored
(confidence, plausibility flags) and accepted or rejected."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fhbiometry.core.biometry import measurements
from fhbiometry.core.geometry import COORD_COLUMNS, anatomical_naming, diameters
from fhbiometry.core.letterbox import to_original
from fhbiometry.data.qc import point_flags
from fhbiometry.measure.intervals import frame_intervals, tta_transforms
from fhbiometry.trust.calibration import apply_factors
from fhbiometry.trust.confidence import confidence

log = logging.getLogger(__name__)

FLAG_NAMES = ("ratio", "not_perpendicular", "midpoint_offset", "outside")  # qc.py flag names


def plausibility_flags(points_orig, width, height, qc: dict) -> pd.DataFrame:
    """The geometric QC checks of qc.py on predicted points (original pixels): one boolean
    column ``flag_<name>`` per ``FLAG_NAMES``, with the thresholds of params ``qc``."""
    out = point_flags(np.asarray(points_orig, np.float64), width, height, qc)
    return pd.DataFrame({f"flag_{name}": out["flags"][name] for name in FLAG_NAMES})


def reject_reasons(table: pd.DataFrame, threshold: float) -> list[str]:
    """Why each frame is rejected: "low confidence" and the names of its failed checks, joined
    by ", "; "" for an accepted frame."""
    flags = [c for c in table.columns if c.startswith("flag_")]
    out = []
    for _, row in table.iterrows():
        why = ([] if row["confidence"] >= threshold else ["low confidence"]) + [c[5:] for c in flags if row[c]]
        out.append(", ".join(why))
    return out


def id_columns(scan, n: int) -> dict:
    """The ids, image size, spacing and measured area of ``n`` frames of ``scan``."""
    (h, w), area = scan.frames.shape[1:], scan.area
    return {"source_file": scan.rel, "frame_index": np.arange(n), "cine_id": scan.cine,
            "subject_id": scan.subject, "width": w, "height": h,
            "spacing_mm": scan.spacing, "spacing_source": scan.spacing_source, "region": area.kind,
            "region_x0": area.x0, "region_y0": area.y0, "region_x1": area.x1, "region_y1": area.y1}


def frame_table(scan, points_orig, conf: pd.DataFrame, settings) -> pd.DataFrame:
    """One row per frame of ``scan``: ids, measured area, landmarks (original px), diameters in
    px and mm, HC, cephalic index, gestational ages, confidence and its terms, QC flags (on the
    measured area), ``accepted``, ``reject_reason`` and the reader's ``notes``."""
    n, area = len(points_orig), scan.area
    d_px = diameters(points_orig)
    d_mm = d_px * scan.spacing
    cols = id_columns(scan, n)
    cols.update(zip(COORD_COLUMNS, np.asarray(points_orig, np.float64).reshape(n, 8).T))
    cols.update({"bpd_px": d_px[:, 1], "ofd_px": d_px[:, 0], "bpd_mm": d_mm[:, 1], "ofd_mm": d_mm[:, 0]})
    cols.update(measurements(d_mm[:, 1], d_mm[:, 0]))
    cols["cephalic_index"] = 100.0 * d_px[:, 1] / d_px[:, 0]   # needs no spacing
    table = pd.DataFrame(cols)
    flags = plausibility_flags(area.to_area(points_orig), np.full(n, area.width), np.full(n, area.height), settings.qc)
    table = pd.concat([table, conf.reset_index(drop=True), flags], axis=1)
    table["plausible"] = ~flags.any(axis=1).to_numpy()
    table["accepted"] = table["plausible"] & (table["confidence"] >= settings.threshold)
    table["reject_reason"] = reject_reasons(table, settings.threshold)
    table["notes"] = "; ".join(scan.notes)
    return table


@dataclass
class Refiner:
    """A head-normalised refinement run after the coarse model (``fhbiometry predict`` given a
    refinement's checkpoint): its loaded checkpoint (``meta["refine"]`` says what it crops), its
    backend, how many passes (params ``decode.refine_passes``) and the coarse model's file."""

    loaded: object
    backend: object
    passes: int = 1
    coarse: object = None


def network_points(frames, area, loaded, backend, settings, refiner=None):
    """(points, mirrored points, peaks) of a chunk of ``frames``, in frame pixels (size
    calibration applied to the points): the model on the letterboxed measured area, mirrored once
    more; with a ``refiner`` the coarse model gives the heads only and the refinement, run on
    crops of the whole frames around them (and mirrored), gives the points."""
    # runner imports torch: imported here so that the light modules of measure/ stay torch-free
    from fhbiometry.inference.runner import predict_frames  # lazy: torch only once frames are run

    boxed = [loaded.letterbox.image_to_input(f) for f in area.crop(frames)]
    images, transform = np.stack([b[0] for b in boxed]), np.stack([b[1] for b in boxed])
    flip_test = bool(settings.decode.get("flip_test"))
    tta = tta_transforms(settings.intervals)
    fp = predict_frames(backend, loaded.codec, images, flip=refiner is None, flip_test=flip_test,
                        tta=tta if refiner is None else ())
    if refiner is None:
        augmented = None if fp.tta_points is None else np.stack(
            [area.to_frame(to_original(p, transform)) for p in fp.tta_points])
        return (area.to_frame(apply_factors(to_original(fp.points, transform), settings.size_factors)),
                area.to_frame(to_original(fp.flip_points, transform)), fp.peak, augmented)
    from fhbiometry.refinement.apply import refine_frames  # lazy: refinement imports torch where it runs

    heads = area.to_frame(to_original(fp.points, transform))
    r = refine_frames(refiner.backend, refiner.loaded.codec, frames, heads, refiner.loaded.meta["refine"],
                      refiner.passes, flip=True, flip_test=flip_test, tta=tta)
    if r.whole_frame:
        log.warning("%d frame(s): the coarse model %s found no head (points not finite): the refinement "
                    "measured the whole frame", r.whole_frame, refiner.coarse)
    return apply_factors(r.points, settings.size_factors), r.flip_points, r.peak, r.tta_points


def locate_landmarks(scan, loaded, backend, settings, bar=None, refiner=None) -> pd.DataFrame:
    """The frame table of one scan: letterbox, run the network (and on the mirror), map back;
    with a ``refiner`` (``Refiner``), refined on head-normalised crops."""
    pts, peaks, flips, augs = [], [], [], []
    for start in range(0, len(scan.frames), settings.batch_size):
        chunk = scan.frames[start:start + settings.batch_size]
        points, flipped, peak, augmented = network_points(chunk, scan.area, loaded, backend, settings, refiner)
        pts.append(points)
        flips.append(flipped)
        peaks.append(peak)
        augs.append(augmented)
        if bar is not None:
            bar.update(len(chunk))
    points, flipped = np.concatenate(pts), np.concatenate(flips)
    augmented = None if augs[0] is None else np.concatenate(augs, axis=1)
    if settings.qc.get("naming", "anatomical") == "anatomical":
        points, swapped = anatomical_naming(points)
        flipped = np.where(swapped[:, None, None], flipped[:, [2, 3, 0, 1]], flipped)
        if augmented is not None:
            augmented = np.where(swapped[None, :, None, None], augmented[:, :, [2, 3, 0, 1]], augmented)
    peak = None if peaks[0] is None else np.concatenate(peaks)
    codec = (loaded if refiner is None else refiner.loaded).codec
    conf = confidence(points, flipped, peak, settings.qc, settings.confidence, float(codec.peak))
    if augmented is not None:
        augmented = np.stack([apply_factors(p, settings.size_factors) for p in augmented])
    spans = frame_intervals(points, apply_factors(flipped, settings.size_factors), peak, scan.spacing, settings.qc,
                            settings.intervals, float(codec.peak), augmented)
    return pd.concat([frame_table(scan, points, conf, settings), spans], axis=1)

"""Orchestration: ``generate`` writes the whole synthetic data set (images, landmarks.csv,
truth.csv, README.md)."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.core.store import write_csv
from .config import (_STREAM_FAULTS, FAULT_KINDS, FORMATS, LANDMARK_COLUMNS, QUALITIES,
                     TRUTH_COLUMNS, _rng, normalise_config)
from .sampling import allocate_formats, choose_faults, corrupt_points
from .subject import Subject, make_subject
from .writers import _readme, write_subject

log = logging.getLogger(__name__)


def _truth_rows(subject: Subject, names: list[tuple], fmt: str) -> tuple[list, list]:
    """truth.csv rows (without landmarks) and the exact (4, 2) landmarks of a subject's frames."""
    h = subject.head
    rows, points = [], []
    for k, (name, frame_index) in enumerate(names):
        cx, cy, angle = subject.poses[k]
        rows.append({
            "image_name": name, "frame": frame_index, "subject_id": subject.subject_id,
            "format": fmt, "cx": cx, "cy": cy, "semi_a": h.semi_a, "semi_b": h.semi_b,
            "angle_deg": math.degrees(angle) % 180.0, "skull_px": h.skull_px,
            "spacing_mm": h.spacing_mm, "bpd_mm": h.bpd_mm, "ofd_mm": h.ofd_mm,
            "ratio": h.ratio, "ga_weeks": h.ga_weeks, "quality": subject.qualities[k],
            "label_fault": "",
        })
        points.append(subject.landmarks(k))
    return rows, points


def _labels_with_faults(rows: list, points: list, cfg: dict, seed: int) -> tuple[list, dict]:
    """landmarks.csv rows, a share ``label_faults`` of them corrupted; the exact landmarks and
    the fault kind go into ``rows`` (truth.csv). Returns (labels, {row index: fault kind})."""
    faults = choose_faults(len(rows), cfg["label_faults"], seed)
    fault_rng = _rng(seed, _STREAM_FAULTS, 1)
    labels = []
    for j, (row, pts) in enumerate(zip(rows, points)):
        row.update(zip(COORD_COLUMNS, (float(v) for v in pts.ravel())))
        if j in faults:
            row["label_fault"] = faults[j]
            pts = corrupt_points(pts, faults[j], cfg["width"], cfg["height"], fault_rng)
        labels.append([row["image_name"], row["frame"], *(float(v) for v in pts.ravel())])
    return labels, faults


def generate(out_dir, cfg: dict, seed: int, progress: bool = True) -> dict:
    """Write the synthetic data set into ``out_dir`` (created if absent; the stage empties it).

    Returns a summary: subjects per format, frames, frame qualities, label faults per kind,
    files written."""
    cfg = normalise_config(cfg)
    seed = int(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = allocate_formats(cfg["subjects"], cfg["formats"], seed)
    rows, points = [], []
    for i in tqdm(range(cfg["subjects"]), desc="synthesize", unit="subject", disable=not progress):
        subject = make_subject(i, cfg, seed)
        names = write_subject(out_dir, subject, formats[i], cfg["video_crf"], seed)
        subject_rows, subject_points = _truth_rows(subject, names, formats[i])
        rows += subject_rows
        points += subject_points
    labels, faults = _labels_with_faults(rows, points, cfg, seed)
    write_csv(pd.DataFrame(labels, columns=list(LANDMARK_COLUMNS)), out_dir / "landmarks.csv",
              digits=2)
    truth = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    write_csv(truth, out_dir / "truth.csv", digits=6)
    summary = {
        "subjects": {f: formats.count(f) for f in FORMATS},
        "frames": len(rows),
        "qualities": {q: int((truth["quality"] == q).sum()) for q in QUALITIES},
        "label_faults": {k: sum(1 for v in faults.values() if v == k) for k in FAULT_KINDS},
    }
    (out_dir / "README.md").write_text(_readme(cfg, seed, summary))
    summary["files"] = sum(1 for p in out_dir.rglob("*") if p.is_file())
    log.info("wrote %d files (%d frames) to %s", summary["files"], summary["frames"], out_dir)
    return summary

"""The labels of the frames ``extract_frames`` reads: landmark-table rows attached to their input
files (``data.label_source: csv``) or HC18 ellipse annotations (``ellipse``), each frame's label,
``label_status``, ``dup_count`` and references (``REF_COLUMNS``, ``CSV_COLUMNS``).

Table image names are matched to input files after Unicode NFC normalisation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fhbiometry.core.geometry import COORD_COLUMNS, CSV_COLUMNS, REF_COLUMNS
from fhbiometry.data.issues import IssueLog
from fhbiometry.readers import labels as lab
from fhbiometry.readers.common import DEFAULT_MAX_PIXELS, InputError
from fhbiometry.readers.tables import nfc

log = logging.getLogger(__name__)


@dataclass
class LabelTable:
    """The landmark table (``table`` None when not read) and its row indices per input file.

    ``issues`` receives the table's problems: the main log when the table is the label source,
    a separate ``exclude`` log when it is read as a reference beside the ellipses."""

    table: pd.DataFrame | None
    path: Path | None
    rows_by_file: dict
    issues: IssueLog

    def row_number(self, i: int) -> int:
        return int(self.table["row"].iat[i])

    def skip_row(self, i: int, problem: str, fix: str = "") -> None:
        self.issues.report(InputError(self.path, problem, fix, row=self.row_number(i)), "row skipped")


def read_label_table(cfg, index: dict[str, Path], issues: IssueLog) -> LabelTable:
    """Read the landmark table (csv source; with the ellipse source only when it exists, as a
    reference whose problems are recorded, never fatal) and attach each usable row to its file."""
    raw = cfg.raw_dir
    table_issues = issues
    if cfg.label_source == "ellipse" and cfg.landmarks_csv and cfg.resolve(cfg.landmarks_csv).is_file():
        table_issues = IssueLog(raw, "exclude")
    labels = LabelTable(None, None, {}, table_issues)
    if cfg.label_source != "csv" and table_issues is issues:
        return labels
    labels.path = cfg.resolve(cfg.landmarks_csv)
    labels.table = t = lab.read_landmark_table(labels.path, cfg.columns,
                                               strict=table_issues.mode == "fail")
    for i, (image, frame, status) in enumerate(zip(t["image"], t["frame"], t["status"])):
        path = index.get(nfc(image))
        if path is None:
            labels.skip_row(i, f"image not found: {image!r} is not under data.raw_dir",
                            "correct the image name (names are compared after Unicode NFC normalisation) "
                            "or add the file" + table_issues.exclude_hint("skip the row"))
        elif frame < 0:
            labels.skip_row(i, status)
        else:
            labels.rows_by_file.setdefault(path, []).append(i)
    return labels


class EllipseLabels:
    """Landmarks from each frame's annotation image, read once per annotation file."""

    def __init__(self, raw_dir: Path, pattern: str, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.raw_dir = raw_dir
        self.pattern = pattern
        self.max_pixels = max_pixels
        self.cache: dict[Path, np.ndarray | InputError] = {}

    def get(self, frame_id: str):
        """(4, 2) landmarks, None when there is no annotation, or the InputError if unusable."""
        if not self.pattern:
            return None
        path = lab.annotation_path(self.raw_dir, self.pattern, frame_id)
        if path not in self.cache:
            if not path.exists():
                return None
            try:
                self.cache[path] = lab.annotation_landmarks(path, self.max_pixels)
            except InputError as err:
                self.cache[path] = err
        return self.cache[path]


def rows_by_frame(labels: LabelTable, item, n_frames: int) -> dict[int, list[int]]:
    """The table rows of one file grouped by frame index; rows past the last frame are skipped."""
    out: dict[int, list[int]] = {}
    for i in labels.rows_by_file.get(item.path, []):
        f = int(labels.table["frame"].iat[i])
        if f >= n_frames:
            labels.skip_row(i, f"frame index out of range: frame {f} is not in {item.rel} "
                               f"({n_frames} frame(s), counted from 0)",
                            "correct the frame index")
            continue
        out.setdefault(f, []).append(i)
    return out


def csv_label(rec: dict, labels: LabelTable, rows: list[int], frame_id: str):
    """Label of a frame from its table rows (the first row wins; duplicates are logged)."""
    table = labels.table
    rec["dup_count"] = len(rows)
    if not rows:
        return np.full((4, 2), np.nan)
    first = rows[0]
    status = table["status"].iat[first]
    rec["label_status"] = lab.OK if status == lab.OK else f"row {labels.row_number(first)}: {status}"
    if len(rows) > 1:
        log.warning("%s: %d table rows for frame %s (rows %s); keeping the first", labels.path,
                    len(rows), frame_id, ", ".join(str(labels.row_number(j)) for j in rows))
    return table.loc[first, list(COORD_COLUMNS)].to_numpy(dtype=np.float64)


def resolve_label(rec: dict, cfg, labels: LabelTable, rows: list[int],
                  ellipses: EllipseLabels, issues: IssueLog) -> None:
    """Fill the label (``COORD_COLUMNS``), ``label_status``, ``dup_count``, the ellipse reference
    (``REF_COLUMNS``) and the table's own points (``CSV_COLUMNS``) of one frame record."""
    frame_id = rec["frame_id"]
    table_points = np.full(8, np.nan)
    if rows:
        table_points = labels.table.loc[rows[0], list(COORD_COLUMNS)].to_numpy(dtype=np.float64)
    ref = ellipses.get(frame_id)
    label = np.full((4, 2), np.nan)
    if cfg.label_source == "csv":
        label = csv_label(rec, labels, rows, frame_id)
        if isinstance(ref, InputError):
            issues.report(ref, "ref_* left empty")
            ref = None
    else:
        if isinstance(ref, InputError):
            rec["label_status"] = issues.bad_label(ref)
            ref = None
        elif ref is not None:
            label = ref
            rec["label_status"] = lab.OK
        rec["dup_count"] = int(ref is not None)
    rec.update(zip(COORD_COLUMNS, np.asarray(label, dtype=np.float64).reshape(8)))
    ref_values = np.full(8, np.nan) if ref is None else np.asarray(ref).reshape(8)
    rec.update(zip(REF_COLUMNS, ref_values))
    rec.update(zip(CSV_COLUMNS, table_points))

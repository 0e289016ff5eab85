"""Raw folder -> frames archive + manifest (stage ``extract_frames``, docs/architecture.md contract 2).

Per input file: read its frames (``readers``), find the pixel spacing (first found wins:
DICOM tags, sidecar ``<stem>.json`` ``pixel_spacing_mm``, a row of ``data.pixel_size_csv``,
``data.default_spacing_mm`` if > 0), the subject id (DICOM PatientID, sidecar ``subject_id``,
``data.subject_pattern`` on the stem, else the stem) and the labels (``labels``).

Bad inputs follow ``data.on_bad_input``: ``fail`` raises :class:`InputError` naming the file
(and row) and the fix; ``exclude`` skips the file or table row and records it in ``issues``
(``file, row, problem, action``), except a bad label of an existing frame, which keeps the
frame in the manifest with ``label_status`` = the problem.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import labels as lab
from . import readers as rd
from .geometry import COORD_COLUMNS, CSV_COLUMNS, REF_COLUMNS
from .params import ParamError, check_choice
from .readers import InputError
from .store import save_npz, write_csv

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("frame_id", "subject_id", "source_file", "frame_index", "width", "height",
                    "spacing_mm", "spacing_source", "label_status", "dup_count",
                    *COORD_COLUMNS, *REF_COLUMNS, *CSV_COLUMNS)
ISSUE_COLUMNS = ("file", "row", "problem", "action")
LABEL_SOURCES = ("csv", "ellipse")
BAD_INPUT_MODES = ("fail", "exclude")
CSV_DIGITS = 3           # coordinates: 0.001 px
SPACING_FORMAT = ".10g"  # spacing_mm is written as text so it keeps 10 significant digits


@dataclass
class DataConfig:
    """Params section ``data`` (see params.yaml)."""

    raw_dir: Path
    label_source: str = "csv"
    landmarks_csv: str = "landmarks.csv"
    columns: dict = field(default_factory=lambda: {c: c for c in lab.CANONICAL_COLUMNS})
    annotation_pattern: str = "annotations/{stem}_Annotation.png"
    pixel_size_csv: str = ""
    pixel_size_columns: dict = field(default_factory=lambda: {"image": "filename",
                                                              "spacing": "pixel size(mm)"})
    default_spacing_mm: float = 0.0
    subject_pattern: str = r"^(?P<subject>[A-Za-z]*\d+)"
    on_bad_input: str = "fail"

    @classmethod
    def from_params(cls, data: dict) -> "DataConfig":
        if "raw_dir" not in data:
            raise ParamError("params.yaml: missing key 'data.raw_dir'")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["raw_dir"] = Path(known["raw_dir"])
        cfg = cls(**known)
        check_choice("data.label_source", cfg.label_source, LABEL_SOURCES)
        check_choice("data.on_bad_input", cfg.on_bad_input, BAD_INPUT_MODES)
        try:
            cfg.default_spacing_mm = float(cfg.default_spacing_mm or 0)
        except (TypeError, ValueError):
            raise ParamError(f"params.yaml: data.default_spacing_mm = {cfg.default_spacing_mm!r}; "
                             "give a number (0 = missing spacing is an error)") from None
        if cfg.annotation_pattern and "{stem}" not in cfg.annotation_pattern:
            raise ParamError(f"params.yaml: data.annotation_pattern {cfg.annotation_pattern!r} "
                             "must contain {stem}")
        if cfg.label_source == "ellipse" and not cfg.annotation_pattern:
            raise ParamError("params.yaml: data.label_source is 'ellipse' but "
                             "data.annotation_pattern is empty")
        return cfg

    def resolve(self, name: str) -> Path:
        """A path from params: absolute as is, else relative to raw_dir."""
        p = Path(name)
        return p if p.is_absolute() else self.raw_dir / p


class IssueLog:
    """Applies ``on_bad_input``: raise in ``fail`` mode, record a row in ``exclude`` mode."""

    def __init__(self, raw_dir: Path, mode: str):
        self.raw_dir = Path(raw_dir)
        self.mode = mode
        self.rows: list[dict] = []

    def report(self, err: InputError, action: str) -> None:
        if self.mode == "fail":
            raise err
        log.warning("%s -> %s", err, action)
        self.rows.append({"file": self.relative(err.file), "row": "" if err.row is None else err.row,
                          "problem": err.problem, "action": action})

    def bad_label(self, err: InputError) -> str:
        """A bad label of an existing frame: raise (fail) or return the label_status (exclude)."""
        if self.mode == "fail":
            raise err
        log.warning("%s -> frame kept, label_status set", err)
        return err.problem if err.row is None else f"row {err.row}: {err.problem}"

    def relative(self, file) -> str:
        p = Path(file)
        try:
            return p.relative_to(self.raw_dir).as_posix()
        except ValueError:
            return p.as_posix()

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(ISSUE_COLUMNS))


@dataclass
class Extraction:
    frames: dict          # frame_id -> (H, W) uint8
    manifest: pd.DataFrame
    issues: pd.DataFrame


def resolve_spacing(path: Path, rel: str, dicom: tuple, sidecar: dict, table: dict,
                    default_mm: float) -> tuple[float, str]:
    """Pixel spacing (mm) and its source; first found wins (see module docstring)."""
    value, source = dicom
    if value is not None:
        return value, source
    if "pixel_spacing_mm" in sidecar:
        return float(sidecar["pixel_spacing_mm"]), "sidecar"
    found = rd.lookup_by_name(table, rel)
    if found is not None:
        return found, "pixel_size_csv"
    if default_mm > 0:
        return default_mm, "default"
    raise InputError(path, "no pixel spacing",
                     f'add a sidecar {path.stem}.json {{"pixel_spacing_mm": ...}}, a row in the '
                     "pixel-size CSV (data.pixel_size_csv), or set data.default_spacing_mm")


def extract(data: dict, progress: bool = True) -> Extraction:
    """Read every input under ``data["raw_dir"]`` and build frames, manifest and issues."""
    cfg = DataConfig.from_params(data)
    raw = cfg.raw_dir
    issues = IssueLog(raw, cfg.on_bad_input)
    subject_rx = rd.compile_subject_pattern(cfg.subject_pattern)
    files = rd.find_inputs(raw, cfg.annotation_pattern)
    if not files:
        raise InputError(raw, "no DICOM, video or image files found",
                         "put the data there or set data.raw_dir")
    rels = {p: p.relative_to(raw).as_posix() for p in files}
    index: dict[str, Path] = {}
    for p in files:
        for key in (p.stem, p.name, rels[p]):  # later (more specific) keys win
            index[key] = p

    pixel_sizes = {}
    if cfg.pixel_size_csv:
        pixel_sizes = rd.read_pixel_size_table(cfg.resolve(cfg.pixel_size_csv),
                                               cfg.pixel_size_columns, issues.report)

    table, table_path = None, None
    rows_by_file: dict[Path, list[int]] = {}
    # With the ellipse source, a landmark table that exists is read too, as a reference only
    # (csv_* columns; its problems are recorded, never fatal).
    table_issues = issues
    if cfg.label_source == "ellipse" and cfg.landmarks_csv and cfg.resolve(cfg.landmarks_csv).is_file():
        table_issues = IssueLog(raw, "exclude")
    if cfg.label_source == "csv" or table_issues is not issues:
        table_path = cfg.resolve(cfg.landmarks_csv)
        table = lab.read_landmark_table(table_path, cfg.columns,
                                        strict=table_issues.mode == "fail")
        for i, (row, image, frame, status) in enumerate(
                zip(table["row"], table["image"], table["frame"], table["status"])):
            path = index.get(image)
            if path is None:
                table_issues.report(InputError(table_path, f"image {image!r} not found under {raw}",
                                               "correct the image name, add the file, or set "
                                               "data.on_bad_input: exclude to skip the row", row=int(row)),
                                    "row skipped")
            elif frame < 0:
                table_issues.report(InputError(table_path, status, row=int(row)), "row skipped")
            else:
                rows_by_file.setdefault(path, []).append(i)

    ellipse_cache: dict[Path, np.ndarray | InputError] = {}

    def ellipse(frame_id: str):
        """Landmarks from the frame's annotation (None if absent); InputError if unusable."""
        if not cfg.annotation_pattern:
            return None
        path = lab.annotation_path(raw, cfg.annotation_pattern, frame_id)
        if path not in ellipse_cache:
            if not path.exists():
                return None
            try:
                ellipse_cache[path] = lab.annotation_landmarks(path)
            except InputError as err:
                ellipse_cache[path] = err
        return ellipse_cache[path]

    frames: dict[str, np.ndarray] = {}
    records: list[dict] = []
    owner: dict[str, str] = {}
    for path in tqdm(files, desc="extract_frames", unit="file", disable=not progress):
        rel = rels[path]
        try:
            content = rd.read_file(path)
            sidecar = rd.read_sidecar(path)
            spacing, spacing_source = resolve_spacing(
                path, rel, (content.spacing_mm, content.spacing_source), sidecar,
                pixel_sizes, cfg.default_spacing_mm)
        except InputError as err:
            issues.report(err, "file skipped")
            for i in rows_by_file.get(path, []):
                table_issues.report(InputError(table_path, f"image {table['image'].iat[i]!r} was "
                                               f"excluded ({err.problem})", row=int(table["row"].iat[i])),
                                    "row skipped")
            continue
        subject = rd.subject_id(path.stem, subject_rx, content.patient_id, sidecar.get("subject_id"))
        n = content.frames.shape[0]
        ids = rd.frame_ids(path.stem, n, content.multi_frame)

        by_frame: dict[int, list[int]] = {}
        for i in rows_by_file.get(path, []):
            f = int(table["frame"].iat[i])
            if f >= n:
                table_issues.report(InputError(table_path, f"frame {f} is not in {rel} ({n} frame(s), "
                                               "counted from 0)", "correct the frame index",
                                               row=int(table["row"].iat[i])), "row skipped")
                continue
            by_frame.setdefault(f, []).append(i)

        for k, frame_id in enumerate(ids):
            if frame_id in owner:
                raise InputError(path, f"frame id {frame_id!r} is also produced by {owner[frame_id]}",
                                 "rename one of the files")
            owner[frame_id] = rel
            img = content.frames[k]
            rec = {"frame_id": frame_id, "subject_id": subject, "source_file": rel,
                   "frame_index": k, "width": int(img.shape[1]), "height": int(img.shape[0]),
                   "spacing_mm": spacing, "spacing_source": spacing_source,
                   "label_status": lab.MISSING, "dup_count": 0}
            label = np.full((4, 2), np.nan)
            csv_label = np.full(8, np.nan)
            ref = ellipse(frame_id)
            rows = by_frame.get(k, [])
            if rows:
                csv_label = table.loc[rows[0], list(COORD_COLUMNS)].to_numpy(dtype=np.float64)
            if cfg.label_source == "csv":
                rec["dup_count"] = len(rows)
                if rows:
                    first = rows[0]
                    label = csv_label
                    status = table["status"].iat[first]
                    rec["label_status"] = (lab.OK if status == lab.OK else
                                           f"row {int(table['row'].iat[first])}: {status}")
                    if len(rows) > 1:
                        log.warning("%s: %d table rows for frame %s (rows %s); keeping the first",
                                    table_path, len(rows), frame_id,
                                    ", ".join(str(int(table["row"].iat[j])) for j in rows))
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
            rec.update(zip(CSV_COLUMNS, csv_label))
            frames[frame_id] = img
            records.append(rec)

    manifest = pd.DataFrame(records, columns=list(MANIFEST_COLUMNS))
    manifest = manifest.sort_values("frame_id", kind="stable").reset_index(drop=True)
    if table_issues is not issues:
        for r in table_issues.rows:
            r["action"] = f"reference {r['action']}"
        issues.rows += table_issues.rows
    result = Extraction(frames, manifest, issues.frame())
    log_summary(result, len(files))
    return result


def log_summary(result: Extraction, n_files: int) -> None:
    m = result.manifest
    counts = m["label_status"].map(lambda s: s if s in (lab.OK, lab.MISSING) else "bad label")
    by = counts.value_counts()
    dup = int((m["dup_count"] > 1).sum())
    ref = int(m[REF_COLUMNS[0]].notna().sum())
    log.info("extract_frames: %d file(s) -> %d frame(s): %d labelled ok, %d without label, "
             "%d with a bad label, %d with duplicate rows, %d with ref_* ellipse; %d issue(s) "
             "(skipped files/rows)", n_files, len(m), by.get(lab.OK, 0), by.get(lab.MISSING, 0),
             by.get("bad label", 0), dup, ref, len(result.issues))


def write_outputs(result: Extraction, out_dir) -> dict[str, Path]:
    """frames.npz, manifest.csv, issues.csv under ``out_dir`` (byte-stable)."""
    out_dir = Path(out_dir)
    paths = {"frames": out_dir / "frames.npz", "manifest": out_dir / "manifest.csv",
             "issues": out_dir / "issues.csv"}
    save_npz(paths["frames"], result.frames)
    manifest = result.manifest.copy()
    manifest["spacing_mm"] = [format(float(v), SPACING_FORMAT) for v in manifest["spacing_mm"]]
    write_csv(manifest, paths["manifest"], digits=CSV_DIGITS)
    write_csv(result.issues, paths["issues"], digits=CSV_DIGITS)
    return paths

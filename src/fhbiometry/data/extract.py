"""Raw folder -> frames archive + manifest (stage ``extract_frames``, docs/architecture.md contract 2).

Per input file: read its frames (``readers``), find the pixel spacing (first found wins:
DICOM tags, sidecar ``<stem>.json`` ``pixel_spacing_mm``, a row of ``data.pixel_size_csv``,
``data.default_spacing_mm`` if > 0), the subject id (DICOM PatientID, sidecar ``subject_id``,
``data.subject_pattern`` on the stem, else the stem: allowed only with
``data.on_unmatched_subject: accept``; the manifest column ``subject_source`` says which)
and the labels (``labels``).

Bad inputs follow ``data.on_bad_input``: ``fail`` raises :class:`InputError` naming the file
(and row) and the fix; ``exclude`` skips the file or table row and records it in ``issues``
(``file, row, problem, action``), except a bad label of an existing frame, which keeps the
frame in the manifest with ``label_status`` = the problem.

Every conversion or guess (``readers.NOTES``: colour or 16-bit converted to 8-bit grey, a
non-US Modality, the default spacing, the stem as subject, ...) is logged and recorded in
``issues`` in both modes, with ``problem`` = ``<note name>: <detail>`` and the note's action;
the QC report counts them under ``inputs`` (docs/bad_inputs.md).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fhbiometry.readers import labels as lab
from fhbiometry.readers import media as rd
from fhbiometry.core.geometry import COORD_COLUMNS, CSV_COLUMNS, REF_COLUMNS
from fhbiometry.readers.media import InputError
from fhbiometry.core.store import save_npz, write_csv

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("frame_id", "subject_id", "subject_source", "source_file", "frame_index",
                    "width", "height", "spacing_mm", "spacing_source", "label_status", "dup_count",
                    *COORD_COLUMNS, *REF_COLUMNS, *CSV_COLUMNS)
ISSUE_COLUMNS = ("file", "row", "problem", "action")
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
    on_unmatched_subject: str = "fail"
    max_image_pixels: int = rd.DEFAULT_MAX_PIXELS

    @classmethod
    def from_params(cls, data: dict) -> "DataConfig":
        """The ``data`` section as a DataConfig (raw_dir a Path, numbers as int / float). No checks:
        ``params.load_params`` validates the section against the schema (``schema.Data``)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        cfg = cls(**known)
        cfg.raw_dir = Path(cfg.raw_dir)
        cfg.max_image_pixels = int(cfg.max_image_pixels)
        cfg.default_spacing_mm = float(cfg.default_spacing_mm)
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

    def note(self, file, name: str, detail: str) -> None:
        """Record a conversion or guess (``readers.NOTES``) in both modes: it is not an error."""
        action = rd.NOTES[name]
        log.warning("%s: %s: %s -> %s", file, name, detail, action)
        self.rows.append({"file": self.relative(file), "row": "", "problem": f"{name}: {detail}",
                          "action": action})

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


def index_inputs(raw: Path, files: list[Path]) -> tuple[dict[Path, str], dict[str, Path]]:
    """Relative path of each input, and the lookup of a table's image name (stem, file name or
    relative path; the more specific key wins) -> input file."""
    rels = {p: p.relative_to(raw).as_posix() for p in files}
    index: dict[str, Path] = {}
    for p in files:
        for key in (p.stem, p.name, rels[p]):  # later (more specific) keys win
            index[key] = p
    return rels, index


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


def read_label_table(cfg: DataConfig, index: dict[str, Path], issues: IssueLog) -> LabelTable:
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
        path = index.get(image)
        if path is None:
            labels.skip_row(i, f"image not found: {image!r} is not under data.raw_dir",
                            "correct the image name, add the file, or set "
                            "data.on_bad_input: exclude to skip the row")
        elif frame < 0:
            labels.skip_row(i, status)
        else:
            labels.rows_by_file.setdefault(path, []).append(i)
    return labels


class EllipseLabels:
    """Landmarks from each frame's annotation image, read once per annotation file."""

    def __init__(self, raw_dir: Path, pattern: str, max_pixels: int = rd.DEFAULT_MAX_PIXELS):
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


@dataclass
class FileInput:
    """One input file read: its frames, where the spacing came from, its subject."""

    path: Path
    rel: str
    content: rd.FileFrames
    spacing: float
    spacing_source: str
    subject: str
    subject_source: str


def read_input(path: Path, rel: str, cfg: DataConfig, pixel_sizes: dict,
               subject_rx) -> FileInput:
    """Read one file, find its pixel spacing and subject; InputError when unusable.

    The conversions and guesses made are in ``content.notes`` (readers.NOTES)."""
    content = rd.read_file(path, cfg.max_image_pixels)
    sidecar = rd.read_sidecar(path)
    spacing, spacing_source = resolve_spacing(
        path, rel, (content.spacing_mm, content.spacing_source), sidecar,
        pixel_sizes, cfg.default_spacing_mm)
    if spacing_source == "default":
        rd.note(content.notes, "spacing_default", f"data.default_spacing_mm = {spacing:g} mm")
    subject, source = rd.subject_with_source(path.stem, subject_rx, content.patient_id,
                                             sidecar.get("subject_id"))
    if source == "stem":
        if cfg.on_unmatched_subject == "fail":
            raise unmatched_subject(path, cfg.subject_pattern)
        rd.note(content.notes, "subject_from_stem",
                f"data.subject_pattern '{cfg.subject_pattern}' does not match; subject {subject!r}")
    return FileInput(path, rel, content, spacing, spacing_source, subject, source)


def unmatched_subject(path: Path, pattern: str) -> InputError:
    return InputError(
        path, f"subject unknown: data.subject_pattern '{pattern}' does not match the file name "
        f"{path.stem!r} and there is no DICOM PatientID or sidecar subject_id",
        "change data.subject_pattern so its group (?P<subject>...) matches every file name, add a "
        f'sidecar {path.stem}.json {{"subject_id": "..."}}, or set data.on_unmatched_subject: '
        "accept (the file becomes its own subject: frames of one subject may then land in "
        "different splits)")


def rows_by_frame(labels: LabelTable, item: FileInput, n_frames: int) -> dict[int, list[int]]:
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


def resolve_label(rec: dict, cfg: DataConfig, labels: LabelTable, rows: list[int],
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


def frame_record(item: FileInput, k: int, frame_id: str, img: np.ndarray) -> dict:
    """The manifest row of frame ``k`` of a file, before its label is resolved."""
    return {"frame_id": frame_id, "subject_id": item.subject, "subject_source": item.subject_source,
            "source_file": item.rel,
            "frame_index": k, "width": int(img.shape[1]), "height": int(img.shape[0]),
            "spacing_mm": item.spacing, "spacing_source": item.spacing_source,
            "label_status": lab.MISSING, "dup_count": 0}


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
    rels, index = index_inputs(raw, files)
    pixel_sizes = {}
    if cfg.pixel_size_csv:
        pixel_sizes = rd.read_pixel_size_table(cfg.resolve(cfg.pixel_size_csv),
                                               cfg.pixel_size_columns, issues.report)
    hc_table = {}
    if cfg.pixel_size_csv:
        hc_table = rd.read_reference_hc(cfg.resolve(cfg.pixel_size_csv), cfg.pixel_size_columns, issues.report)
    labels = read_label_table(cfg, index, issues)
    ellipses = EllipseLabels(raw, cfg.annotation_pattern, cfg.max_image_pixels)
    frames: dict[str, np.ndarray] = {}
    records: list[dict] = []
    owner: dict[str, str] = {}
    for path in tqdm(files, desc="extract_frames", unit="file", disable=not progress):
        try:
            item = read_input(path, rels[path], cfg, pixel_sizes, subject_rx)
        except InputError as err:
            skip_file(err, path, labels, issues)
            continue
        content = item.content
        for name, detail in content.notes:
            issues.note(path, name, detail)
        by_frame = rows_by_frame(labels, item, content.frames.shape[0])
        ids = rd.frame_ids(path.stem, content.frames.shape[0], content.multi_frame)
        for k, frame_id in enumerate(ids):
            if frame_id in owner:
                raise InputError(path, f"frame id {frame_id!r} is also produced by {owner[frame_id]}",
                                 "rename one of the files")
            owner[frame_id] = item.rel
            rec = frame_record(item, k, frame_id, content.frames[k])
            resolve_label(rec, cfg, labels, by_frame.get(k, []), ellipses, issues)
            frames[frame_id] = content.frames[k]
            records.append(rec)
    manifest = build_manifest(records)
    if hc_table:
        manifest = add_reference_hc(manifest, hc_table)
    result = Extraction(frames, manifest, merge_issues(issues, labels.issues))
    log_summary(result, len(files))
    return result


def skip_file(err: InputError, path: Path, labels: LabelTable, issues: IssueLog) -> None:
    """Report an unusable file (file skipped) and each of its table rows (row skipped)."""
    issues.report(err, "file skipped")
    for i in labels.rows_by_file.get(path, []):
        labels.skip_row(i, f"image excluded: {labels.table['image'].iat[i]!r} ({err.problem})")


def build_manifest(records: list[dict]) -> pd.DataFrame:
    manifest = pd.DataFrame(records, columns=list(MANIFEST_COLUMNS))
    return manifest.sort_values("frame_id", kind="stable").reset_index(drop=True)


def add_reference_hc(manifest: pd.DataFrame, hc_table: dict) -> pd.DataFrame:
    """The column ``hc_ref_mm`` (last): each frame's reference head circumference from the
    pixel-size table (``data.pixel_size_columns.hc``), looked up by its source file; NaN if none.
    Only added when that column is configured, so other manifests keep their bytes."""
    out = manifest.copy()
    found = [rd.lookup_by_name(hc_table, rel) for rel in out["source_file"].astype(str)]
    out["hc_ref_mm"] = np.array([np.nan if v is None else v for v in found], dtype=np.float64)
    return out


def merge_issues(issues: IssueLog, table_issues: IssueLog) -> pd.DataFrame:
    """issues.csv rows: the main log, then the reference table's problems (action prefixed
    ``reference``)."""
    if table_issues is not issues:
        for r in table_issues.rows:
            r["action"] = f"reference {r['action']}"
        issues.rows += table_issues.rows
    return issues.frame()


def log_summary(result: Extraction, n_files: int) -> None:
    m = result.manifest
    counts = m["label_status"].map(lambda s: s if s in (lab.OK, lab.MISSING) else "bad label")
    by = counts.value_counts()
    dup = int((m["dup_count"] > 1).sum())
    ref = int(m[REF_COLUMNS[0]].notna().sum())
    n_notes = int(result.issues["problem"].map(rd.note_name).notna().sum())
    log.info("extract_frames: %d file(s) -> %d frame(s): %d labelled ok, %d without label, "
             "%d with a bad label, %d with duplicate rows, %d with ref_* ellipse; %d issue(s) "
             "(skipped files/rows), %d conversion(s) or guess(es) (issues.csv)", n_files, len(m),
             by.get(lab.OK, 0), by.get(lab.MISSING, 0), by.get("bad label", 0), dup, ref,
             len(result.issues) - n_notes, n_notes)


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

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

Every conversion or guess (``readers.common.NOTES``: colour or 16-bit converted to 8-bit grey, a
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

from fhbiometry.config.schema import Data
from fhbiometry.core.geometry import COORD_COLUMNS, CSV_COLUMNS, REF_COLUMNS
from fhbiometry.core.store import save_npz, write_csv
from fhbiometry.data.frame_labels import EllipseLabels, LabelTable, read_label_table, resolve_label, rows_by_frame
from fhbiometry.data.issues import ISSUE_COLUMNS, IssueLog  # noqa: F401  (ISSUE_COLUMNS: issues.csv header)
from fhbiometry.readers import labels as lab
from fhbiometry.readers import media as rd
from fhbiometry.readers.common import InputError
from fhbiometry.readers.subjects import canonical_subjects
from fhbiometry.readers.tables import nfc

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("frame_id", "subject_id", "subject_source", "source_file", "frame_index",
                    "width", "height", "spacing_mm", "spacing_source", "label_status", "dup_count",
                    *COORD_COLUMNS, *REF_COLUMNS, *CSV_COLUMNS)
CSV_DIGITS = 3           # coordinates: 0.001 px
SPACING_FORMAT = ".10g"  # spacing_mm is written as text so it keeps 10 significant digits


def schema_default(name: str):
    """The default of ``data.<name>`` in the schema (``config.schema.Data``), sections as dicts."""
    value = Data.model_fields[name].get_default(call_default_factory=True)
    return value.model_dump() if hasattr(value, "model_dump") else value


def _default(name: str):
    return field(default_factory=lambda: schema_default(name))


@dataclass
class DataConfig:
    """Params section ``data`` (see params.yaml); every default is the schema's (``schema.Data``)."""

    raw_dir: Path
    label_source: str = _default("label_source")
    landmarks_csv: str = _default("landmarks_csv")
    columns: dict = _default("columns")
    annotation_pattern: str = _default("annotation_pattern")
    pixel_size_csv: str = _default("pixel_size_csv")
    pixel_size_columns: dict = _default("pixel_size_columns")
    default_spacing_mm: float = _default("default_spacing_mm")
    subject_pattern: str = _default("subject_pattern")
    on_bad_input: str = _default("on_bad_input")
    on_unmatched_subject: str = _default("on_unmatched_subject")
    max_image_pixels: int = _default("max_image_pixels")

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
    relative path, in Unicode NFC; the more specific key wins) -> input file."""
    rels = {p: p.relative_to(raw).as_posix() for p in files}
    index: dict[str, Path] = {}
    for p in files:
        for key in (p.stem, p.name, rels[p]):  # later (more specific) keys win
            index[nfc(key)] = p
    return rels, index


@dataclass
class FileInput:
    """One input file read: its frames, where the spacing came from, its subject (as written;
    ``merge_subjects`` merges spellings that differ only by case, space or Unicode form)."""

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


def frame_record(item: FileInput, k: int, frame_id: str, img: np.ndarray) -> dict:
    """The manifest row of frame ``k`` of a file, before its label is resolved."""
    return {"frame_id": frame_id, "subject_id": item.subject, "subject_source": item.subject_source,
            "source_file": item.rel,
            "frame_index": k, "width": int(img.shape[1]), "height": int(img.shape[0]),
            "spacing_mm": item.spacing, "spacing_source": item.spacing_source,
            "label_status": lab.MISSING, "dup_count": 0}


@dataclass
class Tables:
    """What ``extract`` reads beside the input files: pixel sizes, reference HCs, labels."""

    pixel_sizes: dict
    hc: dict
    labels: LabelTable
    ellipses: EllipseLabels


def read_tables(cfg: DataConfig, index: dict, issues: IssueLog) -> Tables:
    pixel_sizes, hc_table = {}, {}
    if cfg.pixel_size_csv:
        table = cfg.resolve(cfg.pixel_size_csv)
        pixel_sizes = rd.read_pixel_size_table(table, cfg.pixel_size_columns, issues.report)
        hc_table = rd.read_reference_hc(table, cfg.pixel_size_columns, issues.report)
    return Tables(pixel_sizes, hc_table, read_label_table(cfg, index, issues),
                  EllipseLabels(cfg.raw_dir, cfg.annotation_pattern, cfg.max_image_pixels))


def list_files(cfg: DataConfig, issues: IssueLog) -> list[Path]:
    """The inputs under raw_dir; each hidden file of a readable extension recorded as skipped."""
    hidden: list[str] = []
    files = rd.find_inputs(cfg.raw_dir, cfg.annotation_pattern, skipped=hidden)
    readable = rd.extensions()
    for rel in hidden:
        if rel.lower().endswith(readable):  # '..png' too, whose Path suffix is ''
            issues.note(cfg.raw_dir / rel, "hidden_file_skipped",
                        "its name (or a folder's) starts with '.': not read; rename it to read it")
    if not files:
        raise InputError(cfg.raw_dir, "no DICOM, video or image files found",
                         "put the data there or set data.raw_dir")
    return files


class FrameCollector:
    """The frames and manifest records of the files read, with unique frame ids."""

    def __init__(self):
        self.frames: dict[str, np.ndarray] = {}
        self.records: list[dict] = []
        self.owner: dict[str, str] = {}
        self.items: list[FileInput] = []

    def add(self, item: FileInput, tables: Tables, cfg: DataConfig, issues: IssueLog) -> None:
        content, path = item.content, item.path
        self.items.append(item)
        by_frame = rows_by_frame(tables.labels, item, content.frames.shape[0])
        ids = rd.frame_ids(path.stem, content.frames.shape[0], content.multi_frame)
        for k, frame_id in enumerate(ids):
            if frame_id in self.owner:
                raise InputError(path, f"frame id {frame_id!r} is also produced by {self.owner[frame_id]}",
                                 "rename one of the files")
            self.owner[frame_id] = item.rel
            rec = frame_record(item, k, frame_id, content.frames[k])
            resolve_label(rec, cfg, tables.labels, by_frame.get(k, []), tables.ellipses, issues)
            self.frames[frame_id] = content.frames[k]
            self.records.append(rec)


def merge_subjects(collected: FrameCollector, issues: IssueLog) -> None:
    """Subject ids written in several ways (``P001``, ``p001``: equal after
    ``readers.subjects.normalise_subject``) become one in the records (the spelling of the most
    files, ties: the first sorted), with a note on each file whose id changed; ids written one
    way stay as they are."""
    mapping, merged = canonical_subjects(item.subject for item in collected.items)
    for subject, names in merged.items():
        log.warning("subject ids %s differ only by case, space or Unicode form: one subject %r", names, subject)
    for item in collected.items:
        if mapping[item.subject] != item.subject:
            issues.note(item.path, "subject_ids_merged", f"subject id {item.subject!r} merged into "
                        f"{mapping[item.subject]!r} (ids that differ only by case, space or Unicode form "
                        "are one subject)")
    if merged:
        for rec in collected.records:
            rec["subject_id"] = mapping[rec["subject_id"]]


def extract(data: dict, progress: bool = True) -> Extraction:
    """Read every input under ``data["raw_dir"]`` and build frames, manifest and issues."""
    cfg = DataConfig.from_params(data)
    issues = IssueLog(cfg.raw_dir, cfg.on_bad_input)
    subject_rx = rd.compile_subject_pattern(cfg.subject_pattern)
    files = list_files(cfg, issues)
    rels, index = index_inputs(cfg.raw_dir, files)
    tables = read_tables(cfg, index, issues)
    collected = FrameCollector()
    for path in tqdm(files, desc="extract_frames", unit="file", disable=not progress):
        try:
            item = read_input(path, rels[path], cfg, tables.pixel_sizes, subject_rx)
        except InputError as err:
            skip_file(err, path, tables.labels, issues)
            continue
        for name, detail in item.content.notes:
            issues.note(path, name, detail)
        collected.add(item, tables, cfg, issues)
    merge_subjects(collected, issues)
    manifest = build_manifest(collected.records)
    if tables.hc:
        manifest = add_reference_hc(manifest, tables.hc)
    result = Extraction(collected.frames, manifest, merge_issues(issues, tables.labels.issues))
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


def stop_message(err: InputError, mode: str) -> str:
    """The stage's last line when a bad input stops it: the error, and in ``fail`` mode only the
    hint that ``exclude`` would skip it (in ``exclude`` mode the input stops the stage anyway)."""
    hint = ("\n(or set data.on_bad_input: exclude to skip bad inputs and record them in "
            "data/frames/issues.csv)") if mode == "fail" else ""
    return f"extract_frames: bad input: {err}{hint}"


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

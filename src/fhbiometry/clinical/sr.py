"""One DICOM Comprehensive SR per study: the cines' biometry as an OB-GYN Ultrasound Procedure
Report (PS3.16 TID 5000), built with highdicom's content items on a hand-made tree:

    CONTAINER OB-GYN Ultrasound Procedure Report (TID 5000)
      HAS CONCEPT MOD  TEXT Algorithm Name / Version / Parameters      (TID 4019)
      HAS OBS CONTEXT  Observer Type = Device, Device Observer UID, Name, Manufacturer,
                       Model Name, Serial Number = checkpoint SHA-256   (TID 1002 / 1004)
      CONTAINS TEXT    Comment: per cine, what was measured (or "no accepted frame: no measurement")
      CONTAINS CONTAINER Fetal Biometry (TID 5005)
        CONTAINS CONTAINER Biometry Group (TID 5008), one per measurement and cine:
          CONTAINS NUM  BPD | OFD | HC, mm                             (TID 300)
            HAS CONCEPT MOD CODE Derivation = Median (of the accepted frames)
            HAS PROPERTIES  NUM +/- range of upper / lower measurement uncertainty, mm
                            (the interval: value + upper, value - lower; TID 310)
            INFERRED FROM   IMAGE Source of Measurement: SOP Class / Instance UID, frames used
          CONTAINS NUM  Gestational Age, wk; HAS CONCEPT MOD Equation = BPD | HC, Hadlock 1984
      CONTAINS CONTAINER Fetal Biometry Ratios (TID 5004): NUM Cephalic Index, %

Patient and study attributes are copied from the cine's DICOM (highdicom does it from the
evidence); a cine from video or stills gets a new study with PatientID = its subject id.
Every new UID comes from pydicom's ``generate_uid``. A cine with no accepted frame has no
measurement item, only its comment. ``read_sr`` reads the values back.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from fhbiometry import __version__
from fhbiometry.clinical import codes as cc
from fhbiometry.clinical.sources import Study, file_stem, group_studies, read_headers

SR_SERIES_NUMBER = 900
MANUFACTURER = "fhbiometry"
FLAG_PREFIX = "flag_"


@dataclass
class Device:
    """The algorithm as the SR's observer: program, version, checkpoint and its SHA-256 (and a
    refinement's coarse model, which chose the crops it measured)."""

    model_file: str
    sha256: str
    arch: str
    kind: str
    threshold: float
    threshold_source: str
    name: str = "fhbiometry predict"
    version: str = __version__
    coarse_file: str = ""
    coarse_sha256: str = ""

    @property
    def uid(self) -> str:
        """Device Observer UID: the same checkpoint (and coarse model) always gives the same UID."""
        sources = ["fhbiometry-device", self.sha256]
        if self.coarse_sha256:
            sources.append(self.coarse_sha256)
        return generate_uid(entropy_srcs=sources)


def describe_model(model_path, threshold: float, threshold_source: str, coarse_path=None) -> Device:
    """The Device of a checkpoint file: its SHA-256 and the arch / kind of its metadata; with
    ``coarse_path`` (a refinement's coarse model) that file's name and SHA-256 too."""
    from safetensors import safe_open  # lazy: safetensors only to read the checkpoint's metadata

    path = Path(model_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads((f.metadata() or {}).get("fhbiometry", "{}"))
    coarse = Path(coarse_path) if coarse_path else None
    return Device(path.name, sha, str(meta.get("arch", "?")), str(meta.get("kind", "?")), float(threshold),
                  str(threshold_source), coarse_file=coarse.name if coarse else "",
                  coarse_sha256=hashlib.sha256(coarse.read_bytes()).hexdigest() if coarse else "")


def cine_status(row) -> str:
    """The summary's ``status`` where it has one, else ``measured`` / ``no accepted frame``."""
    status = row.get("status")
    if isinstance(status, str) and status:
        return status
    return "no accepted frame" if bool(row.get("fallback", False)) or int(row["n_used"]) == 0 else "measured"


def finite(value) -> bool:
    return value is not None and not pd.isna(value) and np.isfinite(float(value))


# ---- content items ------------------------------------------------------------------------------
def with_children(item, children):
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    if children:
        item.ContentSequence = hd.sr.ContentSequence(children)
    return item


def image_references(used: pd.DataFrame, headers: dict) -> list:
    """INFERRED FROM IMAGE items (TID 320): each DICOM file of the used frames, its frame numbers."""
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    items = []
    for rel, rows in used.groupby("source_file", sort=False):
        ds = headers.get(rel)
        if ds is None:
            continue
        multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
        numbers = [int(i) + 1 for i in rows["frame_index"]] if multi else None
        items.append(hd.sr.ImageContentItem(cc.SOURCE_OF_MEASUREMENT, ds.SOPClassUID, ds.SOPInstanceUID,
                                            referenced_frame_numbers=numbers, relationship_type="INFERRED FROM"))
    return items


def measurement(concept, unit, value, lo, hi, references) -> object:
    """NUM (TID 300): the median, its derivation, the interval's half-widths, the source images."""
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    children = [hd.sr.CodeContentItem(cc.DERIVATION, cc.MEDIAN, relationship_type="HAS CONCEPT MOD")]
    if finite(lo) and finite(hi):
        children += [hd.sr.NumContentItem(cc.UPPER_UNCERTAINTY, float(hi) - float(value), unit,
                                          relationship_type="HAS PROPERTIES"),
                     hd.sr.NumContentItem(cc.LOWER_UNCERTAINTY, float(value) - float(lo), unit,
                                          relationship_type="HAS PROPERTIES")]
    item = hd.sr.NumContentItem(concept, float(value), unit, relationship_type="CONTAINS")
    return with_children(item, children + list(references))


def gestational_age(weeks: float, equation) -> object:
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    item = hd.sr.NumContentItem(cc.GESTATIONAL_AGE, float(weeks), cc.WEEK, relationship_type="CONTAINS")
    return with_children(item, [hd.sr.CodeContentItem(cc.EQUATION, equation, relationship_type="HAS CONCEPT MOD")])


def biometry_groups(row, references) -> list:
    """The Biometry Groups (TID 5008) of one measured cine: BPD (+ GA), OFD, HC (+ GA)."""
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    groups = []
    for column, (concept, unit, equation, ga_column) in cc.MEASUREMENTS.items():
        if not finite(row.get(column)):
            continue
        items = [measurement(concept, unit, row[column], row.get(f"{column}_lo"), row.get(f"{column}_hi"),
                             references)]
        if equation is not None and finite(row.get(ga_column)):
            items.append(gestational_age(row[ga_column], equation))
        group = hd.sr.ContainerContentItem(cc.BIOMETRY_GROUP, template_id="5008", relationship_type="CONTAINS")
        groups.append(with_children(group, items))
    return groups


def ratio_items(row, references) -> list:
    return [measurement(concept, unit, row[column], None, None, references)
            for column, (concept, unit) in cc.RATIOS.items() if finite(row.get(column))]


def rejection_reason(rows: pd.DataFrame, threshold: float) -> str:
    """Why the frames were rejected: how many raised each QC flag or fell below the threshold."""
    parts = [f"{int(rows[c].sum())} {c[len(FLAG_PREFIX):]}" for c in rows.columns
             if c.startswith(FLAG_PREFIX) and rows[c].astype(bool).any()]
    low = int((rows["confidence"] < threshold).sum()) if "confidence" in rows else 0
    if low:
        parts.append(f"{low} confidence < {threshold:.3f}")
    return ", ".join(parts) or "none accepted"


def frame_list(rows: pd.DataFrame) -> str:
    """``0, 2, 5`` for one file; ``a.png #0, b.png #0`` for a cine of several files."""
    if rows["source_file"].nunique() <= 1:
        return ", ".join(str(int(i)) for i in rows["frame_index"])
    return ", ".join(f"{f} #{int(i)}" for f, i in zip(rows["source_file"], rows["frame_index"]))


def cine_comment(row, rows: pd.DataFrame, device: Device) -> str:
    cine, n = row["cine_id"], int(row["n_frames"])
    status = cine_status(row)
    if status != "measured":
        return (f"cine {cine}: {status} ({n} frames; rejected: {rejection_reason(rows, device.threshold)}): "
                "no measurement")
    text = (f"cine {cine}: median of the {int(row['n_used'])} of {n} frames accepted (QC flags and confidence "
            f">= {device.threshold:.3f}); frames used: {frame_list(rows[rows['accepted'].astype(bool)])}")
    if not finite(row.get("bpd_mm")):
        text += "; no pixel spacing: no measurement in mm"
    return text


def observer_items(device: Device) -> list:
    """Algorithm Identification (TID 4019) and the device observer context (TID 1002 / 1004)."""
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    parameters = [f"checkpoint {device.model_file} sha256 {device.sha256} ({device.arch} {device.kind})",
                  f"confidence threshold {device.threshold:.4f} ({device.threshold_source})"]
    if device.coarse_sha256:
        parameters.append(f"coarse model {device.coarse_file} sha256 {device.coarse_sha256} (its heads chose the crops)")
    algorithm = hd.sr.AlgorithmIdentification(device.name, device.version, parameters=parameters)
    observer = hd.sr.ObserverContext(cc.DEVICE, hd.sr.DeviceObserverIdentifyingAttributes(
        device.uid, name=device.name, manufacturer_name=MANUFACTURER,
        model_name=f"{MANUFACTURER} {device.version} {device.arch} {device.kind}", serial_number=device.sha256))
    return list(algorithm) + list(hd.sr.ObservationContext(observer_device_context=observer))


def content_tree(study: Study, summary: pd.DataFrame, frames: pd.DataFrame, device: Device):
    """The root CONTAINER (TID 5000) of one study's SR."""
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    comments, biometry, ratios = [], [], []
    for cine in study.cines:
        row = summary.loc[summary["cine_id"] == cine].iloc[0].to_dict()
        rows = frames[frames["cine_id"] == cine]
        comments.append(hd.sr.TextContentItem(cc.COMMENT, cine_comment(row, rows, device),
                                              relationship_type="CONTAINS"))
        if cine_status(row) != "measured":
            continue
        refs = image_references(rows[rows["accepted"].astype(bool)], study.headers)
        biometry += biometry_groups(row, refs)
        ratios += ratio_items(row, refs)
    sections = []
    if biometry:
        sections.append(with_children(hd.sr.ContainerContentItem(
            cc.FETAL_BIOMETRY, template_id="5005", relationship_type="CONTAINS"), biometry))
    if ratios:
        sections.append(with_children(hd.sr.ContainerContentItem(
            cc.BIOMETRY_RATIOS, template_id="5004", relationship_type="CONTAINS"), ratios))
    root = hd.sr.ContainerContentItem(cc.REPORT, template_id="5000")
    return with_children(root, observer_items(device) + comments + sections)


def new_study_header(subject: str):
    """Patient / study attributes for a cine without a DICOM source (a new study)."""
    ds = Dataset()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = str(subject), "", "", ""
    ds.StudyInstanceUID, ds.StudyID, ds.StudyDate, ds.StudyTime = generate_uid(), "", "", ""
    ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = "1.2.840.10008.5.1.4.1.1.88.33", generate_uid(), generate_uid()
    return ds


def build_sr(study: Study, summary: pd.DataFrame, frames: pd.DataFrame, device: Device):
    """The Comprehensive SR (highdicom ``ComprehensiveSR``) of one study."""
    import highdicom as hd  # lazy: highdicom only when an SR is built; report.py imports this module for its helpers

    header = study.header
    if header is None:
        header = new_study_header(frames.loc[frames["cine_id"] == study.cines[0], "subject_id"].iloc[0])
    evidence = [header, *[h for h in study.headers.values() if h.SOPInstanceUID != header.SOPInstanceUID]]
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence, content=content_tree(study, summary, frames, device),
        series_instance_uid=generate_uid(), series_number=SR_SERIES_NUMBER, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer=MANUFACTURER, is_complete=True, is_final=False,
        series_description="fhbiometry fetal head biometry", manufacturer_model_name=device.name,
        software_versions=device.version, record_evidence=False)
    if study.header is None:   # the stand-in header is no instance: nothing to list as evidence
        for key in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
            if key in sr:
                delattr(sr, key)
    return sr


def write_srs(frames: pd.DataFrame, summary: pd.DataFrame, sources: dict, out_dir, device: Device) -> list[Path]:
    """One SR per study under ``out_dir`` (``study_<UID>.dcm`` / ``cine_<id>.dcm``); ``sources``
    maps each ``source_file`` of the frame table to its path (for the DICOM headers)."""
    if frames.empty:
        return []
    headers = read_headers(sources, list(dict.fromkeys(frames["source_file"])))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for study in group_studies(frames, headers):
        path = out_dir / f"{file_stem(study)}.dcm"
        build_sr(study, summary, frames, device).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# ---- reading back ---------------------------------------------------------------------------
def num_value(item) -> float:
    mv = item.MeasuredValueSequence[0]
    return float(mv.FloatingPointValue) if "FloatingPointValue" in mv else float(mv.NumericValue)


def concept(item) -> tuple[str, str]:
    c = item.ConceptNameCodeSequence[0]
    return str(c.CodeValue), str(c.CodingSchemeDesignator)


def read_measurement(item) -> dict:
    """value, unit, derivation, interval, source images (SOP Instance UID -> frame numbers)."""
    out = {"code": concept(item)[0], "value": num_value(item),
           "unit": str(item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue), "images": {}}
    for child in item.get("ContentSequence", []):
        code = concept(child)[0]
        if code == cc.DERIVATION.value:
            out["derivation"] = str(child.ConceptCodeSequence[0].CodeValue)
        elif code == cc.UPPER_UNCERTAINTY.value:
            out["hi"] = out["value"] + num_value(child)
        elif code == cc.LOWER_UNCERTAINTY.value:
            out["lo"] = out["value"] - num_value(child)
        elif code == cc.EQUATION.value:
            out["equation"] = str(child.ConceptCodeSequence[0].CodeValue)
        elif child.ValueType == "IMAGE":
            ref = child.ReferencedSOPSequence[0]
            out["images"][str(ref.ReferencedSOPInstanceUID)] = [int(f) for f in ref.get("ReferencedFrameNumber", [])]
    return out


def read_sr(path) -> dict:
    """An SR written here, read back with pydicom: {"study", "patient", "comments", "measurements"
    (one dict per NUM: see ``read_measurement``; GA items carry their equation)}."""
    ds = pydicom.dcmread(str(path))
    out = {"study": str(ds.StudyInstanceUID), "patient": str(ds.PatientID), "comments": [], "measurements": []}

    def walk(items):
        for item in items:
            if item.ValueType == "NUM":
                out["measurements"].append(read_measurement(item))
            elif item.ValueType == "TEXT" and concept(item)[0] == cc.COMMENT.value:
                out["comments"].append(str(item.TextValue))
            elif item.ValueType == "CONTAINER":
                walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return out

"""The measured input files behind a predict run: their DICOM headers (patient, study, SOP
UIDs) and the studies they form. A cine of DICOM files belongs to its StudyInstanceUID; a cine
of other files (video, stills) is a study of its own."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
import pandas as pd

# copied from the source DICOM into the SR (Patient and General Study modules); missing ones empty
PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                 "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription",
                 "IssuerOfPatientID", "PatientAge", "PatientWeight", "OtherPatientIDs")
TYPE2 = {"PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "ReferringPhysicianName", "StudyID", "AccessionNumber"}
UIDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")


@dataclass
class Study:
    """One study: its key (StudyInstanceUID, or ``cine:<id>`` for non-DICOM cines), the header
    its SR copies (None without a DICOM source), its cines and the headers of its DICOM files."""

    key: str
    header: object | None
    cines: list = field(default_factory=list)
    headers: dict = field(default_factory=dict)     # source_file -> header (DICOM sources only)


def read_header(path) -> object | None:
    """The DICOM header of ``path`` (no pixel data), or None when it is not a DICOM file."""
    import pydicom  # lazy: pydicom only when a DICOM header is read
    from pydicom.errors import InvalidDicomError  # lazy: pydicom, as above

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError):
        return None
    return ds if all(k in ds for k in UIDS) else None


def evidence_header(ds) -> object:
    """A small dataset with the UIDs and the patient / study attributes of ``ds`` (Type 2 ones
    that the source lacks become empty), the shape highdicom's SR constructor reads."""
    from pydicom.dataset import Dataset  # lazy: pydicom only for a DICOM source

    out = Dataset()
    for key in UIDS + PATIENT_STUDY:
        if key in ds:
            setattr(out, key, ds[key].value)
        elif key in TYPE2:
            setattr(out, key, "")
    for key in ("SpecificCharacterSet", "NumberOfFrames"):
        if key in ds:
            setattr(out, key, ds[key].value)
    return out


def read_headers(sources: dict, files) -> dict:
    """source_file -> DICOM header (None for non-DICOM) of each name in ``files``; ``sources``
    maps the frame table's ``source_file`` to its path."""
    out = {}
    for rel in files:
        if rel not in sources:
            raise KeyError(f"frames.csv source_file {rel!r} is not among the inputs {sorted(sources)[:5]}...: "
                           "pass the same inputs that were measured")
        out[rel] = read_header(sources[rel])
    return out


def group_studies(frames: pd.DataFrame, headers: dict) -> list[Study]:
    """The studies of the measured cines, in the order of the frame table."""
    studies: dict[str, Study] = {}
    for cine, rows in frames.groupby("cine_id", sort=False):
        files = list(dict.fromkeys(rows["source_file"]))
        dicom = [f for f in files if headers.get(f) is not None]
        key = str(headers[dicom[0]].StudyInstanceUID) if dicom else f"cine:{cine}"
        study = studies.setdefault(key, Study(key, evidence_header(headers[dicom[0]]) if dicom else None))
        study.cines.append(cine)
        study.headers.update({f: evidence_header(headers[f]) for f in dicom})
    return list(studies.values())


def file_stem(study: Study) -> str:
    """A file name for the study's SR: ``study_<StudyInstanceUID>`` or ``cine_<cine id>``."""
    name = f"study_{study.key}" if study.header is not None else f"cine_{study.key.split(':', 1)[1]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


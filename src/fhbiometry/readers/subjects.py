"""Subject ids: DICOM PatientID, a sidecar's ``subject_id``, ``data.subject_pattern`` on the file
stem, else the stem. Ids are compared after normalisation (Unicode NFC, surrounding space
stripped, lower case): ``P001_HC`` and ``p001_2HC`` are one subject (``canonical_subjects``;
``extract`` records ids that differ only so, note ``subject_ids_merged``).
"""
from __future__ import annotations

import logging
import re
import unicodedata

from fhbiometry.config.schema import Data

log = logging.getLogger(__name__)

# the one default of data.subject_pattern: the schema's (HC18 ``014_2HC`` -> ``014``, synthetic
# ``sub014_2HC`` -> ``sub014``)
DEFAULT_SUBJECT_PATTERN: str = Data.model_fields["subject_pattern"].default


def normalise_subject(subject) -> str:
    """The id subjects are grouped by: Unicode NFC, surrounding whitespace stripped, lower case."""
    return unicodedata.normalize("NFC", str(subject)).strip().lower()


def compile_subject_pattern(pattern: str) -> re.Pattern:
    """``data.subject_pattern`` compiled (``schema.Data`` checks it has a group ``subject``)."""
    return re.compile(pattern)


def subject_from_stem(stem: str, pattern) -> str | None:
    """Group ``subject`` of ``pattern`` searched in ``stem``; None when it does not match."""
    rx = pattern if isinstance(pattern, re.Pattern) else compile_subject_pattern(pattern)
    m = rx.search(unicodedata.normalize("NFC", stem))
    if m is None or not m.group("subject"):
        return None
    return m.group("subject")


def subject_with_source(stem: str, pattern, patient_id: str = "", sidecar_id=None) -> tuple[str, str]:
    """``(subject id as written, source)``: DICOM PatientID if non-empty (``dicom``), else the
    sidecar's ``subject_id`` (``sidecar``), else ``pattern`` on the stem (``pattern``), else the
    stem itself (``stem``: each such file is its own subject; the caller decides if that is allowed).
    Surrounding whitespace is stripped; :func:`canonical_subjects` merges other spellings."""
    if patient_id and str(patient_id).strip():
        return str(patient_id).strip(), "dicom"
    if sidecar_id is not None and str(sidecar_id).strip():
        return str(sidecar_id).strip(), "sidecar"
    found = subject_from_stem(stem, pattern)
    if found is not None:
        return found, "pattern"
    return stem, "stem"


def subject_id(stem: str, pattern, patient_id: str = "", sidecar_id=None) -> str:
    """The subject id of :func:`subject_with_source` (a warning is logged for the stem fallback)."""
    subject, source = subject_with_source(stem, pattern, patient_id, sidecar_id)
    if source == "stem":
        log.warning("%s: subject_pattern does not match; using the file stem as subject id", stem)
    return subject


def canonical_subjects(ids) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Subject ids as written (one per file) -> the id their subject is grouped under: ids equal
    after :func:`normalise_subject` (``P001``, ``p001``, NFD and NFC forms) all become the spelling
    of the most files (ties: the first sorted); an id written one way only stays as it is.
    Also returns the merged groups: canonical id -> its spellings (sorted)."""
    counts: dict[str, dict[str, int]] = {}
    for written in ids:
        group = counts.setdefault(normalise_subject(written), {})
        group[str(written)] = group.get(str(written), 0) + 1
    mapping, merged = {}, {}
    for group in counts.values():
        canonical = min(group, key=lambda name: (-group[name], name))
        for name in group:
            mapping[name] = canonical
        if len(group) > 1:
            merged[canonical] = sorted(group)
    return mapping, dict(sorted(merged.items()))

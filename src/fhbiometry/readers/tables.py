"""Per-image tables and sidecars: the pixel-size table (HC18 ``pixel_size.csv``), reference
head circumferences, ``<stem>.json`` sidecars, and looking a file up in them by name.

Names are compared after Unicode NFC normalisation (a name typed on one system and the file
name on another may differ in form only: ``é`` as one code point or as ``e`` + accent).
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pandas as pd

from fhbiometry.readers.common import InputError, error_detail, positive

SIDECAR_FIX = 'write it as {"pixel_spacing_mm": 0.2, "subject_id": "..."}'


def nfc(name) -> str:
    """``name`` in Unicode normal form C."""
    return unicodedata.normalize("NFC", str(name))


def read_sidecar(path) -> dict:
    """The sidecar ``<stem>.json`` next to ``path`` ({} when absent)."""
    path = Path(path)
    side = path.with_suffix(".json")
    if not side.exists():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError) as err:
        raise InputError(side, f"sidecar is not valid JSON: {error_detail(err, side)}", SIDECAR_FIX) from err
    if not isinstance(data, dict):
        raise InputError(side, "sidecar must hold a JSON object", SIDECAR_FIX)
    if "pixel_spacing_mm" in data and positive(data["pixel_spacing_mm"]) is None:
        raise InputError(side, f"pixel_spacing_mm = {data['pixel_spacing_mm']!r} is not a "
                         "positive number", "set it to the pixel size in millimetres")
    return data


def separator_hint(csv_path, columns) -> str:
    """When a table read as comma-separated came out as one column holding ``;`` or tabs: a
    sentence naming the separator (and the comma decimals it then likely has); '' otherwise."""
    columns = list(columns)
    if len(columns) != 1:
        return ""
    for sep, name in ((";", "semicolon"), ("\t", "tab")):
        if sep in columns[0]:
            return (f"; the table looks {name}-separated ({columns[0][:60]!r} read as one header): "
                    "save it comma-separated with '.' as the decimal mark (e.g. from a spreadsheet: "
                    "CSV UTF-8, English number format)")
    return ""


def read_text_table(csv_path: Path):
    """A CSV as text cells (pandas; header stripped)."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_table_column(csv_path, image: str, column: str, what: str, fix: str, report=None) -> dict[str, float]:
    """Positive numbers of one column of a per-image table (the pixel-size table): image name
    (NFC) -> value (first row wins). A missing file or column raises InputError naming it and
    ``fix``; a row with a bad value raises InputError, or, when ``report(error, action)`` is
    given, is reported and skipped."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise InputError(csv_path, "pixel-size table not found",
                         "set data.pixel_size_csv (relative to data.raw_dir) or '' for none")
    df = read_text_table(csv_path)
    missing = [h for h in (image, column) if h not in df.columns]
    if missing:
        raise InputError(csv_path, f"missing column(s) {missing}; present: {list(df.columns)}"
                         + separator_hint(csv_path, df.columns), fix)
    out: dict[str, float] = {}
    for i, (name, value) in enumerate(zip(df[image], df[column])):
        v = positive(str(value).strip())
        if v is None:
            err = InputError(csv_path, f"column {column!r}: {value!r} is not a positive number",
                             f"correct the {what} in that row", row=i + 2)
            if report is None:
                raise err
            report(err, "row skipped" if what == "pixel size (mm)" else f"{what} skipped")
            continue
        out.setdefault(nfc(str(name).strip().replace("\\", "/")), v)
    return out


def read_pixel_size_table(csv_path, columns: dict, report=None) -> dict[str, float]:
    """Pixel sizes from a table (HC18 layout: ``filename, pixel size(mm)``); ``columns`` =
    ``{"image": header, "spacing": header}`` (params ``data.pixel_size_columns``)."""
    return read_table_column(csv_path, str(columns.get("image", "")).strip(),
                             str(columns.get("spacing", "")).strip(), "pixel size (mm)",
                             "set data.pixel_size_columns.image / .spacing to the table's headers", report)


def read_reference_hc(csv_path, columns: dict, report=None) -> dict[str, float]:
    """Reference head circumferences (mm) from the pixel-size table's column ``columns["hc"]``
    (HC18: ``head circumference (mm)``); {} when that key is '' or absent."""
    header = str(columns.get("hc", "") or "").strip()
    if not header:
        return {}
    return read_table_column(csv_path, str(columns.get("image", "")).strip(), header,
                             "head circumference (mm)",
                             "set data.pixel_size_columns.hc to the table's HC header, or '' for none", report)


def lookup_by_name(table: dict, rel_path: str):
    """Find a value keyed by relative path, file name or stem of ``rel_path`` (None if absent);
    names compared in NFC."""
    p = Path(nfc(rel_path))
    for key in (p.as_posix(), p.name, p.stem):
        if key in table:
            return table[key]
    return None

"""Byte-stable writers: the same content always gives the same bytes, so DVC hashes
do not change (and downstream stages do not rerun) unless the content changes."""
from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def save_npz(path, arrays: dict, compress: bool = True) -> None:
    """Write ``arrays`` (name -> array) as an .npz that ``numpy.load`` reads, with
    fixed zip timestamps and keys in sorted order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name in sorted(arrays):
            arr = np.asarray(arrays[name])
            if arr.dtype == object:
                raise TypeError(f"array {name!r} has dtype object; store strings as a unicode array")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def load_npz(path) -> dict:
    """Read an .npz fully into a dict of arrays (closing the file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `dvc repro` to build it")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _round_floats(obj, digits: int):
    if isinstance(obj, float) or isinstance(obj, np.floating):
        value = float(obj)
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, digits)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, dict):
        return {str(k): _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def write_json(path, obj, digits: int = 6) -> None:
    """Sorted keys, floats rounded to ``digits`` decimals, NaN/inf written as null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_round_floats(obj, digits), sort_keys=True, indent=2)
    path.write_text(text + "\n")


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


# A cell starting with one of these is read as a formula by spreadsheets (CSV injection, OWASP)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralise_cell(value):
    """A text cell that a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``+cmd``,
    ``@SUM``, a leading tab or CR) gets a leading ``'``, so it is shown as text; numbers written
    as text (``-3.5``), other values and other text are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with :func:`neutralise_cell` applied to every text cell and header (the same
    frame when nothing needs it)."""
    columns = [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]
    changed = {c: df[c].map(neutralise_cell) for c in columns}
    changed = {c: v for c, v in changed.items() if not v.equals(df[c])}
    headers = [neutralise_cell(str(c)) if isinstance(c, str) else c for c in df.columns]
    if not changed and headers == list(df.columns):
        return df
    out = df.assign(**changed) if changed else df.copy()
    out.columns = headers
    return out


def write_csv(df: pd.DataFrame, path, digits: int = 4) -> None:
    """CSV with a fixed float format and Unix line endings; text cells that a spreadsheet would
    read as a formula are neutralised (:func:`neutralise_cell`), as they may carry text from the
    inputs (a DICOM PatientID, a file name, a table cell)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralise_formulas(df).to_csv(path, index=False, float_format=f"%.{digits}f", lineterminator="\n")

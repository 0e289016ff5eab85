"""issues.csv of ``extract_frames``: the bad inputs (``data.on_bad_input``) and the notes.

``fail`` raises the :class:`~fhbiometry.readers.common.InputError` naming the file (and row)
and the fix; ``exclude`` records it as a row ``file, row, problem, action``. A note (a
conversion or guess, ``readers.common.NOTES``) is recorded in both modes.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fhbiometry.readers.common import NOTES, InputError

log = logging.getLogger(__name__)

ISSUE_COLUMNS = ("file", "row", "problem", "action")


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
        action = NOTES[name]
        log.warning("%s: %s: %s -> %s", file, name, detail, action)
        self.rows.append({"file": self.relative(file), "row": "", "problem": f"{name}: {detail}",
                          "action": action})

    def bad_label(self, err: InputError) -> str:
        """A bad label of an existing frame: raise (fail) or return the label_status (exclude)."""
        if self.mode == "fail":
            raise err
        log.warning("%s -> frame kept, label_status set", err)
        return err.problem if err.row is None else f"row {err.row}: {err.problem}"

    def exclude_hint(self, action: str) -> str:
        """`` or set data.on_bad_input: exclude to <action>`` in fail mode, '' in exclude mode."""
        return f", or set data.on_bad_input: exclude to {action}" if self.mode == "fail" else ""

    def relative(self, file) -> str:
        p = Path(file)
        try:
            return p.relative_to(self.raw_dir).as_posix()
        except ValueError:
            return p.as_posix()

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(ISSUE_COLUMNS))

"""What a measurement writes: frames.csv, summary.csv and summary.json under the output folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

from fhbiometry.core.store import write_csv, write_json
from fhbiometry.measure.aggregate import BASIS_REJECTED, STATUSES
from fhbiometry.measure.intervals import describe

CSV_DIGITS = 4
HADLOCK = ("Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted "
           "analysis of multiple fetal growth parameters. Radiology 1984;152:497-501")


class OutputError(ValueError):
    """The output folder cannot be written; the message names the path and the fix."""


def check_output_folder(out) -> Path:
    """``out`` checked before any inference: an existing file there or on the way to it is
    refused, and the nearest existing folder must be writable (the folder is made on writing)."""
    out = Path(out)
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"--out {out}: {parent} is a file, not a folder; give a folder path "
                              f"(it is created) or remove the file")
        if parent.is_dir():
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"--out {out}: {parent} is not writable; give a writable folder")
            break
    return out


def write_outputs(result, out, model_path) -> dict[str, Path]:
    """frames.csv, summary.csv and summary.json under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"frames": out / "frames.csv", "summary": out / "summary.csv", "json": out / "summary.json"}
    write_csv(result.frames, paths["frames"], digits=CSV_DIGITS)
    write_csv(result.summary, paths["summary"], digits=CSV_DIGITS)
    records = json.loads(result.summary.to_json(orient="records", double_precision=CSV_DIGITS + 2))
    s = result.settings
    write_json(paths["json"], {
        "model": Path(model_path).as_posix(), "coarse_model": s.coarse_source or None,
        "confidence_threshold": s.threshold,
        "threshold_source": s.threshold_source, "params_source": s.params_source,
        "metrics_source": s.metrics_source, "gestational_age_formula": HADLOCK,
        "intervals": {**describe(s.intervals), "source": s.intervals_source},
        "statuses": {STATUSES[0]: "the median of the cine's accepted frames",
                     STATUSES[1]: "no frame passed the checks: no BPD, OFD, HC or GA (reason: each frame's checks)"},
        "measure_rejected": s.measure_rejected,
        "measure_rejected_label": BASIS_REJECTED if s.measure_rejected else None,
        "notes": notes_by_file(result.frames),
        "units": {"*_mm": "millimetres", "*_px": "original image pixels", "ga_*": "weeks", "hc": "Ramanujan"},
        "unreadable_inputs": [str(e) for e in result.errors], "cines": records})
    return paths


def notes_by_file(frames) -> dict:
    """{source file: its notes (conversions, guesses, the measured region)} where it has any."""
    if frames.empty or "notes" not in frames:
        return {}
    first = frames.groupby("source_file", sort=False)["notes"].first()
    return {name: text.split("; ") for name, text in first.items() if isinstance(text, str) and text}

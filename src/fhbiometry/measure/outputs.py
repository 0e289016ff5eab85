"""What a measurement writes: frames.csv, summary.csv and summary.json under the output folder."""
from __future__ import annotations

import json
from pathlib import Path

from fhbiometry.core.store import write_csv, write_json

CSV_DIGITS = 4
HADLOCK = ("Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted "
           "analysis of multiple fetal growth parameters. Radiology 1984;152:497-501")


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
        "model": Path(model_path).as_posix(), "confidence_threshold": s.threshold,
        "threshold_source": s.threshold_source, "params_source": s.params_source,
        "metrics_source": s.metrics_source, "gestational_age_formula": HADLOCK,
        "units": {"*_mm": "millimetres", "*_px": "original image pixels", "ga_*": "weeks", "hc": "Ramanujan"},
        "unreadable_inputs": [str(e) for e in result.errors], "cines": records})
    return paths

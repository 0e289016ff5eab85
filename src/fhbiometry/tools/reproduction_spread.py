"""Measure the run-to-run spread of every trained-model metric: the tolerances of
``fhbiometry check-reproduction`` (docs/reproduction.md).

Each RUN folder holds ``eval/<model>.json`` from one rerun of the default pipeline (saved with
``fhbiometry check-reproduction --save-run NAME``, or a copy of the committed metrics/eval as
the reference). For every metrics file and every numeric key, the sample standard deviation
(ddof=1) over the runs is written to the spread file with the run names.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from fhbiometry.tools.check_reproduction import SPREAD_FILE
from fhbiometry.tools.reproduction_rules import prediction_factor
from fhbiometry.tools.common import flatten

SUMMARY = "measure the metric spread over reruns"
EXAMPLES = """\
Examples:
  fhbiometry check-reproduction --env ATEN_CPU_CAPABILITY=default --save-run cpu-default
  fhbiometry reproduction-spread docs/reproduction/runs/reference docs/reproduction/runs/cpu-default \\
      docs/reproduction/runs/seed-1
"""


def numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def interval_method(table: dict) -> tuple:
    """(score, scale) of a flattened metrics file's chosen intervals (None, None without)."""
    return table.get("intervals.method.score"), table.get("intervals.method.scale")


def chosen_interval_key(key: str) -> bool:
    """A figure of the chosen interval method (not of the candidates every run measures alike)."""
    return key.startswith("intervals.") and not key.startswith("intervals.candidates.")


def measure_spread(run_dirs) -> dict:
    """{"runs": [...], "k_sd": k, "files": {...}, "sd": {"metrics/eval/<m>.json": {key: sd}}} over
    the runs; k: the sds a new run may move (``prediction_factor`` of the number of runs). A run
    may hold only some models (a run of an older recipe keeps the models that recipe still
    trains): each file's sd is over the runs that hold it, at least two, and ``files`` names
    them with their own ``k_sd``. The chosen intervals' figures (``chosen_interval_key``) are a
    different metric under another ``intervals.score`` / ``scale``: their sd is over the runs whose
    method is the first run's (at least two; none otherwise)."""
    runs = [Path(d) for d in run_dirs]
    if len(runs) < 2:
        raise ValueError("the spread needs at least two runs")
    names = sorted({p.name for d in runs for p in (d / "eval").glob("*.json")})
    sd: dict = {}
    files: dict = {}
    for name in names:
        holding = [d for d in runs if (d / "eval" / name).exists()]
        if len(holding) < 2:
            raise FileNotFoundError(f"eval/{name} is only in {[d.name for d in holding]}: its spread "
                                    "needs at least two runs that hold it")
        tables = [flatten(json.loads((d / "eval" / name).read_text())) for d in holding]
        keys = sorted(set.intersection(*(set(t) for t in tables)))
        path = f"metrics/eval/{name}"
        same = [t for t in tables if interval_method(t) == interval_method(tables[0])]
        sd[path] = {}
        for k in keys:
            over = same if chosen_interval_key(k) else tables
            if len(over) >= 2 and all(numeric(t[k]) for t in over):
                sd[path][k] = statistics.stdev(float(t[k]) for t in over)
        files[path] = {"runs": [d.name for d in holding],
                       "k_sd": round(prediction_factor(len(holding)), 3)}
    return {"runs": [d.name for d in runs], "k_sd": round(prediction_factor(len(runs)), 3),
            "files": files, "sd": sd}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run folders, each with eval/<model>.json")
    parser.add_argument("--out", default=str(SPREAD_FILE), help=f"spread file (default {SPREAD_FILE})")


def run(args: argparse.Namespace) -> int:
    spread = measure_spread(args.runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(spread, indent=1, sort_keys=True) + "\n")
    n = sum(len(v) for v in spread["sd"].values())
    print(f"reproduction-spread: sd of {n} metrics over {len(spread['runs'])} runs -> {out}")
    return 0

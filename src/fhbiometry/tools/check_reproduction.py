"""Reproduce the default pipeline from scratch and compare its metrics with the committed ones.

Runs ``dvc repro --force`` (unless ``--no-repro``), then compares every metric in metrics/
with the one committed at ``--rev``. What must hold (README, "Determinism, CI and timings"):

* exactly: every metric of the data stages (metrics/qc.json, metrics/split.json) and, in
  metrics/eval/*.json, every metric that does not depend on trained weights: frame counts,
  parameter counts, names, and the mean-shape floor (``floor.*``, computed from the training
  labels alone);
* within ``K_SD`` standard deviations: the metrics of the trained models. Training is
  deterministic on one machine (same params, seed and thread count give the same bytes), but
  another CPU or BLAS code path rounds differently, and a few hundred optimiser steps amplify the
  last bit into a different, equally good model. The standard deviation of each metric is
  measured over such reruns (``--env`` runs saved with ``--save-run``) and
  kept in ``SPREAD_FILE`` (``fhbiometry reproduction-spread``; docs/reproduction.md);
* always: every model beats the mean-shape floor on BPD and OFD, and the heatmap model by a
  wide margin (``HEATMAP_MARGIN``).

Wall-clock timings (``timing``) are reported by the pipeline but never compared. Exit status 1
when anything above fails. Bit-identical metrics are counted and reported.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
from pathlib import Path

from fhbiometry.tools.common import flatten

SUMMARY = "rerun the pipeline, compare its metrics with git"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry check-reproduction             # dvc repro --force, then compare with HEAD
  fhbiometry check-reproduction --no-repro  # only compare the working tree with HEAD
  fhbiometry check-reproduction --env ATEN_CPU_CAPABILITY=default  # spread on another code path
"""

METRIC_GLOBS = ("metrics/qc.json", "metrics/split.json", "metrics/eval/*.json")
IGNORED = ("timing.*", "best_epoch")
# trained-model metrics that are undefined (null) in some runs: the confidence figures (an AUC when
# every frame, or none, is over the error threshold; the mean error of rejected frames when none is)
MAY_BE_UNDEFINED = ("*confidence.*",)
# metrics/eval keys that do not depend on trained weights: compared exactly
EXACT_EVAL = ("model", "arch", "model_kind", "decode_method", "n", "n_params", "n_test", "n_evaluated",
              "n_excluded", "floor.*", "vs_*.n", "vs_*.floor.*")
# trained-model metrics: |reproduced - committed| <= max(K_SD * sd, MIN_TOLERANCE), where sd is the
# sample standard deviation of that metric over the runs in SPREAD_FILE (reruns of the default
# pipeline on other CPU code paths: docs/reproduction.md). A metric with no
# measured spread is a problem: measure it (`fhbiometry reproduction-spread`).
SPREAD_FILE = Path("docs/reproduction/spread.json")
RUNS_DIR = Path("docs/reproduction/runs")
K_SD = 4.0
MIN_TOLERANCE = {"*success_rate.*": 0.01, "*_px*": 0.2, "*": 0.02}  # first match; units of the metric
HEATMAP_MARGIN = 3.0  # the heatmap model's BPD and OFD MAE must be under floor / this


def committed(path: str, rev: str):
    res = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else None


def matches(key: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def min_tolerance(key: str) -> float:
    return next(tol for pattern, tol in MIN_TOLERANCE.items() if fnmatch.fnmatchcase(key, pattern))


def load_spread(path=SPREAD_FILE) -> dict:
    """{metrics file: {flattened key: sd}} measured by ``measure_spread``."""
    path = Path(path)
    if not path.exists():
        return {}
    return json.loads(path.read_text())["sd"]


def compare_value(path: str, key: str, old, new, spread: dict | None = None) -> tuple[str, str | None]:
    """('identical' | 'close' | 'exact' | 'ignored', problem or None) for one metric."""
    if matches(key, IGNORED):
        return "ignored", None
    if old == new:
        return "identical", None
    exact = not path.startswith("metrics/eval/") or matches(key, EXACT_EVAL)
    sd = (spread or {}).get(path, {}).get(key)
    if not exact and matches(key, MAY_BE_UNDEFINED) and (None in (old, new) or sd is None):
        return "close", None   # undefined in some run, so no spread either: not compared
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new))
    if exact or not numbers:
        return "exact", f"{path}: {key}: committed {old!r}, reproduced {new!r} (must be identical)"
    if sd is None:
        return "close", (f"{path}: {key}: no measured spread in {SPREAD_FILE}: measure it "
                         "(docs/reproduction.md)")
    allowed = max(K_SD * sd, min_tolerance(key))
    if abs(new - old) <= allowed:
        return "close", None
    return "close", (f"{path}: {key}: committed {old!r}, reproduced {new!r} (|difference| "
                     f"{abs(new - old):.4g} > {K_SD:g} sd = {allowed:.4g})")


def compare(rev: str) -> tuple[list[str], dict]:
    problems, counts = [], {"identical": 0, "close": 0, "exact": 0, "ignored": 0}
    spread = load_spread()
    files = sorted({str(p) for g in METRIC_GLOBS for p in Path().glob(g)})
    if not files:
        return ["no metrics files found: did `dvc repro` run?"], counts
    for path in files:
        old = committed(path, rev)
        if old is None:
            problems.append(f"{path}: not committed at {rev}")
            continue
        new = flatten(json.loads(Path(path).read_text()))
        old = flatten(old)
        for key in sorted(set(old) | set(new)):
            status, problem = compare_value(path, key, old.get(key), new.get(key), spread)
            counts[status] += 1
            if problem:
                problems.append(problem)
    return problems, counts


def invariants() -> list[str]:
    """Every model beats the mean-shape floor on BPD and OFD; the heatmap model by a wide margin."""
    problems = []
    for path in sorted(Path("metrics/eval").glob("*.json")):
        m = json.loads(path.read_text())
        for d in ("bpd", "ofd"):
            value, floor = m[d]["mae_mm"], m["floor"][d]["mae_mm"]
            limit = floor / HEATMAP_MARGIN if m.get("model_kind") == "heatmap" else floor
            if not value < limit:
                problems.append(f"{path}: {d} MAE {value:.3f} mm is not under {limit:.3f} mm "
                                f"(mean-shape floor {floor:.3f} mm"
                                + (f" / {HEATMAP_MARGIN:g})" if limit != floor else ")"))
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rev", default="HEAD", help="git revision holding the reference metrics")
    parser.add_argument("--no-repro", action="store_true", help="compare only; do not run dvc repro")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="run the pipeline with this environment variable (measures the spread "
                             "under another CPU code path, e.g. ATEN_CPU_CAPABILITY=default)")
    parser.add_argument("--save-run", metavar="NAME", help=f"copy the reproduced metrics/eval files "
                        f"to {RUNS_DIR}/NAME/eval (a run for `fhbiometry reproduction-spread`)")


def reproduce(env_items: list[str]) -> None:
    """``dvc repro --force`` of the whole default pipeline, with extra NAME=VALUE environment."""
    env = dict(os.environ)
    for item in env_items:
        name, _, value = item.partition("=")
        env[name] = value
    print(f"check-reproduction: dvc repro --force (the whole default pipeline) {' '.join(env_items)}",
          flush=True)
    subprocess.run(["dvc", "repro", "--force"], check=True, env=env)


def save_run(name: str) -> Path:
    out = RUNS_DIR / name / "eval"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path("metrics/eval").glob("*.json")):
        (out / path.name).write_text(path.read_text())
    return out


def run(args: argparse.Namespace) -> int:
    if not args.no_repro:
        reproduce(args.env)
    if args.save_run:
        print(f"check-reproduction: metrics saved to {save_run(args.save_run)}")
    problems, counts = compare(args.rev)
    problems += invariants()
    print(f"check-reproduction: {counts['identical']} metrics identical to {args.rev}, "
          f"{counts['close']} trained-model metrics compared within tolerance, "
          f"{counts['ignored']} ignored (timings, best epoch)")
    if problems:
        print(f"check-reproduction: {len(problems)} problem(s):")
        for line in problems:
            print("  " + line)
        return 1
    print("check-reproduction: every metric reproduces the committed one")
    return 0

"""Reproduce the default pipeline from scratch and compare its metrics with the committed ones.

    python scripts/check_reproduction.py            # dvc repro --force, then compare with HEAD
    python scripts/check_reproduction.py --no-repro  # only compare the working tree with HEAD

Every metric is compared exactly (the pipeline is deterministic on CPU for a fixed seed and
thread count, see README "Determinism"), except wall-clock timings (keys under `timing`), which
are reported but never compared. Exit status 1 when any metric differs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

METRIC_GLOBS = ("metrics/qc.json", "metrics/split.json", "metrics/eval/*.json")
IGNORED_SECTIONS = ("timing",)


def flatten(obj, prefix=""):
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: obj}


def committed(path: str, rev: str):
    res = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else None


def compare(rev: str, tolerance: float) -> list[str]:
    problems = []
    files = sorted({str(p) for g in METRIC_GLOBS for p in Path().glob(g)})
    if not files:
        return ["no metrics files found: did `dvc repro` run?"]
    for path in files:
        old = committed(path, rev)
        if old is None:
            problems.append(f"{path}: not committed at {rev}")
            continue
        new = flatten(json.loads(Path(path).read_text()))
        old = flatten(old)
        for key in sorted(set(old) | set(new)):
            if key.split(".")[0] in IGNORED_SECTIONS:
                continue
            a, b = old.get(key), new.get(key)
            same = a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                              and abs(a - b) <= tolerance)
            if not same:
                problems.append(f"{path}: {key}: committed {a!r}, reproduced {b!r}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD", help="git revision holding the reference metrics")
    parser.add_argument("--no-repro", action="store_true", help="compare only; do not run dvc repro")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="absolute tolerance per metric (default 0: exact)")
    args = parser.parse_args()
    if not args.no_repro:
        print("check_reproduction: dvc repro --force (the whole default pipeline)", flush=True)
        subprocess.run(["dvc", "repro", "--force"], check=True)
    problems = compare(args.rev, args.tolerance)
    if problems:
        print(f"check_reproduction: {len(problems)} metric(s) differ from {args.rev}:")
        for line in problems:
            print("  " + line)
        return 1
    print(f"check_reproduction: every metric equals the committed one at {args.rev}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

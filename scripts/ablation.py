"""Run an ablation ladder (configs/<name>_ablation.yaml) through the real pipeline and tabulate it.

    python scripts/ablation.py configs/hc18_ablation.yaml                 # every row, then the table
    python scripts/ablation.py configs/hc18_ablation.yaml --rows seed,grouped
    python scripts/ablation.py configs/hc18_ablation.yaml --table-only    # rebuild the table

The ladder file names a base configuration (a partial params file such as configs/hc18.yaml) and
a list of rows; each row adds its ``set`` overrides to everything above it, so row k is the
pipeline with the first k changes. All rows run in one working copy (``--workdir``, default
``../<repo>-ablation``: the tracked files of this repository, a git repository of its own),
one ``dvc repro`` per row: DVC reruns exactly the stages a row's change touches (a change of
heatmap decoding reruns only the evaluations; a heatmap-only change retrains only the heatmap
model). After each row its metrics (metrics/eval/*.json, metrics/qc.json, metrics/split.json)
and the per-frame test predictions (results/<model>/predictions.csv) are copied to
``<out>/<row>/`` (default docs/ablation/), and the table ``<out>/table.md`` is
rewritten from every row found there. The last row's figures (plots/models, plots/qc) are
copied to ``<out>/plots/``.

A ladder may set a ``budget`` (dotted keys, e.g. epochs) applied to every row, so that the whole
ladder fits the machine; ``--full-budget`` ignores it, which makes the last row exactly the base
configuration (``--rows <last> --full-budget --out docs/hc18`` is the full run of that
configuration).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from exp_config import apply, flatten  # noqa: E402

MODELS = ("alexnet", "resnet18", "resnet34", "heatmap")


def load_ladder(path) -> dict:
    ladder = yaml.safe_load(Path(path).read_text())
    rows = ladder.get("rows") or []
    names = [r["name"] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: row names must be unique, got {names}")
    for r in rows:
        if not {"name", "label", "set"} <= set(r):
            raise ValueError(f"{path}: row {r.get('name')!r} needs keys name, label and set")
    return ladder


def row_params(base_params: dict, ladder: dict, upto: int, repo: Path = REPO, budget: bool = True) -> dict:
    """params.yaml + the base configuration + the ``set`` of rows 0..upto (dotted keys), then the
    ladder's ``budget`` (the same for every row) unless ``budget`` is False."""
    params = apply(base_params, yaml.safe_load((repo / ladder["base"]).read_text()) or {})
    for row in ladder["rows"][:upto + 1]:
        params = apply(params, unflatten(row["set"]))
    if budget and ladder.get("budget"):
        params = apply(params, unflatten(ladder["budget"]))
    raw = Path(params["data"]["raw_dir"])
    if not raw.is_absolute():
        params["data"]["raw_dir"] = str((repo / raw).resolve())
    return params


def unflatten(dotted: dict) -> dict:
    out: dict = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def prepare_workdir(workdir: Path) -> None:
    """A copy of the tracked files of this repository, committed in a git repository of its own
    (DVCLive needs one); refreshed (code and configs) on every call, DVC state kept."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
                           ).stdout.decode().split("\0")
    workdir.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("metrics/", "plots/")) and rel != "dvc.lock":
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, workdir / rel)
    git = ["git", "-c", "user.email=ablation@localhost", "-c", "user.name=ablation"]
    if not (workdir / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    subprocess.run(git + ["add", "-A", "."], cwd=workdir, check=True)
    subprocess.run(git + ["commit", "-qm", "ablation workdir", "--allow-empty"], cwd=workdir, check=True)


def run_row(workdir: Path, params: dict, out_dir: Path, row: dict, env: dict, last: bool = False) -> None:
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    print(f"ablation: row {row['name']}: {row['label']}", flush=True)
    subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=workdir, env=env, check=True)
    seconds = time.perf_counter() - start
    dst = out_dir / row["name"]
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "eval").mkdir(parents=True)
    (dst / "train").mkdir()
    (dst / "predictions").mkdir()
    for model in MODELS:
        shutil.copy2(workdir / "results" / model / "predictions.csv", dst / "predictions" / f"{model}.csv")
        shutil.copy2(workdir / "metrics/eval" / f"{model}.json", dst / "eval" / f"{model}.json")
        shutil.copy2(workdir / "metrics/train" / model / "metrics.json", dst / "train" / f"{model}.json")
    for name in ("qc.json", "split.json"):
        shutil.copy2(workdir / "metrics" / name, dst / name)
    changed = {k: v for k, v in flatten(row["set"]).items()}
    if last:
        for folder in ("models", "qc"):
            shutil.rmtree(out_dir / "plots" / folder, ignore_errors=True)
            shutil.copytree(workdir / "plots" / folder, out_dir / "plots" / folder)
    (dst / "row.json").write_text(json.dumps({"name": row["name"], "label": row["label"], "set": changed,
                                              "repro_seconds": round(seconds)}, indent=2, sort_keys=True)
                                  + "\n")
    print(f"ablation: row {row['name']} done in {seconds / 60:.1f} min -> {dst}", flush=True)


# ---- the table ---------------------------------------------------------------------------------
def versus_ellipse(metrics: dict, label_source: str) -> dict | None:
    """The metrics against the ellipse-derived landmarks, whichever labels the model learned."""
    if label_source == "ellipse":
        return metrics
    return metrics.get("vs_ellipse")


def cell(m: dict | None, key: str) -> str:
    if m is None:
        return "n/a"
    if key in ("bpd", "ofd"):
        return f"{m[key]['mae_mm']:.2f}"
    if key == "mre":
        return f"{m['mre_mm']:.2f}"
    rate = m["success_rate"].get(key)
    return "n/a" if rate is None else f"{100 * rate:.0f}"


def table(ladder: dict, out_dir: Path, repo: Path = REPO) -> str:
    base = yaml.safe_load((repo / "params.yaml").read_text())
    lines = ["| # | change | model | BPD MAE | OFD MAE | MRE | within 2 mm | within 4 mm | floor BPD / OFD / MRE | test frames |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(ladder["rows"]):
        folder = out_dir / row["name"]
        if not (folder / "row.json").exists():
            continue
        source = row_params(base, ladder, i, repo)["data"]["label_source"]
        for model in MODELS:
            m = json.loads((folder / "eval" / f"{model}.json").read_text())
            vs = versus_ellipse(m, source)
            floor = None if vs is None else vs["floor"]
            floor_text = "n/a" if floor is None else (f"{floor['bpd']['mae_mm']:.2f} / {floor['ofd']['mae_mm']:.2f}"
                                                      f" / {floor['mre_mm']:.2f}")
            first = model == MODELS[0]
            lines.append(f"| {i + 1 if first else ''} | {row['label'] if first else ''} | {model} | "
                         f"{cell(vs, 'bpd')} | {cell(vs, 'ofd')} | {cell(vs, 'mre')} | "
                         f"{cell(vs, 'within_2mm')} | {cell(vs, 'within_4mm')} | {floor_text} | "
                         f"{'n/a' if vs is None else vs['n']} |")
    if ladder.get("budget"):
        budget = ", ".join(f"{k.split('.')[1] if k.startswith('models.') else k} "
                           f"{v}{' epochs' if k.endswith('.epochs') else ''}"
                           for k, v in ladder["budget"].items())
        lines.insert(0, f"Every row trains with the same budget: {budget}.\n")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ladder")
    parser.add_argument("--rows", default="", help="comma-separated row names to run (default: all)")
    parser.add_argument("--workdir", default=str(REPO.parent / f"{REPO.name}-ablation"))
    parser.add_argument("--out", default="docs/ablation")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--full-budget", action="store_true",
                        help="ignore the ladder's budget: the rows run at the base configuration's budget")
    args = parser.parse_args()
    ladder = load_ladder(args.ladder)
    out_dir = REPO / args.out
    wanted = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(wanted) - {r["name"] for r in ladder["rows"]})
    if unknown:
        parser.error(f"unknown rows {unknown}; the ladder has {[r['name'] for r in ladder['rows']]}")
    if not args.table_only:
        workdir = Path(args.workdir).resolve()
        prepare_workdir(workdir)
        # the working copy's own code, not the editable install of this repository
        env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(workdir / "src"))
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        base = yaml.safe_load((REPO / "params.yaml").read_text())
        for i, row in enumerate(ladder["rows"]):
            if wanted and row["name"] not in wanted:
                continue
            run_row(workdir, row_params(base, ladder, i, budget=not args.full_budget), out_dir, row, env,
                    last=i == len(ladder["rows"]) - 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = table(ladder, out_dir)
    (out_dir / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

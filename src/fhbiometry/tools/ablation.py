"""Run an ablation ladder (configs/<name>_ablation.yaml) through the real pipeline and tabulate it.

Run from the repository root. The ladder file names a base configuration (a partial params
file such as configs/hc18.yaml) and a list of rows; each row adds its ``set`` overrides to
everything above it, so row k is the pipeline with the first k changes. All rows run in one
working copy (``--workdir``, default ``../<repo>-ablation``: the tracked files of this
repository, a git repository of its own), one ``dvc repro`` per row: DVC reruns exactly the
stages a row's change touches (a change of heatmap decoding reruns only the evaluations; a
heatmap-only change retrains only the heatmap model). After each row its metrics
(metrics/eval/*.json, metrics/qc.json, metrics/split.json) and the per-frame test predictions
(results/<model>/predictions.csv) are copied to ``<out>/<row>/`` (default docs/ablation/), and
the table ``<out>/table.md`` is rewritten from every row found there. The last row's figures
(plots/models, plots/qc) are copied to ``<out>/plots/``. The rows are raw outputs, not in git
(.gitignore): ``--table-only`` rebuilds the table from rows already under ``<out>``, and says
which command to run first when there are none.

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

from fhbiometry.config.schema import unflatten
from fhbiometry.config.sections_model import INIT_DIR
from fhbiometry.tools.common import flatten, model_names
from fhbiometry.tools.exp_config import apply

SUMMARY = "run an ablation ladder and tabulate it"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry ablation configs/hc18_ablation.yaml                 # every row, then the table
  fhbiometry ablation configs/hc18_ablation.yaml --rows seed,grouped
  fhbiometry ablation configs/hc18_ablation.yaml --table-only    # rebuild the table
  fhbiometry ablation configs/hc18_ablation.yaml --rows skips --full-budget --out docs/hc18
"""


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


def row_params(base_params: dict, ladder: dict, upto: int, repo: Path, budget: bool = True) -> dict:
    """params.yaml + the base configuration + the ``set`` of rows 0..upto (dotted keys), then the
    ladder's ``budget`` (the same for every row) unless ``budget`` is False. ``repo``: the
    repository root (the base configuration and a relative ``data.raw_dir`` are under it)."""
    repo = Path(repo)
    params = apply(base_params, yaml.safe_load((repo / ladder["base"]).read_text()) or {})
    for row in ladder["rows"][:upto + 1]:
        params = apply(params, unflatten(row["set"]))
    if budget and ladder.get("budget"):
        params = apply(params, unflatten(ladder["budget"]))
    raw = Path(params["data"]["raw_dir"])
    if not raw.is_absolute():
        params["data"]["raw_dir"] = str((repo / raw).resolve())
    return params


def prepare_workdir(repo: Path, workdir: Path) -> None:
    """A copy of the tracked files of ``repo``, and of its checkpoints under weights/ (ignored by
    git, read by ``train.init_from``), committed in a git repository of its own (DVCLive needs
    one); refreshed (code, configs, weights/) on every call, DVC state kept."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True
                           ).stdout.decode().split("\0")
    workdir.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, files):
        src = repo / rel
        if src.is_file() and not rel.startswith(("metrics/", "plots/")) and rel != "dvc.lock":
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, workdir / rel)
    sync_weights(repo, workdir)
    git = ["git", "-c", "user.email=ablation@localhost", "-c", "user.name=ablation"]
    if not (workdir / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    subprocess.run(git + ["add", "-A", "."], cwd=workdir, check=True)
    subprocess.run(git + ["commit", "-qm", "ablation workdir", "--allow-empty"], cwd=workdir, check=True)


def sync_weights(repo: Path, workdir: Path) -> None:
    """workdir/weights/*.safetensors made the same set as repo's (copied, stale ones removed)."""
    mine = {p.name for p in (repo / INIT_DIR).glob("*.safetensors")}
    (workdir / INIT_DIR).mkdir(parents=True, exist_ok=True)
    for old in (workdir / INIT_DIR).glob("*.safetensors"):
        if old.name not in mine:
            old.unlink()
    for name in sorted(mine):
        shutil.copy2(repo / INIT_DIR / name, workdir / INIT_DIR / name)


def copy_row_outputs(workdir: Path, dst: Path, models: list[str]) -> None:
    """The metrics and test predictions of one row, from the working copy to ``dst``."""
    shutil.rmtree(dst, ignore_errors=True)
    for folder in ("eval", "train", "predictions"):
        (dst / folder).mkdir(parents=True)
    for model in models:
        shutil.copy2(workdir / "results" / model / "predictions.csv", dst / "predictions" / f"{model}.csv")
        shutil.copy2(workdir / "metrics/eval" / f"{model}.json", dst / "eval" / f"{model}.json")
        shutil.copy2(workdir / "metrics/train" / model / "metrics.json", dst / "train" / f"{model}.json")
    for name in ("qc.json", "split.json"):
        shutil.copy2(workdir / "metrics" / name, dst / name)


def run_row(workdir: Path, params: dict, out_dir: Path, row: dict, env: dict, last: bool = False) -> None:
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    print(f"ablation: row {row['name']}: {row['label']}", flush=True)
    subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=workdir, env=env, check=True)
    seconds = time.perf_counter() - start
    dst = out_dir / row["name"]
    copy_row_outputs(workdir, dst, model_names(params))
    if last:
        for folder in ("models", "qc"):
            shutil.rmtree(out_dir / "plots" / folder, ignore_errors=True)
            shutil.copytree(workdir / "plots" / folder, out_dir / "plots" / folder)
    (dst / "row.json").write_text(json.dumps({"name": row["name"], "label": row["label"],
                                              "set": flatten(row["set"]), "repro_seconds": round(seconds)},
                                             indent=2, sort_keys=True) + "\n")
    print(f"ablation: row {row['name']} done in {seconds / 60:.1f} min -> {dst}", flush=True)


# ---- the table ---------------------------------------------------------------------------------
def versus_ellipse(metrics: dict, label_source: str) -> dict | None:
    """The metrics against the ellipse-derived landmarks, whichever labels the model learned; against
    the labels where the data set has no ellipse annotation (the synthetic default: its labels are
    its generator's exact ellipse axes)."""
    if label_source == "ellipse":
        return metrics
    return metrics.get("vs_ellipse", metrics)


def cell(m: dict | None, key: str) -> str:
    if m is None:
        return "n/a"
    if key in ("bpd", "ofd"):
        return f"{m[key]['mae_mm']:.2f}"
    if key == "mre":
        return f"{m['mre_mm']:.2f}"
    rate = m["success_rate"].get(key)
    return "n/a" if rate is None else f"{100 * rate:.0f}"


def row_lines(number: int, label: str, folder: Path, params: dict) -> list[str]:
    """The table lines of one row that ran: one per model of its params."""
    source = params["data"]["label_source"]
    lines = []
    for k, model in enumerate(model_names(params)):
        metrics = json.loads((folder / "eval" / f"{model}.json").read_text())
        vs = versus_ellipse(metrics, source)
        against = " (vs labels: no ellipse annotation)" if source != "ellipse" and "vs_ellipse" not in metrics else ""
        floor = None if vs is None else vs["floor"]
        floor_text = "n/a" if floor is None else (f"{floor['bpd']['mae_mm']:.2f} / {floor['ofd']['mae_mm']:.2f}"
                                                  f" / {floor['mre_mm']:.2f}")
        lines.append(f"| {number if k == 0 else ''} | {label if k == 0 else ''} | {model}{against} | "
                     f"{cell(vs, 'bpd')} | {cell(vs, 'ofd')} | {cell(vs, 'mre')} | "
                     f"{cell(vs, 'within_2mm')} | {cell(vs, 'within_4mm')} | {floor_text} | "
                     f"{'n/a' if vs is None else vs['n']} |")
    return lines


def budget_line(budget: dict) -> str:
    text = ", ".join(f"{k.split('.')[1] if k.startswith('models.') else k} "
                     f"{v}{' epochs' if k.endswith('.epochs') else ''}" for k, v in budget.items())
    return f"Every row trains with the same budget: {text}.\n"


def rows_found(ladder: dict, out_dir: Path) -> list[str]:
    """The names of the ladder's rows that ran into ``out_dir`` (a ``<row>/row.json`` there)."""
    return [r["name"] for r in ladder["rows"] if (Path(out_dir) / r["name"] / "row.json").exists()]


def shown(path: Path) -> str:
    """``path`` relative to the working directory where it is under it."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd().resolve())) if path.is_relative_to(Path.cwd().resolve()) else str(path)


def missing_rows_message(out_dir: Path, command: str) -> str:
    """What to do when no row of a ladder is under ``out_dir``: the rows are raw outputs, not in git."""
    out = shown(out_dir)
    return (f"no rows of the ladder under {out} (no {out}/<row>/row.json; the rows' raw outputs are not "
            f"in git): run `{command}` first (it reruns the rows), or restore the rows as measured from "
            f"git history: `git restore --source=$(git log -1 --format=%h --diff-filter=D -- {out}/)~1 -- {out}`")


def source_line(command: str, out: str) -> str:
    return (f"Written by `{command}` (it runs the rows; their raw outputs, `{out}/<row>/`, are not "
            "in git; `--table-only` rebuilds this table from rows already there).\n")


def table(ladder: dict, out_dir: Path, repo: Path, budget: bool = True, command: str = "") -> str:
    """The markdown table of every row of the ladder found under ``out_dir``; ``budget``: the rows
    ran with the ladder's budget (not ``--full-budget``). FileNotFoundError when no row is there,
    naming ``command`` (the command that writes the rows) and how to restore them from git history."""
    found = rows_found(ladder, out_dir)
    if not found:
        raise FileNotFoundError(missing_rows_message(out_dir, command or "fhbiometry ablation <ladder> --out <out>"))
    base = yaml.safe_load((Path(repo) / "params.yaml").read_text())
    lines = ["| # | change | model | BPD MAE | OFD MAE | MRE | within 2 mm | within 4 mm | floor BPD / OFD / MRE | test frames |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(ladder["rows"]):
        if row["name"] in found:
            lines += row_lines(i + 1, row["label"], Path(out_dir) / row["name"], row_params(base, ladder, i, repo))
    if budget and ladder.get("budget"):
        lines.insert(0, budget_line(ladder["budget"]))
    return "\n".join(lines) + "\n"


# ---- the command -------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ladder", help="the ladder file, e.g. configs/hc18_ablation.yaml")
    parser.add_argument("--rows", default="", help="comma-separated row names to run (default: all)")
    parser.add_argument("--workdir", default=None, help="the working copy (default: ../<repo>-ablation)")
    parser.add_argument("--out", default="docs/ablation", help="where rows and table.md go")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table")
    parser.add_argument("--full-budget", action="store_true",
                        help="ignore the ladder's budget: the rows run at the base configuration's budget")


def run_ladder(ladder: dict, repo: Path, workdir: Path, out_dir: Path, wanted: list[str],
               full_budget: bool) -> None:
    """``dvc repro`` of the wanted rows (all when empty) in the working copy, outputs to ``out_dir``."""
    prepare_workdir(repo, workdir)
    # the working copy's own code, not the editable install of this repository
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(workdir / "src"))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    base = yaml.safe_load((repo / "params.yaml").read_text())
    for i, row in enumerate(ladder["rows"]):
        if wanted and row["name"] not in wanted:
            continue
        run_row(workdir, row_params(base, ladder, i, repo, budget=not full_budget), out_dir, row, env,
                last=i == len(ladder["rows"]) - 1)


def run(args: argparse.Namespace) -> int:
    repo = Path.cwd()
    if not (repo / "params.yaml").exists():
        print(f"ablation: no params.yaml in {repo}: run it from the repository root", file=sys.stderr)
        return 2
    ladder = load_ladder(args.ladder)
    out_dir = repo / args.out
    wanted = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(wanted) - {r["name"] for r in ladder["rows"]})
    if unknown:
        print(f"ablation: unknown rows {unknown}; {args.ladder} has {[r['name'] for r in ladder['rows']]}",
              file=sys.stderr)
        return 2
    command = " ".join(["fhbiometry ablation", args.ladder, *(["--rows", args.rows] if wanted else []),
                        *(["--full-budget"] if args.full_budget else []), "--out", args.out])
    if not args.table_only:
        workdir = Path(args.workdir or repo.parent / f"{repo.name}-ablation").resolve()
        run_ladder(ladder, repo, workdir, out_dir, wanted, args.full_budget)
    found = rows_found(ladder, out_dir)
    missing = [r["name"] for r in ladder["rows"] if (not wanted or r["name"] in wanted) and r["name"] not in found]
    if found and missing:
        print(f"ablation: rows not under {args.out}, left out of the table: {', '.join(missing)}", file=sys.stderr)
    try:
        text = source_line(command, args.out) + "\n" + table(ladder, out_dir, repo, not args.full_budget, command)
    except FileNotFoundError as error:
        print(f"ablation: {error}", file=sys.stderr)
        return 2
    (out_dir / "table.md").write_text(text)
    print(text)
    return 0

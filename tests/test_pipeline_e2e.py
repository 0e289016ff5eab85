"""End to end: the real `dvc repro` on a tiny params profile in a temporary copy of the repo."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MODELS = ("alexnet", "resnet18", "resnet34", "heatmap")


def tiny_params(params: dict) -> dict:
    """Shrink the default profile so the whole pipeline runs in about a minute."""
    p = json.loads(json.dumps(params))
    p["synthesize"].update(subjects=8, frames_per_subject=[2, 3], width=160, height=128)
    p["codec"].update(input_size=64, stride=4, sigma=1.5)
    p["train"].update(epochs=1, batch_size=8)
    for cfg in p["models"].values():
        cfg["epochs"] = 1
        cfg.pop("head_channels", None)
    p["models"]["heatmap"]["head_channels"] = 16
    p["evaluate"]["timing_frames"] = 2
    p["qc"]["overlay_limit"] = 4
    return p


def copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if not src.is_file():
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    for lock in [dst / "dvc.lock"]:
        lock.unlink(missing_ok=True)


def run(cmd, cwd, env):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("repo")
    copy_repo(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(params), sort_keys=False))
    for folder in ("metrics", "plots"):
        shutil.rmtree(root / folder, ignore_errors=True)
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    run(["git", "init", "-q"], root, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], root, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "tiny"], root, env)
    out = run([sys.executable, "-m", "dvc", "repro"], root, env)
    return root, env, out


def test_repro_builds_every_output(pipeline):
    root, _, _ = pipeline
    for path in ["data/frames/frames.npz", "data/frames/manifest.csv", "data/qc/labels.csv",
                 "metrics/qc.json", "data/split/split.csv", "metrics/split.json",
                 "data/prepared/train.npz", "data/prepared/val.npz", "data/prepared/test.npz",
                 "plots/qc/flag_counts.png", "plots/models/errors_box.png",
                 "plots/models/bland_altman.png", "plots/models/training_curves.png"]:
        assert (root / path).exists(), path
    for model in MODELS:
        assert (root / "models" / f"{model}.pt").exists()
        metrics = json.loads((root / "metrics" / "eval" / f"{model}.json").read_text())
        assert metrics["mre_mm"] > 0
    split = json.loads((root / "metrics/split.json").read_text())
    assert split["subject_overlap"] == 0


def test_second_repro_does_nothing_and_param_change_reruns_only_its_model(pipeline):
    root, env, _ = pipeline
    status = run([sys.executable, "-m", "dvc", "status", "--json"], root, env)
    assert json.loads(status) == {}, status
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["models"]["alexnet"]["lr"] = params["models"]["alexnet"].get("lr", 0.001) * 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], root, env)))
    assert changed == {"train@alexnet", "evaluate@alexnet", "plots"}, changed
    dry = run([sys.executable, "-m", "dvc", "repro", "--dry"], root, env)
    ran = {line.split("'")[1] for line in dry.splitlines() if line.startswith("Running stage")}
    assert ran == {"train@alexnet", "evaluate@alexnet", "plots"}, dry


def test_dvc_metrics_show_lists_four_models(pipeline):
    root, env, _ = pipeline
    out = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], root, env)
    text = json.dumps(json.loads(out))
    for model in MODELS:
        assert f"metrics/eval/{model}.json" in text

"""Shared by the end-to-end tests: a temporary copy of the repo as a git repository, and running
commands in it (the tiny params profile: conftest.tiny_params)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from fhbiometry.config.params import load_params
from fhbiometry.tools.common import model_names

REPO = Path(__file__).resolve().parents[1]
MODELS = tuple(model_names(load_params(REPO / "params.yaml")))


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


def dvc_env(root: Path) -> dict:
    """Environment whose `python` is this interpreter; makes `root` a git repo with one commit."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    run(["git", "init", "-q"], root, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], root, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "tiny"], root, env)
    return env

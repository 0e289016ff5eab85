"""A shared cache: one clone runs the pipeline and `dvc push`es to a folder remote; a fresh clone
`dvc pull`s and has nothing left to reproduce (no stage reruns, no training; docs/scaling_ops.md)."""
from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml

from conftest import tiny_params
from pipeline_helpers import copy_repo, dvc_env, run

pytestmark = pytest.mark.slow
MODELS = ("alexnet", "heatmap")  # one of each kind: the other two add time, not coverage


def dvc(root, env, *args) -> str:
    return run([sys.executable, "-m", "dvc", *args], root, env)


def commit(root, env, message: str) -> None:
    run(["git", "add", "-A"], root, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", message], root, env)


@pytest.fixture(scope="module")
def clones(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    first = tmp_path_factory.mktemp("first")
    copy_repo(first)
    params = tiny_params(yaml.safe_load((first / "params.yaml").read_text()), epochs=1, batch_size=8)
    params["models"] = {name: params["models"][name] for name in MODELS}
    (first / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("metrics", "plots"):
        shutil.rmtree(first / folder, ignore_errors=True)
    env = dvc_env(first)
    dvc(first, env, "repro")
    remote = tmp_path_factory.mktemp("remote")
    dvc(first, env, "remote", "add", "-d", "shared", str(remote))
    commit(first, env, "pipeline run; shared remote")  # dvc.lock, metrics and .dvc/config go to git
    push = dvc(first, env, "push")
    second = tmp_path_factory.mktemp("second") / "repo"
    run(["git", "clone", "-q", str(first), str(second)], first.parent, env)
    pull = dvc(second, env, "pull")
    return first, second, env, remote, push, pull


def test_push_fills_the_remote(clones):
    _, _, _, remote, push, _ = clones
    assert "pushed" in push, push
    assert any(p.is_file() for p in remote.rglob("*")), "the remote folder is empty after dvc push"


def test_pull_restores_every_output(clones):
    _, second, _, _, _, pull = clones
    assert "added" in pull or "fetched" in pull, pull
    for path in ["data/frames/frames.npz", "data/prepared/train.npz", "data/split/split.csv"]:
        assert (second / path).is_file(), path
    for model in MODELS:
        assert (second / "models" / f"{model}.safetensors").is_file(), model
        assert (second / "results" / model).is_dir(), model


def test_fresh_clone_has_nothing_to_reproduce(clones):
    first, second, env, _, _, _ = clones
    status = dvc(second, env, "status", "--json")
    assert json.loads(status) == {}, status
    out = dvc(second, env, "repro")
    assert "Running stage" not in out, out
    for model in MODELS:
        name = f"models/{model}.safetensors"
        assert (second / name).read_bytes() == (first / name).read_bytes(), name

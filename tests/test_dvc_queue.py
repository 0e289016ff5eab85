"""Parallel experiments: two experiments on DVC's queue run side by side (`dvc queue start -j 2`)
and each finishes with its own metrics (docs/scaling_ops.md)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from conftest import tiny_params
from pipeline_helpers import copy_repo, dvc_env, run

pytestmark = pytest.mark.slow

TARGET = "evaluate@heatmap"  # only the heatmap model's chain: the other models are not trained
# name -> overrides; threads=1: two runs at once on a 2-core machine, one core each
EXPERIMENTS = {
    "argmax": ["decode.method=argmax", "threads=1"],    # evaluate only: the checkpoint is reused
    "sigma25": ["codec.sigma=2.5", "threads=1"],        # retrains the heatmap model
}
TIME_LIMIT_S = 300
DONE = ("Success", "Failed")


def dvc(root, env, *args) -> str:
    return run([sys.executable, "-m", "dvc", *args], root, env)


def commit(root, env, message: str) -> None:
    run(["git", "add", "-A"], root, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", message], root, env)


def queue_states(root, env) -> dict:
    """Experiment name -> status, from the table `dvc queue status` prints."""
    states = {}
    for line in dvc(root, env, "queue", "status").splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] in EXPERIMENTS:
            states[words[1]] = words[-1]
    return states


def wait_for_queue(root, env) -> dict:
    deadline = time.monotonic() + TIME_LIMIT_S
    while True:
        states = queue_states(root, env)
        if len(states) == len(EXPERIMENTS) and all(s in DONE for s in states.values()):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"queued experiments not done after {TIME_LIMIT_S} s: {states}")
        time.sleep(2)


def experiments_by_name(show: list) -> dict:
    """Experiment name -> its `data` entry in `dvc exp show --json`, and 'baseline' -> HEAD's."""
    out = {}
    for entry in show:
        if entry["rev"] == "workspace":
            continue
        out["baseline"] = entry["data"]
        for exp in entry.get("experiments") or []:
            out[exp["name"]] = exp["revs"][0]["data"]
    return out


def heatmap_mre(data: dict) -> float:
    return data["metrics"]["metrics/eval/heatmap.json"]["data"]["mre_mm"]


@pytest.fixture(scope="module")
def queued(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("queue")
    copy_repo(root)
    params = tiny_params(yaml.safe_load((root / "params.yaml").read_text()), epochs=1, batch_size=8)
    params["threads"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("metrics", "plots"):
        shutil.rmtree(root / folder, ignore_errors=True)
    env = dvc_env(root)
    # The baseline: its outputs go to the cache and its stages to the run cache, so the queued
    # runs (each in its own temporary clone of HEAD) restore the data stages instead of rerunning them.
    dvc(root, env, "repro", TARGET)
    commit(root, env, "baseline")
    for name, overrides in EXPERIMENTS.items():
        sets = [arg for item in overrides for arg in ("-S", item)]
        dvc(root, env, "exp", "run", "--queue", "-n", name, *sets, TARGET)
    try:
        dvc(root, env, "queue", "start", "-j", "2")
        states = wait_for_queue(root, env)
    finally:
        subprocess.run([sys.executable, "-m", "dvc", "queue", "stop", "--kill"], cwd=root, env=env,
                       capture_output=True)
    logs = {name: subprocess.run([sys.executable, "-m", "dvc", "queue", "logs", name], cwd=root, env=env,
                                 capture_output=True, text=True).stdout for name in EXPERIMENTS}
    show = json.loads(dvc(root, env, "exp", "show", "--json"))
    return states, logs, experiments_by_name(show)


def test_both_queued_experiments_succeed(queued):
    states, logs, _ = queued
    assert states == {name: "Success" for name in EXPERIMENTS}, {n: logs[n][-3000:] for n in EXPERIMENTS}


def test_each_experiment_has_its_own_params_and_metrics(queued):
    _, _, exps = queued
    assert set(EXPERIMENTS) <= set(exps), list(exps)
    params = {name: exps[name]["params"]["params.yaml"]["data"] for name in ("baseline", *EXPERIMENTS)}
    assert params["argmax"]["decode"]["method"] == "argmax"
    assert params["sigma25"]["codec"]["sigma"] == 2.5
    assert params["baseline"]["decode"]["method"] == "quadratic"
    mre = {name: heatmap_mre(exps[name]) for name in ("baseline", *EXPERIMENTS)}
    assert len(set(mre.values())) == 3, mre


def test_queued_runs_reuse_the_baseline_and_rerun_only_what_changed(queued):
    _, logs, _ = queued
    for name, log in logs.items():
        for stage in ("synthesize", "extract_frames", "qc", "split", "prepare"):
            assert f"Running stage '{stage}'" not in log, f"{name} reran {stage}:\n{log[-3000:]}"
        assert f"Running stage '{TARGET}'" in log, log[-3000:]
    assert "Running stage 'train@heatmap'" not in logs["argmax"], logs["argmax"][-3000:]
    assert "Running stage 'train@heatmap'" in logs["sigma25"], logs["sigma25"][-3000:]

"""A stage given a wrong params.yaml prints the ParamError's message alone, without a Python
traceback, and exits with status 2 (issue 18, item 11), for every stage script."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = sorted(p.name for p in (REPO / "stages").glob("*.py"))


def run_stage(script: str, cwd: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(REPO / "stages" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bad_params(tmp_path_factory) -> Path:
    """A folder whose params.yaml has one wrong value in a section every stage reads (``seed``)
    and one in ``qc``."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["seed"] = "forty-two"
    raw["qc"]["policy"] = "ignore"
    folder = tmp_path_factory.mktemp("bad_params")
    (folder / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_every_stage_uses_the_wrapper():
    for name in STAGES:
        text = (REPO / "stages" / name).read_text()
        assert "run_stage(main)" in text, f"stages/{name} does not run main through config.params.run_stage"


@pytest.mark.slow
@pytest.mark.parametrize("script, args", [("qc.py", ()), ("train.py", ("--model", "alexnet"))])
def test_a_stage_prints_the_param_error_alone_and_exits_2(bad_params, script, args):
    res = run_stage(script, bad_params, *args)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith("error: params.yaml: "), res.stderr
    assert "qc.policy = 'ignore': choose one of" in res.stderr, res.stderr

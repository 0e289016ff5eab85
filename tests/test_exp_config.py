"""`fhbiometry exp-config` (fhbiometry.tools.exp_config): every configuration under configs/ becomes
overrides that `dvc exp run -S` (Hydra's override grammar) reads back as the configuration, and the
documented command runs through the real `dvc exp run`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fhbiometry.config.schema import deep_merge, unflatten
from fhbiometry.tools import exp_config as ec
from hc18_like import hc18_like
from pipeline_helpers import REPO, copy_repo, dvc_env

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
LADDERS = [p for p in CONFIGS if ec.is_ladder(yaml.safe_load(p.read_text()) or {})]
PARTIAL = [p for p in CONFIGS if p not in LADDERS]   # partial params files: what exp-config runs


def base_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def configurations() -> list[tuple[str, dict]]:
    """Every configuration under configs/: a partial params file as it is; an ablation ladder as
    each of its rows (its base, the rows up to it and its budget), which `fhbiometry ablation` runs."""
    out = []
    for path in CONFIGS:
        config = yaml.safe_load(path.read_text()) or {}
        if not ec.is_ladder(config):
            out.append((path.name, config))
            continue
        merged = yaml.safe_load((REPO / config["base"]).read_text())
        for row in config["rows"]:
            merged = deep_merge(merged, unflatten(row["set"]))
            out.append((f"{path.name}:{row['name']}",
                        deep_merge(merged, unflatten(config.get("budget") or {}))))
    return out


def through_dvc(tmp_path: Path, items: list[str]) -> dict:
    """params.yaml after DVC's own handling of `-S` overrides: the sweep split of `dvc exp run`
    (which writes every override out again) and its apply_overrides (Hydra's parser and loader)."""
    from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    sweeps = get_hydra_sweeps({"params.yaml": items})
    assert len(sweeps) == 1, f"the overrides make a sweep of {len(sweeps)} runs: {items}"
    apply_overrides(path, sweeps[0]["params.yaml"])
    return yaml.safe_load(path.read_text())


def test_every_configuration_under_configs_is_found():
    names = [name for name, _ in configurations()]
    assert "hc18.yaml" in names
    assert "hc18_headsize.yaml" in names
    assert any(name.startswith("hc18_ablation.yaml:") for name in names)
    assert {p.name for p in PARTIAL} | {p.name for p in LADDERS} == {p.name for p in CONFIGS}
    assert PARTIAL
    assert LADDERS


@pytest.mark.parametrize("name,config", configurations(), ids=[n for n, _ in configurations()])
def test_overrides_parse_with_hydra_and_read_back_as_the_configuration(name, config, tmp_path):
    params = base_params()
    items = ec.config_overrides(config, params)
    for item in items:                                  # Hydra's parser accepts each one
        parsed = ec.parse_override(item)
        key = item.split("=", 1)[0].lstrip("+")
        assert parsed.key_or_group == key, item
        assert parsed.value_type.name == "ELEMENT", item
    got = through_dvc(tmp_path, items)
    assert ec.same(got, ec.apply(params, config)), name


@pytest.mark.parametrize("value", [
    "pixel size(mm)", "head circumference (mm)", "", " padded ", "a,b", "1", "0.5", "true", "null",
    "it's", "back\\slash", "ends\\", "quote\\'d", "[1]", "{a}", "a=b", "x:y", "é", "*.png", "~",
    1, -3, 0.25, 1.5, 0.0001, True, False, None, [0.6, 1.5], ["a b", 1, None], [], {"k": "v w"},
])
def test_override_value_reads_back_through_dvc(value, tmp_path):
    got = through_dvc(tmp_path, [f"data.raw_dir={ec.override_value(value)}"])
    assert ec.same(got["data"]["raw_dir"], value), ec.override_value(value)


def test_plain_strings_stay_unquoted_and_awkward_ones_are_quoted():
    assert ec.override_value("../shared/datasets/hc18-landmarks") == "../shared/datasets/hc18-landmarks"
    assert ec.override_value("pixel size(mm)") == "'pixel size(mm)'"
    assert ec.override_value("it's") == "'it\\'s'"
    assert ec.override_value("1") == "'1'"
    assert ec.override_value(1) == "1"
    assert ec.override_value("") == "''"


def test_an_interpolation_is_refused_with_its_key():
    with pytest.raises(ValueError, match=r"data\.raw_dir.*interpolation"):
        ec.override_value("${seed}/x", "data.raw_dir")


def test_a_float_dvc_would_write_as_text_is_refused():
    # DVC writes 1e-05 as `1e-05`, a string to PyYAML (YAML 1.1 wants a dot)
    with pytest.raises(ValueError, match=r"train\.lr.*params\.yaml"):
        ec.override_value(1e-05, "train.lr")
    with pytest.raises(ValueError, match="train.lr"):
        ec.override_value([0.5, 1e20], "train.lr")


def test_a_key_params_yaml_omits_is_added():
    items = ec.config_overrides({"models": {"heatmap": {"augment": {"scale": [0.6, 1.5]}}}, "seed": 1},
                                base_params())
    assert items == ["+models.heatmap.augment.scale=[0.6, 1.5]", "seed=1"]


@pytest.mark.parametrize("ladder", LADDERS, ids=[p.name for p in LADDERS])
def test_a_ladder_is_refused_with_the_command_that_runs_it(ladder, monkeypatch, capsys):
    """configs/*_ablation.yaml and the accuracy ladders are run by `fhbiometry ablation`; their
    rows' overrides are checked above."""
    from fhbiometry import cli

    monkeypatch.chdir(REPO)
    assert cli.main(["exp-config", f"configs/{ladder.name}", "--print"]) == 2
    err = capsys.readouterr().err
    assert "ablation ladder" in err
    assert f"fhbiometry ablation configs/{ladder.name}" in err


def test_a_key_that_is_no_parameter_stops_with_exit_2(tmp_path, monkeypatch, capsys):
    from fhbiometry import cli

    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "c.yaml").write_text("qc:\n  polcy: exclude\n")
    assert cli.main(["exp-config", "c.yaml", "--print"]) == 2
    assert "polcy" in capsys.readouterr().err


# ---- the documented command, through the real `dvc exp run` ------------------------------------
@pytest.fixture(scope="module")
def hc18_repo(tmp_path_factory):
    """A copy of the repository (a git repo of its own) with an HC18-like data set where
    configs/hc18*.yaml look for the real one (../shared/datasets/hc18-landmarks)."""
    top = tmp_path_factory.mktemp("expcfg")
    root = top / "repo"
    copy_repo(root)
    n_frames = hc18_like(top / "shared" / "datasets" / "hc18-landmarks", n_subjects=6)
    for folder in ("metrics", "plots"):
        shutil.rmtree(root / folder, ignore_errors=True)
    env = dvc_env(root)
    env["PYTHONPATH"] = str(root / "src")
    return root, env, n_frames


@pytest.mark.slow
@pytest.mark.parametrize("config", PARTIAL, ids=[p.name for p in PARTIAL])
def test_documented_command_runs_through_dvc_exp_run(config, hc18_repo):
    """`fhbiometry exp-config configs/<name>.yaml --name <name> -- qc` (README "Your own data",
    docs/hc18.md): the experiment's params are the configuration, its QC ran on the data set."""
    root, env, n_frames = hc18_repo
    subprocess.run(["git", "checkout", "-q", "--", "params.yaml"], cwd=root, check=True)
    exe = Path(sys.executable).parent / "fhbiometry"
    name = config.stem.replace("_", "-")
    res = subprocess.run([str(exe), "exp-config", f"configs/{config.name}", "--name", name, "--", "qc"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=600)
    out = res.stdout[-4000:] + res.stderr[-4000:]
    document = yaml.safe_load(config.read_text())
    assert res.returncode == 0, out
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert ec.same(params, ec.apply(base_params(), document)), out
    qc = json.loads((root / "metrics/qc.json").read_text())
    if "raw_dir" in (document.get("data") or {}):   # the HC18-like set where the real one would be
        assert qc["frames"] == n_frames, out
        assert qc["reference"]["compared"] == n_frames, out
    else:   # a model configuration on the synthetic default: the committed data, frame for frame
        committed = json.loads((REPO / "metrics/qc.json").read_text())
        assert qc["frames"] == committed["frames"], out
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=root, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert f'"{name}"' in shown, shown[-2000:]

"""The `fhbiometry` command: its subcommands, their help, and how it refuses what it does not know."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fhbiometry import cli

REPO = Path(__file__).resolve().parents[1]

COMMANDS = ("check-reproduction", "reproduction-spread", "exp-config", "ablation", "accuracy-report",
            "results-table", "label-agreement", "near-duplicates", "predict", "export", "bench-predict",
            "bench-train", "size-bias", "intervals-table", "reject-probe", "paired-compare",
            "ensemble")


def fhbiometry(*args: str) -> subprocess.CompletedProcess:
    """The installed entry point when this interpreter has one, else `python -m fhbiometry`."""
    script = Path(sys.executable).parent / "fhbiometry"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "fhbiometry"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_help_lists_every_subcommand_with_its_summary():
    res = fhbiometry("--help")
    assert res.returncode == 0, res.stderr
    for name in COMMANDS:
        line = next((line for line in res.stdout.splitlines() if line.strip().startswith(name)), None)
        assert line is not None, f"{name} missing from `fhbiometry --help`:\n{res.stdout}"
        assert cli.SUBCOMMANDS[name].SUMMARY in res.stdout
    assert set(cli.SUBCOMMANDS) == set(COMMANDS)


@pytest.mark.slow
def test_python_dash_m_is_the_same_command():
    res = subprocess.run([sys.executable, "-m", "fhbiometry", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert all(name in res.stdout for name in COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_each_subcommand_help_says_what_it_does_and_shows_an_example(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "Example" in out
    assert f"fhbiometry {name} " in out
    assert cli.SUBCOMMANDS[name].__doc__.strip().splitlines()[0] in out


@pytest.mark.slow
def test_an_unknown_subcommand_fails_and_names_the_choices():
    res = fhbiometry("no-such-command")
    assert res.returncode != 0
    assert "invalid choice" in res.stderr
    assert "check-reproduction" in res.stderr


def test_arguments_after_double_dash_go_only_to_exp_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text().replace("policy: exclude", "policy: keep"))
    (tmp_path / "c.yaml").write_text("qc:\n  policy: exclude\n")
    assert cli.main(["exp-config", "c.yaml", "--name", "x", "--print", "--", "qc"]) == 0
    assert capsys.readouterr().out.strip() == "dvc exp run -n x -S qc.policy=exclude qc"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["results-table", "--", "qc"])
    assert exit_.value.code != 0


def test_results_table_lists_the_models_of_params_yaml_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("models:\n  zeta: {}\n  alpha: {}\n")
    metrics = ('{"n_params": 2000000, "n": 5, "mre_mm": 1.0, "mre_mm_median": 0.9, '
               '"success_rate": {"within_2mm": 0.5, "within_4mm": 0.75}, '
               '"floor": {"bpd": {"mae_mm": 9.0}, "ofd": {"mae_mm": 12.0}}, '
               + ", ".join(f'"{d}": {{"mae_mm": 1.0, "median_mm": 0.8, "p95_mm": 2.0, "max_mm": 3.0}}'
                           for d in ("bpd", "ofd")) + "}")
    (tmp_path / "eval").mkdir()
    for name in ("alpha", "zeta", "other"):
        (tmp_path / "eval" / f"{name}.json").write_text(metrics)
    assert cli.main(["results-table", "eval"]) == 0
    rows = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == ["zeta", "alpha"]

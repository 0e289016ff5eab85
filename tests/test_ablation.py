"""The ablation ladder (configs/hc18_ablation.yaml) and its runner's table (`fhbiometry ablation`)."""
from __future__ import annotations

import argparse
import json

import yaml

from fhbiometry.tools import ablation
from fhbiometry.tools.common import model_names
from fhbiometry.tools.exp_config import apply
from pipeline_helpers import REPO

LADDER = REPO / "configs" / "hc18_ablation.yaml"


def base_params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


# the levers of configs/hc18_accuracy*.yaml, which configs/hc18.yaml took on after this ladder ran
BEFORE_ACCURACY_LEVERS = {"decode": {"method": "quadratic", "flip_test": False, "size_calibration": "none"},
                          "models": {"heatmap": {"epochs": 30, "augment": {"scale": [0.85, 1.15], "edge_cut": 0.0}}}}


def test_ladder_ends_at_the_committed_configuration_and_changes_one_thing_per_row():
    """The last row is configs/hc18.yaml without this round's accuracy levers (as it was when the
    ladder ran); the accuracy ladders start there."""
    ladder = ablation.load_ladder(LADDER)
    rows = ladder["rows"]
    final = ablation.row_params(base_params(), ladder, len(rows) - 1, REPO, budget=False)
    config = apply(base_params(), yaml.safe_load((REPO / ladder["base"]).read_text()))
    assert config["decode"]["size_calibration"] == "validation"       # the committed one has the levers
    config = apply(config, BEFORE_ACCURACY_LEVERS)
    config["data"]["raw_dir"] = final["data"]["raw_dir"]  # made absolute for the working copy
    assert final == config
    seed = ablation.row_params(base_params(), ladder, 0, REPO)
    assert seed["split"]["grouped"] is False
    assert seed["input"]["resize"] == "stretch"
    assert seed["decode"]["method"] == "argmax"
    assert seed["codec"]["coordinates"] == "pixels"
    budgeted = [ablation.row_params(base_params(), ladder, i, REPO) for i in range(len(rows))]
    for model in model_names(base_params()):  # one budget for every row
        assert len({p["models"][model]["epochs"] for p in budgeted}) == 1
    assert budgeted[-1]["models"]["heatmap"]["epochs"] < final["models"]["heatmap"]["epochs"]
    for i in range(1, len(rows)):  # every row changes something
        assert budgeted[i] != budgeted[i - 1]


def fake_metrics(bpd, with_ellipse=True):
    section = {"bpd": {"mae_mm": bpd}, "ofd": {"mae_mm": 2 * bpd}, "mre_mm": 3 * bpd, "n": 95,
               "success_rate": {"within_2mm": 0.5, "within_4mm": 0.9}}
    floor = {"bpd": {"mae_mm": 9.0}, "ofd": {"mae_mm": 12.0}, "mre_mm": 15.0}
    out = {**section, "floor": floor}
    if with_ellipse:
        out["vs_ellipse"] = {**section, "bpd": {"mae_mm": bpd + 1}, "floor": floor}
    return out


def test_table_reads_the_errors_against_the_ellipses_whatever_the_labels(tmp_path):
    ladder = {"base": "configs/hc18.yaml", "rows": [
        {"name": "a", "label": "csv labels", "set": {"data.label_source": "csv"}},
        {"name": "b", "label": "ellipse labels", "set": {"data.label_source": "ellipse"}},
        {"name": "c", "label": "not run", "set": {"codec.decode": "argmax"}}]}
    for name, source_bpd in (("a", 1.0), ("b", 2.0)):
        folder = tmp_path / name
        (folder / "eval").mkdir(parents=True)
        for model in model_names(base_params()):
            (folder / "eval" / f"{model}.json").write_text(json.dumps(fake_metrics(source_bpd)))
        (folder / "row.json").write_text("{}")
    text = ablation.table(ladder, tmp_path, REPO)
    lines = [line for line in text.splitlines() if line.startswith("| 1") or line.startswith("| 2")]
    assert "| 1 | csv labels | alexnet | 2.00 | 2.00 | 3.00 | 50 | 90 | 9.00 / 12.00 / 15.00 | 95 |" in lines
    assert "| 2 | ellipse labels | alexnet | 2.00 | 4.00 | 6.00 |" in lines[1]
    assert "not run" not in text
    assert len(text.splitlines()) == 2 + 2 * len(model_names(base_params()))


def test_without_an_ellipse_annotation_the_table_reads_the_errors_against_the_labels(tmp_path):
    """The synthetic default (configs/contour_ablation.yaml) has no ellipse annotation: its rows are
    tabulated against their labels, not left as n/a."""
    ladder = {"base": "configs/contour.yaml", "rows": [
        {"name": "band-off", "label": "off", "set": {"models.contour.contour_weight": 0.0}}]}
    folder = tmp_path / "band-off"
    (folder / "eval").mkdir(parents=True)
    params = yaml.safe_load((REPO / "configs/contour.yaml").read_text())
    for model in [*model_names(base_params()), *params["models"]]:
        (folder / "eval" / f"{model}.json").write_text(json.dumps(fake_metrics(1.5, with_ellipse=False)))
    (folder / "row.json").write_text("{}")
    text = ablation.table(ladder, tmp_path, REPO)
    assert ("| 1 | off | alexnet (vs labels: no ellipse annotation) | 1.50 | 3.00 | 4.50 | 50 | 90 | "
            "9.00 / 12.00 / 15.00 | 95 |") in text
    assert "| contour (vs labels: no ellipse annotation) | 1.50 |" in text
    assert "n/a" not in text


def test_table_only_without_rows_says_what_to_run_and_keeps_the_table(tmp_path, monkeypatch, capsys):
    """The rows' raw outputs are not in git: --table-only on a fresh clone names the command that
    writes them and how to restore them, and leaves the committed table alone."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "hc18.yaml").write_text((REPO / "configs" / "hc18.yaml").read_text())
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump({"base": "configs/hc18.yaml", "rows": [
        {"name": "a", "label": "a row", "set": {"data.label_source": "csv"}}]}))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "table.md").write_text("the committed table\n")
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    ablation.add_arguments(parser)
    code = ablation.run(parser.parse_args(["ladder.yaml", "--out", "out", "--table-only"]))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "run `fhbiometry ablation ladder.yaml --out out` first" in err, err
    assert "git restore --source=" in err, err
    assert (tmp_path / "out" / "table.md").read_text() == "the committed table\n", "the table was overwritten"


def test_table_names_the_command_that_writes_its_rows(tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "hc18.yaml").write_text((REPO / "configs" / "hc18.yaml").read_text())
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump({"base": "configs/hc18.yaml", "budget": {
        "models.heatmap.epochs": 2}, "rows": [{"name": "a", "label": "a row", "set": {}},
                                             {"name": "b", "label": "not run", "set": {"seed": 1}}]}))
    (tmp_path / "out" / "a" / "eval").mkdir(parents=True)
    for model in model_names(base_params()):
        (tmp_path / "out" / "a" / "eval" / f"{model}.json").write_text(json.dumps(fake_metrics(1.0)))
    (tmp_path / "out" / "a" / "row.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    ablation.add_arguments(parser)
    assert ablation.run(parser.parse_args(["ladder.yaml", "--out", "out", "--table-only", "--full-budget"])) == 0
    text = (tmp_path / "out" / "table.md").read_text()
    assert text.startswith("Written by `fhbiometry ablation ladder.yaml --full-budget --out out`"), text
    assert "same budget" not in text, "a --full-budget table must not claim the ladder's budget"
    assert "left out of the table: b" in capsys.readouterr().err


def test_the_workdir_gets_the_checkpoints_under_weights_and_loses_stale_ones(tmp_path):
    """``train.init_from`` files are ignored by git, so the tracked-file copy alone would miss them."""
    from fhbiometry.tools.ablation import sync_weights

    repo, work = tmp_path / "repo", tmp_path / "work"
    (repo / "weights").mkdir(parents=True)
    (repo / "weights/a.safetensors").write_bytes(b"new")
    (work / "weights").mkdir(parents=True)
    (work / "weights/a.safetensors").write_bytes(b"old")
    (work / "weights/gone.safetensors").write_bytes(b"stale")
    sync_weights(repo, work)
    assert sorted(p.name for p in (work / "weights").iterdir()) == ["a.safetensors"]
    assert (work / "weights/a.safetensors").read_bytes() == b"new"

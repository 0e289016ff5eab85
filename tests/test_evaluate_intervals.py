"""The evaluate stage writes the section ``intervals`` (evaluation/intervals.py), calibrated on the
validation frames only, and leaves every other metric as it was."""
import json

import numpy as np
import pytest

from fhbiometry.core.store import save_npz
from fhbiometry.evaluation import evaluate as ev
from fhbiometry.evaluation import intervals as ei
from fhbiometry.trust.intervals import SCALES, SCORES, TARGETS

from conftest import untrained_checkpoint
from test_evaluate import fake_split, stage_params


def stage_root(tmp_path, kind="heatmap", n_val=12):
    data = fake_split(n=6)
    save_npz(tmp_path / "data/prepared/test.npz", data)
    if n_val:
        val = fake_split(n=n_val, seed=1)
        save_npz(tmp_path / "data/prepared/val.npz", val)
    untrained_checkpoint(tmp_path / "models/m.safetensors", kind, "resnet18", train_mean_points=data["points"].mean(0))
    return stage_params("resnet18", kind, timing_frames=0)


@pytest.mark.parametrize("kind", ["heatmap", "regression"])
def test_evaluate_writes_the_interval_section(tmp_path, kind):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    params = stage_root(tmp_path, kind)
    assert params["intervals"]["level"] == 0.9
    metrics = ev.run(params, "m", root=tmp_path)
    section = json.loads((tmp_path / "metrics/eval/m.json").read_text())["intervals"]
    assert section["level"] == 0.9
    assert section["method"]["score"] == params["intervals"]["score"]
    calib = section["calibration"]
    assert calib["n"] == 11                         # the accepted validation frames (the last fails QC)
    assert set(calib["quantile"]) == set(TARGETS)
    assert set(calib["cine_quantile"]) == set(TARGETS)
    for key in ("coverage", "median_half_width_mm"):
        assert set(section[key]) == set(TARGETS), key
        assert all(v is None or v >= 0 for v in section[key].values()), key
    assert section["n"] == metrics["n_evaluated"]
    assert set(section["bins"]["head_size"]) == {"small", "medium", "large"}
    assert section["rejection"]["bpd_half_width_over_mm"] == 3.0
    assert section["per_cine"]["n_cines"] >= 1
    assert set(section["candidates"]) == {f"{s}_{c}" for c in SCALES for s in SCORES}


@pytest.mark.slow
def test_intervals_change_no_other_metric(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    params = stage_root(tmp_path)
    with_intervals = ev.run(params, "m", root=tmp_path)
    params.pop("intervals")
    without = ev.run(params, "m", root=tmp_path)
    assert "intervals" not in without
    with_intervals.pop("intervals")
    assert json.dumps(with_intervals, sort_keys=True, default=str) == json.dumps(without, sort_keys=True, default=str)


def test_no_validation_split_says_so(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    metrics = ev.run(stage_root(tmp_path, n_val=0), "m", root=tmp_path)
    assert metrics["intervals"]["calibration"] is None
    assert "validation" in metrics["intervals"]["note"]


class FakeSplit(ei.Split):
    def __init__(self, values, truth, groups, conf):
        self.values, self.truth = np.asarray(values, float), np.asarray(truth, float)
        self.spacing, self.groups, self.conf = np.ones(len(values)), np.asarray(groups), np.asarray(conf, float)
        self.features = {"flip": np.zeros_like(self.values), "geometry": np.zeros(len(values)),
                         "peak": np.zeros(len(values))}


def test_figures_count_what_they_say():
    err = np.array([[1.0, 1.0, 1.0], [5.0, 5.0, 5.0], [0.5, 3.0, 0.5], [0.1, 0.1, 0.1]])
    widths = np.array([[2.0, 2.0, 2.0], [4.0, 4.0, 4.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    figures = ei.core_figures(err, widths)
    assert figures["coverage"] == {"bpd": 0.75, "ofd": 0.5, "hc": 0.75}
    assert figures["median_half_width_mm"]["bpd"] == 1.5
    assert figures["auc_error_over_2mm"] == 0.75      # positives widths 4, 1 against negatives 2, 0.5: 3 of 4 pairs
    rej = ei.rejection(err, widths, 3.0)                # frame 1 (BPD width 4) rejected, it is the > 4 mm one
    assert rej["rejected_share"] == 0.25
    assert rej["large_removed_share"] == 1.0
    assert rej["n_large"] == 1


def test_cine_figures_use_the_accepted_frames_of_each_subject():
    split = FakeSplit([[10.0] * 3, [10.0] * 3, [30.0] * 3], [[11.0] * 3, [11.0] * 3, [40.0] * 3],
                      ["a", "a", "b"], [0.9, 0.9, 0.1])
    out = ei.cine_figures(split, np.ones((3, 3)), 0.5, {t: 1.5 for t in TARGETS})
    assert out["n_cines"] == 1                        # b has no accepted frame
    assert out["coverage"]["bpd"] == 1.0
    assert out["median_half_width_mm"]["bpd"] == 1.5


def test_intervals_table_command(tmp_path, capsys):
    """`fhbiometry intervals-table` prints the candidates and the goals of the written section."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from fhbiometry.cli import main

    params = stage_root(tmp_path)
    ev.run(params, "m", root=tmp_path)
    folder = str(tmp_path / "metrics/eval")
    assert main(["intervals-table", "--metrics", folder]) == 0
    out = capsys.readouterr().out
    assert f"| m | {params['intervals']['score']}_{params['intervals']['scale']} (chosen) |" in out
    assert out.count("| m |") == len(SCORES) * len(SCALES) + 1   # + the header
    assert main(["intervals-table", "--metrics", folder, "--table", "goals"]) == 0
    assert "coverage BPD/OFD/HC (goal 0.87-0.93)" in capsys.readouterr().out


def _candidate(bpd, ofd, auc):
    return {"val_cv": {"coverage": {"bpd": bpd, "ofd": ofd, "hc": 0.5}, "auc_error_over_2mm": auc}}


def test_the_choice_rule_takes_the_steadiest_coverage_then_the_best_auc(tmp_path, capsys):
    """`fhbiometry intervals-table --table choice`: the largest |coverage - level| over BPD and OFD
    of every model decides (HC and the test frames do not), the ranking model's AUC breaks ties."""
    from fhbiometry.cli import main
    from fhbiometry.tools.intervals_table import choose

    sections = {
        "heatmap": {"level": 0.9, "method": {"score": "flip", "scale": "mm"},
                    "candidates": {"flip_mm": _candidate(0.90, 0.90, 0.9), "geometry_relative": _candidate(0.92, 0.88, 0.6),
                                   "peak_mm": _candidate(0.88, 0.92, 0.7)}},
        "resnet34": {"level": 0.9, "method": {"score": "flip", "scale": "mm"},
                     "candidates": {"flip_mm": _candidate(0.70, 0.90, 0.9), "geometry_relative": _candidate(0.90, 0.90, 0.1),
                                    "peak_mm": _candidate(0.90, 0.90, 0.1)}}}
    chosen, rows = choose(sections)
    assert chosen == "peak_mm"                      # tied at 0.02 with geometry_relative, higher heatmap AUC
    assert [r[0] for r in rows][-1] == "flip_mm"    # resnet34's BPD 0.70: deviation 0.20
    assert choose(sections, rank_by="resnet34")[0] == "geometry_relative"   # AUC tie 0.1: name order
    for name, section in sections.items():
        section["calibration"] = {"n": 1}
        (tmp_path / f"{name}.json").write_text(json.dumps({"intervals": section}))
    assert main(["intervals-table", "--metrics", str(tmp_path), "--table", "choice"]) == 0
    out = capsys.readouterr().out
    assert "| peak_mm (rule) | 0.02 | 0.70 |" in out
    assert "| flip_mm (committed) | 0.20 | 0.90 |" in out

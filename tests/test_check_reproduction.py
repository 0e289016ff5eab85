"""`fhbiometry check-reproduction` (fhbiometry.tools.check_reproduction): what CI compares exactly,
within tolerance, or not at all."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhbiometry.tools import check_reproduction as cr
from fhbiometry.tools.common import flatten

EVAL = "metrics/eval/heatmap.json"


SPREAD = {EVAL: {"bpd.mae_mm": 0.12, "mre_mm": 0.5, "ofd.loa_high_mm": 1.0,
                 "success_rate.within_2mm": 0.02, "mre_px": 0.0}}


@pytest.mark.parametrize("path,key,old,new,status,problem", [
    ("metrics/qc.json", "flags.outside", 4, 5, "exact", True),            # data stages: exact
    ("metrics/split.json", "test.frames", 57, 57, "identical", False),
    (EVAL, "floor.bpd.mae_mm", 16.8, 16.800001, "exact", True),          # no trained weights: exact
    (EVAL, "n_evaluated", 54, 53, "exact", True),
    (EVAL, "vs_ellipse.n", 95, 94, "exact", True),
    (EVAL, "pair_decode", True, False, "exact", True),
    (EVAL, "bpd.mae_mm", 1.40, 1.87, "close", False),                    # within 4 sd (0.48 mm)
    (EVAL, "bpd.mae_mm", 1.40, 1.89, "close", True),                     # beyond 4 sd
    (EVAL, "mre_mm", 23.8, 25.7, "close", False),
    (EVAL, "mre_mm", 23.8, 25.9, "close", True),
    (EVAL, "ofd.loa_high_mm", 17.1, 20.9, "close", False),               # tails have a wider spread
    (EVAL, "success_rate.within_2mm", 0.63, 0.70, "close", False),
    (EVAL, "success_rate.within_2mm", 0.63, 0.72, "close", True),
    (EVAL, "mre_px", 10.0, 10.15, "close", False),                       # sd 0: the minimum tolerance
    (EVAL, "mre_px", 10.0, 10.3, "close", True),
    (EVAL, "ofd.mae_mm", 1.0, 1.0001, "close", True),                    # no measured spread: a problem
    (EVAL, "confidence.auc_bad", 0.47, None, "close", False),            # undefined when every frame is bad
    (EVAL, "bpd.mae_mm", 1.40, None, "exact", True),                     # a headline metric may not vanish
    (EVAL, "timing.cpu_ms_per_frame", 20.0, 90.0, "ignored", False),
    (EVAL, "best_epoch", 13, 15, "ignored", False),
    (EVAL, "decode.argmax.mre_mm", 2.0, None, "exact", True),            # a section that vanished
])
def test_compare_value(path, key, old, new, status, problem):
    got, message = cr.compare_value(path, key, old, new, SPREAD)
    assert got == status
    assert (message is not None) == problem
    if message:
        assert key in message and path in message


def test_measure_spread_is_the_sample_sd_per_metric(tmp_path):
    from fhbiometry.tools.reproduction_spread import measure_spread

    for name, value in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        folder = tmp_path / name / "eval"
        folder.mkdir(parents=True)
        (folder / "heatmap.json").write_text(json.dumps({"bpd": {"mae_mm": value}, "model": "heatmap"}))
    spread = measure_spread([tmp_path / n for n in "abc"])
    assert spread["runs"] == ["a", "b", "c"]
    assert spread["sd"] == {EVAL: {"bpd.mae_mm": 1.0}}      # strings are not measured
    with pytest.raises(ValueError, match="two runs"):
        measure_spread([tmp_path / "a"])


def write_eval(root, name, kind, bpd, ofd, floor_bpd=10.0, floor_ofd=12.0):
    path = root / "metrics" / "eval" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model_kind": kind, "bpd": {"mae_mm": bpd}, "ofd": {"mae_mm": ofd},
                                "floor": {"bpd": {"mae_mm": floor_bpd}, "ofd": {"mae_mm": floor_ofd}}}))


def test_invariants_every_model_beats_the_floor_and_the_heatmap_model_widely(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_eval(tmp_path, "resnet18", "regression", 9.0, 11.0)
    write_eval(tmp_path, "heatmap", "heatmap", 3.0, 3.9)
    assert cr.invariants() == []
    write_eval(tmp_path, "resnet18", "regression", 9.0, 12.5)     # OFD no better than the floor
    write_eval(tmp_path, "heatmap", "heatmap", 3.4, 3.9)          # BPD not under floor / 3
    problems = cr.invariants()
    assert len(problems) == 2
    assert any("resnet18.json: ofd" in p for p in problems)
    assert any("heatmap.json: bpd" in p and "/ 3" in p for p in problems)


RUNS = cr.RUNS_DIR
# runs that retrained one model and saved only its metrics: the other models are the reference's
# (git keeps no byte-identical copies of them)
PARTIAL_RUNS = {"degraded-heatmap-half-epochs": ("heatmap.json",)}


def run_problems(run: str) -> list[str]:
    """Problems of the saved run ``run`` against the saved reference, with the committed spread."""
    repo = Path(__file__).resolve().parents[1]
    spread = cr.load_spread(repo / cr.SPREAD_FILE)
    problems = []
    for path in sorted((repo / RUNS / "reference" / "eval").glob("*.json")):
        old = flatten(json.loads(path.read_text()))
        saved = repo / RUNS / run / "eval" / path.name
        if run in PARTIAL_RUNS and path.name not in PARTIAL_RUNS[run]:
            assert not saved.exists(), f"{saved}: a copy of the reference's; remove it"
            saved = path
        new = flatten(json.loads(saved.read_text()))
        for key in sorted(set(old) | set(new)):
            _, problem = cr.compare_value(f"metrics/eval/{path.name}", key, old.get(key), new.get(key), spread)
            if problem:
                problems.append(problem)
    return problems


def test_committed_spread_passes_each_measured_rerun():
    repo = Path(__file__).resolve().parents[1]
    runs = json.loads((repo / cr.SPREAD_FILE).read_text())["runs"]
    assert "reference" in runs and len(runs) >= 2
    for run in runs + ["cpu-avx2"]:   # cpu-avx2: a rerun on another code path, not in the spread
        assert run_problems(run) == [], run


def test_committed_spread_fails_the_model_trained_with_half_its_epochs():
    problems = run_problems("degraded-heatmap-half-epochs")
    assert any("metrics/eval/heatmap.json: bpd.mae_mm" in p or "metrics/eval/heatmap.json: mre_mm" in p
               for p in problems), problems
    assert all("heatmap.json" in p for p in problems), problems   # the other models are untouched


def test_reference_run_is_the_committed_metrics():
    repo = Path(__file__).resolve().parents[1]
    for path in sorted((repo / "metrics/eval").glob("*.json")):
        saved = json.loads((repo / RUNS / "reference" / "eval" / path.name).read_text())
        committed = json.loads(path.read_text())
        for section in (saved, committed):
            section.pop("timing", None)
        assert saved == committed, path.name

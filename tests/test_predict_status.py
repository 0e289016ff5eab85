"""What `fhbiometry predict` says when it has no measurement (summary.csv status/basis/reason,
--measure-rejected), refuses an --out that is a file, carries the reader's notes, takes its
subject ids from the readers' one pattern, and the non-head rejection probe (reject-probe)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fhbiometry.cli import main
from conftest import untrained_checkpoint
from predict_helpers import head_frames, screen_with, synthetic_head

torch = pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]
PARAMS = str(REPO / "params.yaml")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from fhbiometry.synth.writers import write_dicom

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("status")
    return {"root": root, "model": untrained_checkpoint(root / "heatmap.safetensors"),
            "cine": write_dicom(root / "cine.dcm", head_frames(3), 0.2, "P1", 0)}


def predict_cli(case, out, *extra, capsys=None):
    code = main(["predict", str(case["cine"]), "--model", str(case["model"]), "--params", PARAMS,
                 "--out", str(out), "--overlays", "none", *extra])
    return code, (capsys.readouterr() if capsys else None)


def read_summary(out) -> pd.Series:
    return pd.read_csv(Path(out) / "summary.csv", dtype={"subject_id": str}).iloc[0]


def frame_numbers(ranges: str) -> list[int]:
    """``"#0-#1, #4"`` -> ``[0, 1, 4]``."""
    out = []
    for part in ranges.split(", "):
        lo, _, hi = part.partition("-")
        out += range(int(lo[1:]), int((hi or lo)[1:]) + 1)
    return out


def test_a_cine_with_no_accepted_frame_has_no_measurement(case, tmp_path, capsys):
    # confidence is at most 1: a threshold of 1.5 rejects every frame
    code, out = predict_cli(case, tmp_path / "o", "--confidence-threshold", "1.5", capsys=capsys)
    assert code == 0
    row = read_summary(tmp_path / "o")
    assert row["status"] == "no accepted frame"
    assert row["basis"] == "none"
    assert row["n_frames"] == 3
    assert row["n_used"] == 0
    assert row["n_rejected"] == 3
    groups = [part.split(": ", 1) for part in row["reason"].split("; ")]   # "#0-#1: low confidence, ratio; #2: ..."
    assert all("low confidence" in why for _, why in groups)
    assert sorted(k for frames, _ in groups for k in frame_numbers(frames)) == [0, 1, 2]   # every frame named
    for column in ("bpd_mm", "ofd_mm", "hc_mm", "cephalic_index", "ga_bpd_weeks", "ga_hc_weeks"):
        assert np.isnan(row[column]), column
    cines = json.loads((tmp_path / "o/summary.json").read_text())["cines"]
    assert cines[0]["bpd_mm"] is None
    assert cines[0]["status"] == "no accepted frame"
    assert "no accepted frame" in out.out


def test_measure_rejected_gives_the_median_of_rejected_frames_and_says_so(case, tmp_path):
    code, _ = predict_cli(case, tmp_path / "o", "--confidence-threshold", "1.5", "--measure-rejected")
    assert code == 0
    row = read_summary(tmp_path / "o")
    frames = pd.read_csv(tmp_path / "o/frames.csv")
    assert row["status"] == "no accepted frame"
    assert row["basis"] == "REJECTED frames (--measure-rejected)"
    assert row["n_used"] == 3
    assert row["bpd_mm"] == pytest.approx(frames["bpd_mm"].median(), abs=1e-3)
    assert row["hc_mm"] == pytest.approx(frames["hc_mm"].median(), abs=1e-2)


def test_out_pointing_at_a_file_exits_2_naming_it(case, tmp_path, capsys):
    taken = tmp_path / "results.csv"
    taken.write_text("keep me\n")
    code, out = predict_cli(case, taken, capsys=capsys)
    assert code == 2
    assert f"{taken} is a file" in out.err
    assert "give a folder path" in out.err
    assert taken.read_text() == "keep me\n"                        # nothing written over it


def test_notes_carry_the_readers_conversions_and_the_cropped_area(case, tmp_path):
    from PIL import Image

    screen = screen_with(synthetic_head())
    rgb = np.stack([screen, screen, screen], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "sub007_HC.png")
    (tmp_path / "sub007_HC.json").write_text(json.dumps({"pixel_spacing_mm": 0.1}))
    code = main(["predict", str(tmp_path / "sub007_HC.png"), "--model", str(case["model"]), "--params", PARAMS,
                 "--out", str(tmp_path / "o"), "--overlays", "none"])
    assert code == 0
    frames = pd.read_csv(tmp_path / "o/frames.csv", dtype={"subject_id": str})
    notes = frames["notes"].iloc[0]
    assert "colour_to_grey" in notes                               # the reader's conversion
    assert frames["region"].iloc[0] != "whole frame"
    assert frames["region_x0"].iloc[0] > 0   # the cropped area
    assert "colour_to_grey" in read_summary(tmp_path / "o")["notes"]
    doc = json.loads((tmp_path / "o/summary.json").read_text())
    assert any("colour_to_grey" in n for n in doc["notes"]["sub007_HC.png"])


def test_measure_has_no_subject_pattern_of_its_own(monkeypatch):
    """Subject ids in predict come from readers.subjects.DEFAULT_SUBJECT_PATTERN (or params), never
    from a regex written again in measure/."""
    for path in (REPO / "src/fhbiometry/measure").glob("*.py"):
        assert "?P<subject>" not in path.read_text(), f"{path.name} writes its own subject pattern"
    from fhbiometry.readers import media, subjects
    assert media.DEFAULT_SUBJECT_PATTERN == subjects.DEFAULT_SUBJECT_PATTERN
    assert "rd.DEFAULT_SUBJECT_PATTERN" in (REPO / "src/fhbiometry/measure/api.py").read_text()


def test_generated_non_heads_are_what_they_say():
    import yaml

    from fhbiometry.measure.probe import GENERATED, SIZE, generated_frames

    params = yaml.safe_load(Path(PARAMS).read_text())
    made = {kind: generated_frames(kind, 2, params) for kind in GENERATED}
    assert all(f.shape == (2, *SIZE) and f.dtype == np.uint8 for f in made.values())
    assert not made["blank"].any()
    assert len(np.unique(made["grey"][0])) == 1
    assert made["gaussian_noise"].std() > 30
    assert made["speckle_noise"].std() > 20
    assert made["text_screen"].max() >= 150
    assert (made["text_screen"] == 0).mean() > 0.8
    assert made["quarter_head"].std() > 10
    np.testing.assert_array_equal(generated_frames("gaussian_noise", 2, params), made["gaussian_noise"])


def test_probe_totals_fail_when_a_cine_is_measured():
    from fhbiometry.measure.probe import probe_totals

    table = pd.DataFrame({"frames": [30, 10], "accepted": [0, 0], "status": ["no accepted frame"] * 2})
    assert probe_totals(table) == {"frames": 40, "rejected_share": 1.0, "cines_measured": 0, "unreadable": 0,
                                   "goal_met": True}
    table.loc[1, ["accepted", "status"]] = [1, "measured"]
    totals = probe_totals(table)
    assert totals["rejected_share"] == pytest.approx(39 / 40)
    assert totals["cines_measured"] == 1
    assert not totals["goal_met"]                  # 97.5 % rejected, but a cine got a measurement


def test_reject_probe_command(case, tmp_path, capsys):
    from fhbiometry.measure.probe import GENERATED, PYDICOM_EXAMPLES

    code = main(["reject-probe", "--model", str(case["model"]), "--params", PARAMS, "--frames", "2",
                 "--out", str(tmp_path / "p")])
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "p/probe.csv")
    totals = json.loads((tmp_path / "p/probe.json").read_text())
    assert list(table["input"]) == [*PYDICOM_EXAMPLES, *(f"{k}.dcm" for k in GENERATED)]
    assert (table.set_index("kind").loc[list(GENERATED), "frames"] == 2).all()
    assert table.loc[table["input"] == "examples_ybr_color.dcm", "frames"].item() == 30
    assert totals["frames"] == table["frames"].sum()
    assert code == (0 if totals["goal_met"] else 1)
    assert "non-head frame(s)" in out

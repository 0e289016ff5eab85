"""`fhbiometry predict --sr`: one Comprehensive SR per study that dciodvfy accepts, dcmtk's dsr2xml
parses and pydicom reads back with the values of summary.csv; the codes of issue 21; a cine with
no accepted frame; the synthetic DICOM cines are valid US Multi-frame Image objects."""
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pydicom
import pytest

from clinical_helpers import clinical_inputs, dciodvfy_errors, missing, predict_args, require
from fhbiometry.cli import main
from fhbiometry.clinical import codes as cc
from fhbiometry.clinical.sr import describe_model, read_sr, write_srs
from predict_helpers import head_frames

pytestmark = pytest.mark.slow   # module fixtures (torchrun, an export, a server, a browser) over a second

torch = pytest.importorskip("torch")
CODE_OF = {"bpd_mm": "11820-8", "ofd_mm": "11851-3", "hc_mm": "11984-2", "cephalic_index": "11823-2"}
GA_OF = {"11902-4": "ga_bpd_weeks", "11932-1": "ga_hc_weeks"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("clinical_sr")
    inputs = clinical_inputs(root / "in")
    out = root / "out"
    assert main(predict_args(root, [root / "in"], out, "--sr", "--confidence-threshold", "0")) == 0
    summary = pd.read_csv(out / "summary.csv", dtype={"cine_id": str, "subject_id": str})
    frames = pd.read_csv(out / "frames.csv", dtype={"cine_id": str, "subject_id": str})
    return {"root": root, "inputs": inputs, "out": out, "summary": summary, "frames": frames}


def test_codes_are_the_ones_of_the_standard():
    """Each concept is pydicom's (PS3.16) and has the value the issue names (HC is 11984-2)."""
    for name, (value, scheme, meaning) in cc.EXPECTED.items():
        code = getattr(cc, name)
        assert (code.value, code.scheme_designator, code.meaning) == (value, scheme, meaning), name
    assert cc.HC.value != "11779-6"


def test_one_sr_per_study_valid_for_dciodvfy_and_dsr2xml(run):
    paths = sorted((run["out"] / "sr").glob("*.dcm"))
    assert [p.name for p in paths] == sorted(["cine_clip.mp4.dcm", "cine_sub002.dcm",
                                              f"study_{pydicom.dcmread(run['inputs']['dicom']).StudyInstanceUID}.dcm"])
    dsr2xml = require("dsr2xml")
    for path in paths:
        assert dciodvfy_errors(path) == [], path.name
        xml = subprocess.run([dsr2xml, str(path)], capture_output=True, text=True, timeout=60)
        assert xml.returncode == 0, xml.stderr
        assert "11820-8" in xml.stdout
        assert "Biparietal Diameter" in xml.stdout
        ET.fromstring(xml.stdout)                      # well-formed XML


def test_sr_values_are_summary_csv(run):
    """Read back with pydicom: BPD, OFD, HC, CI and both GAs as in summary.csv, median, in mm / %."""
    for row in run["summary"].to_dict("records"):
        name = next((run["out"] / "sr").glob("study_*.dcm")) if row["cine_id"] == "cine.dcm" else \
            run["out"] / "sr" / f"cine_{row['cine_id']}.dcm"
        sr = read_sr(name)
        items = {m["code"]: m for m in sr["measurements"] if "equation" not in m}
        for column, code in CODE_OF.items():
            assert items[code]["value"] == pytest.approx(row[column], abs=1e-3), (row["cine_id"], column)
            assert items[code]["derivation"] == cc.MEDIAN.value
            assert items[code]["unit"] == ("%" if column == "cephalic_index" else "mm")
        ages = {m["equation"]: m["value"] for m in sr["measurements"] if "equation" in m}
        assert set(ages) == set(GA_OF)
        for equation, column in GA_OF.items():
            assert ages[equation] == pytest.approx(row[column], abs=1e-3)
        assert any(f"cine {row['cine_id']}: median of the {row['n_used']} of {row['n_frames']}" in c
                   for c in sr["comments"])


def test_sr_copies_patient_and_study_and_references_the_frames_used(run):
    source = pydicom.dcmread(run["inputs"]["dicom"])
    path = next((run["out"] / "sr").glob("study_*.dcm"))
    ds = pydicom.dcmread(path)
    for key in ("PatientID", "PatientName", "StudyInstanceUID", "StudyID", "AccessionNumber"):
        assert ds[key].value == source[key].value, key
    assert ds.Modality == "SR"
    assert ds.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    assert ds.SOPInstanceUID != source.SOPInstanceUID
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    used = run["frames"].query("cine_id == 'cine.dcm' and accepted")["frame_index"].to_numpy() + 1
    bpd = next(m for m in read_sr(path)["measurements"] if m["code"] == cc.BPD.value)
    assert bpd["images"] == {str(source.SOPInstanceUID): [int(i) for i in used]}
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert evidence[0].ReferencedSOPClassUID == source.SOPClassUID
    observer = {str(i.ConceptNameCodeSequence[0].CodeValue): i for i in ds.ContentSequence}
    assert observer["121016"].TextValue == describe_model(run["root"] / "heatmap.safetensors", 0, "").sha256
    assert observer["111003"].TextValue                       # algorithm version


def test_interval_and_status_columns_are_carried(run, tmp_path):
    """Where the summary has the trust issue's columns, the SR has the interval, and a cine whose
    status is 'no accepted frame' has no measurement item."""
    summary = run["summary"].copy()
    for name in ("bpd", "ofd", "hc"):
        summary[f"{name}_mm_lo"] = summary[f"{name}_mm"] - 1.25
        summary[f"{name}_mm_hi"] = summary[f"{name}_mm"] + 2.5
    summary["status"] = ["measured", "no accepted frame", "measured"]
    sources = {"cine.dcm": run["inputs"]["dicom"], "clip.mp4": run["inputs"]["video"],
               "stills/sub002_HC.png": run["inputs"]["still1"], "stills/sub002_2HC.png": run["inputs"]["still2"]}
    device = describe_model(run["root"] / "heatmap.safetensors", 0.0, "test")
    paths = {p.name: p for p in write_srs(run["frames"], summary, sources, tmp_path, device)}
    bpd = next(m for m in read_sr(next(p for n, p in paths.items() if n.startswith("study_")))["measurements"]
               if m["code"] == cc.BPD.value)
    assert (bpd["lo"], bpd["hi"]) == pytest.approx((summary["bpd_mm_lo"][0], summary["bpd_mm_hi"][0]), abs=1e-3)
    clip = read_sr(paths["cine_clip.mp4.dcm"])
    assert clip["measurements"] == []
    assert "no accepted frame" in clip["comments"][0]
    for path in paths.values():
        assert dciodvfy_errors(path) == [], path.name


def test_a_cine_with_no_accepted_frame_gets_an_sr_that_says_so(run, tmp_path):
    out = tmp_path / "out"
    assert main(predict_args(run["root"], [run["inputs"]["dicom"]], out, "--sr", "--confidence-threshold", "2")) == 0
    (path,) = (out / "sr").glob("*.dcm")
    sr = read_sr(path)
    assert sr["measurements"] == []
    assert len(sr["comments"]) == 1
    assert "no accepted frame" in sr["comments"][0]
    assert "4 confidence < 2.000" in sr["comments"][0]
    assert "no measurement" in sr["comments"][0]
    assert dciodvfy_errors(path) == []


def test_synthetic_dicom_cine_is_a_valid_us_multiframe_image(tmp_path):
    from fhbiometry.synth.writers import write_dicom

    path = write_dicom(tmp_path / "sub001.dcm", head_frames(3), 0.2, "sub001", 0)
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert ds.StudyDate == ""
    assert ds.PatientSex == ""
    again = write_dicom(tmp_path / "again.dcm", head_frames(3), 0.2, "sub001", 0)
    assert again.read_bytes() == path.read_bytes()
    assert np.array_equal(ds.pixel_array, head_frames(3))


def test_a_missing_tool_skips_or_fails_under_fhb_require_tools(monkeypatch):
    monkeypatch.delenv("FHB_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install dcmtk"):
        missing("dsr2xml", "dcmtk")
    monkeypatch.setenv("FHB_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="FHB_REQUIRE_TOOLS=1"):
        missing("dsr2xml", "dcmtk")


def test_a_refinement_names_its_coarse_model_in_the_sr(run, tmp_path):
    """A refinement's measurement depends on two checkpoints: the SR names the coarse one too
    (file and SHA-256 among the algorithm's parameters), and the device UID tells the pair apart
    from the refinement alone."""
    checkpoint = run["root"] / "heatmap.safetensors"
    coarse = tmp_path / "coarse.safetensors"
    coarse.write_bytes(checkpoint.read_bytes() + b" ")
    device = describe_model(checkpoint, 0.0, "test", coarse)
    assert device.coarse_file == "coarse.safetensors"
    assert device.uid != describe_model(checkpoint, 0.0, "test").uid
    sources = {"cine.dcm": run["inputs"]["dicom"]}
    frames = run["frames"].query("cine_id == 'cine.dcm'")
    summary = run["summary"].query("cine_id == 'cine.dcm'")
    (path,) = write_srs(frames, summary, sources, tmp_path / "sr", device)
    texts = [str(item.TextValue) for item in pydicom.dcmread(path).ContentSequence if "TextValue" in item]
    assert f"coarse model coarse.safetensors sha256 {device.coarse_sha256} (its heads chose the crops)" in texts
    assert dciodvfy_errors(path) == []

"""Tests for fhbiometry.data.extract (stage extract_frames) on tiny written files and on HC18."""
import runpy
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fhbiometry.data import extract as ex
from fhbiometry.core.geometry import COORD_COLUMNS, CSV_COLUMNS, diameters, ellipse_landmarks
from fhbiometry.readers.media import InputError
from fhbiometry.core.store import load_npz
from fixtures_io import (HC18, data_params, draw_ellipse_outline, gradient, write_dicom,
                         write_image, write_json, write_table, write_video)

REF = [f"ref_{c}" for c in COORD_COLUMNS]
H, W = 48, 64
ELLIPSE = (32.0, 24.0, 20.0, 14.0, np.radians(10))


def label(k):
    """A distinct label row for test frame k."""
    return tuple(float(v + k) for v in (10, 20, 50, 22, 30, 10, 31, 35))


@pytest.fixture
def raw(tmp_path):
    """A mixed raw folder: multi-/single-frame DICOM, video + sidecar, PNGs, annotation, tables."""
    r = tmp_path / "raw"
    cine = np.stack([gradient(H, W, k) for k in range(3)])
    write_dicom(r / "dicom" / "sub001_cine.dcm", cine, spacing=(0.2, 0.2), patient_id="sub001")
    write_dicom(r / "dicom" / "sub002_one.dcm", cine[:1], spacing=(0.25, 0.25))
    write_video(r / "video" / "sub003_clip.mp4", cine[:2])
    write_json(r / "video" / "sub003_clip.json", {"pixel_spacing_mm": 0.3})
    write_image(r / "stills" / "sub004_HC.png", gradient(H, W, 5))
    write_json(r / "stills" / "sub004_HC.json", {"pixel_spacing_mm": 0.15, "subject_id": "S4"})
    write_image(r / "stills" / "sub004_2HC.png", gradient(H, W, 6))
    write_image(r / "annotations" / "sub004_HC_Annotation.png", draw_ellipse_outline(H, W, *ELLIPSE))
    (r / "pixel_size.csv").write_text("filename,pixel size(mm)\nsub004_2HC.png,0.12\n"
                                      "sub004_HC.png,0.99\n")
    write_table(r / "landmarks.csv", [
        ("sub001_cine.dcm", 0, *label(0)), ("sub001_cine.dcm", 1, *label(1)),
        ("sub002_one.dcm", 0, *label(2)),
        ("sub003_clip.mp4", 0, *label(3)), ("sub003_clip.mp4", 1, *label(4)),
        ("sub004_HC.png", 0, *label(5)), ("stills/sub004_2HC.png", 0, *label(6))])
    return r


def params(raw, **kw):
    return data_params(raw, pixel_size_csv="pixel_size.csv", **kw)


def row(manifest, frame_id):
    return manifest.set_index("frame_id").loc[frame_id]


def test_mixed_folder(raw):
    res = ex.extract(params(raw), progress=False)
    m = res.manifest
    assert list(m.columns) == list(ex.MANIFEST_COLUMNS)
    assert list(m["frame_id"]) == ["sub001_cine_f000", "sub001_cine_f001", "sub001_cine_f002",
                                   "sub002_one", "sub003_clip_f000", "sub003_clip_f001",
                                   "sub004_2HC", "sub004_HC"]
    assert sorted(res.frames) == list(m["frame_id"])
    assert all(f.dtype == np.uint8 and f.shape == (H, W) for f in res.frames.values())
    assert list(m["subject_id"]) == ["sub001"] * 3 + ["sub002", "sub003", "sub003", "sub004", "S4"]
    assert list(m["spacing_source"]) == ["dicom:PixelSpacing"] * 4 + ["sidecar"] * 2 + [
        "pixel_size_csv", "sidecar"]
    assert list(m["spacing_mm"]) == pytest.approx([0.2] * 3 + [0.25, 0.3, 0.3, 0.12, 0.15])
    assert list(m["frame_index"]) == [0, 1, 2, 0, 0, 1, 0, 0]
    assert row(m, "sub003_clip_f001")["source_file"] == "video/sub003_clip.mp4"
    assert list(m["label_status"]) == ["ok", "ok", "missing", "ok", "ok", "ok", "ok", "ok"]
    assert list(m["dup_count"]) == [1, 1, 0, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(row(m, "sub003_clip_f001")[list(COORD_COLUMNS)].to_numpy(float),
                                  label(4))
    assert row(m, "sub001_cine_f002")[list(COORD_COLUMNS)].isna().all()
    # ref_* only where an annotation exists, equal to the drawn ellipse within 1 px
    assert m[REF[0]].notna().tolist() == [False] * 7 + [True]
    np.testing.assert_allclose(row(m, "sub004_HC")[REF].to_numpy(float).reshape(4, 2),
                               ellipse_landmarks(*ELLIPSE), atol=1.0)
    np.testing.assert_array_equal(res.frames["sub001_cine_f001"], gradient(H, W, 1))
    assert len(res.issues) == 0


def test_outputs_identical_bytes(raw, tmp_path):
    outs = []
    for name in ("a", "b"):
        ex.write_outputs(ex.extract(params(raw), progress=False), tmp_path / name)
        outs.append({f: (tmp_path / name / f).read_bytes()
                     for f in ("frames.npz", "manifest.csv", "issues.csv")})
    assert outs[0] == outs[1]
    frames = load_npz(tmp_path / "a" / "frames.npz")
    assert sorted(frames) == sorted(pd.read_csv(tmp_path / "a" / "manifest.csv")["frame_id"])
    text = (tmp_path / "a" / "manifest.csv").read_text()
    assert "sub001_cine_f000,sub001,dicom,dicom/sub001_cine.dcm,0,64,48,0.2,dicom:PixelSpacing,ok,1," \
           "10.000,20.000," in text
    assert (tmp_path / "a" / "issues.csv").read_text() == "file,row,problem,action\n"


def test_ellipse_label_source(raw):
    res = ex.extract(params(raw, label_source="ellipse"), progress=False)
    m = res.manifest.set_index("frame_id")
    assert m.loc["sub004_HC", "label_status"] == "ok"
    np.testing.assert_array_equal(m.loc["sub004_HC", list(COORD_COLUMNS)].to_numpy(float),
                                  m.loc["sub004_HC", REF].to_numpy(float))
    assert (m.drop(index="sub004_HC")["label_status"] == "missing").all()
    assert list(m["dup_count"]) == [0] * 7 + [1]
    # the landmark table is still read, as a reference (csv_*), for every frame it names
    np.testing.assert_array_equal(m.loc["sub004_HC", list(CSV_COLUMNS)].to_numpy(float), label(5))
    np.testing.assert_array_equal(m.loc["sub001_cine_f001", list(CSV_COLUMNS)].to_numpy(float), label(1))


def test_ellipse_source_table_problems_are_recorded_never_fatal(raw):
    table = (raw / "landmarks.csv").read_text().splitlines()
    table.append("missing_file.png,0,1,2,3,4,5,6,7,8")
    table.append("sub001_cine.dcm,2,1,2,x,4,5,6,7,8")
    (raw / "landmarks.csv").write_text("\n".join(table) + "\n")
    res = ex.extract(params(raw, label_source="ellipse"), progress=False)  # on_bad_input: fail
    assert (res.issues["action"] == "reference row skipped").sum() == 1
    assert "missing_file.png" in res.issues["problem"].iloc[0]
    m = res.manifest.set_index("frame_id")
    assert np.isnan(m.loc["sub001_cine_f002", "csv_ofd_2_x"])  # the non-numeric value, not guessed
    assert m.loc["sub001_cine_f002", "csv_ofd_1_x"] == 1.0
    with pytest.raises(InputError, match=r"row 10: column .ofd_2_x.: .x. is not a number"):
        ex.extract(params(raw), progress=False)  # the same table as the label source: fatal


def test_no_spacing(raw):
    (raw / "stills" / "sub004_HC.json").unlink()
    (raw / "pixel_size.csv").write_text("filename,pixel size(mm)\n")
    with pytest.raises(InputError) as info:
        ex.extract(params(raw), progress=False)
    msg = str(info.value)
    assert "sub004_2HC.png" in msg
    assert "no pixel spacing" in msg
    assert 'sub004_2HC.json {"pixel_spacing_mm": ...}' in msg
    assert "data.default_spacing_mm" in msg
    res = ex.extract(params(raw, default_spacing_mm=0.5), progress=False)
    assert row(res.manifest, "sub004_2HC")["spacing_source"] == "default"
    assert row(res.manifest, "sub004_2HC")["spacing_mm"] == 0.5
    res = ex.extract(params(raw, on_bad_input="exclude"), progress=False)
    assert "sub004_2HC" not in set(res.manifest["frame_id"])
    issues = res.issues
    assert issues.loc[0, "file"] == "stills/sub004_2HC.png"
    assert issues.loc[0, "problem"] == "no pixel spacing"
    assert issues.loc[0, "action"] == "file skipped"
    # its label row is not dropped silently either
    assert (issues.loc[1, "file"], issues.loc[1, "row"]) == ("landmarks.csv", 8)
    assert "excluded" in issues.loc[1, "problem"]


def test_image_not_found(raw):
    write_table(raw / "landmarks.csv", [("sub004_HC.png", 0, *label(0)),
                                        ("sub099_HC.png", 0, *label(1))])
    with pytest.raises(InputError, match=r"landmarks\.csv, row 3: image not found: 'sub099_HC.png'"):
        ex.extract(params(raw), progress=False)
    res = ex.extract(params(raw, on_bad_input="exclude"), progress=False)
    assert res.issues.to_dict("records") == [{
        "file": "landmarks.csv", "row": 3,
        "problem": "image not found: 'sub099_HC.png' is not under data.raw_dir", "action": "row skipped"}]


def test_bad_coordinate(raw):
    bad = list(label(0))
    bad[3] = "n/a"
    write_table(raw / "landmarks.csv", [("sub004_HC.png", 0, *bad)])
    with pytest.raises(InputError, match=r"landmarks\.csv, row 2: column 'ofd_2_y': 'n/a' is not a"):
        ex.extract(params(raw), progress=False)
    res = ex.extract(params(raw, on_bad_input="exclude"), progress=False)
    r = row(res.manifest, "sub004_HC")
    assert r["label_status"] == "row 2: column 'ofd_2_y': 'n/a' is not a number"
    assert np.isnan(r["ofd_2_y"])
    assert r["ofd_2_x"] == bad[2]
    assert len(res.issues) == 0  # the frame exists: recorded in label_status


def test_missing_columns(raw):
    with pytest.raises(InputError, match=r"landmarks\.csv: missing column\(s\): img \(data.columns"
                                         r".image\); the table has: image_name"):
        ex.extract(params(raw, columns={**data_params(raw)["columns"], "image": "img"}),
                   progress=False)


def test_unreadable_files(raw):
    (raw / "stills" / "sub004_2HC.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    write_dicom(raw / "dicom" / "sub005_sr.dcm", gradient(H, W)[None], pixel_data=False)
    (raw / "video" / "sub006_bad.avi").write_bytes(b"RIFF" + b"\x00" * 64)
    with pytest.raises(InputError, match=r"sub005_sr\.dcm.*no pixel data"):
        ex.extract(params(raw), progress=False)
    res = ex.extract(params(raw, on_bad_input="exclude"), progress=False)
    issues = res.issues.set_index("file")
    assert "no pixel data" in issues.loc["dicom/sub005_sr.dcm", "problem"]
    assert "cannot read image" in issues.loc["stills/sub004_2HC.png", "problem"]
    assert "video" in issues.loc["video/sub006_bad.avi", "problem"]
    assert (res.issues["action"] == "file skipped").sum() == 3
    assert len(res.manifest) == 7


def test_frame_out_of_range_and_duplicates(raw):
    write_table(raw / "landmarks.csv", [
        ("sub002_one.dcm", 0, *label(0)), ("sub002_one.dcm", 0, *label(1)),
        ("sub001_cine.dcm", 5, *label(2))])
    with pytest.raises(InputError, match=r"landmarks\.csv, row 4: frame index out of range: "
                                         r"frame 5 is not in dicom/sub001_cine\.dcm \(3 frame"):
        ex.extract(params(raw), progress=False)
    res = ex.extract(params(raw, on_bad_input="exclude"), progress=False)
    r = row(res.manifest, "sub002_one")
    assert r["dup_count"] == 2
    np.testing.assert_array_equal(r[list(COORD_COLUMNS)].to_numpy(float), label(0))  # first kept
    assert list(res.issues["row"]) == [4]


def test_no_frame_column(raw):
    cols = {**data_params(raw)["columns"], "frame": ""}
    write_table(raw / "landmarks.csv", [("sub004_HC.png", *label(0)), ("sub001_cine.dcm", *label(1))],
                header=("image_name", *COORD_COLUMNS))
    m = ex.extract(params(raw, columns=cols), progress=False).manifest
    assert row(m, "sub004_HC")["label_status"] == "ok"
    assert list(m[m["source_file"] == "dicom/sub001_cine.dcm"]["label_status"]) == [
        "ok", "missing", "missing"]


def test_stage_entry_point(raw, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(raw, repo / "raw")
    root = Path(__file__).resolve().parents[1]
    full = yaml.safe_load((root / "params.yaml").read_text())   # the whole file is validated
    full["data"] = params("raw")
    (repo / "params.yaml").write_text(yaml.safe_dump(full))
    monkeypatch.chdir(repo)
    stage = root / "stages" / "extract_frames.py"
    runpy.run_path(str(stage), run_name="__main__")
    m = pd.read_csv(repo / "data/frames/manifest.csv", dtype={"frame_id": str})
    assert len(m) == 8
    assert (repo / "data/frames/issues.csv").exists()


# ----------------------------------------------------------------------------- HC18 (real data)

HC18_COLUMNS = {"image": "image_name", "frame": "", **{c: c for c in COORD_COLUMNS}}


@pytest.fixture(scope="module")
def hc18():
    if not (HC18 / "images").is_dir():
        pytest.skip(f"real data set not present at {HC18} (../shared/datasets/hc18-landmarks)")
    base = data_params(HC18, landmarks_csv="role_challenge_dataset_ground_truth.csv",
                       columns=HC18_COLUMNS, pixel_size_csv="pixel_size.csv")
    csv = ex.extract(base, progress=False)
    ellipse = ex.extract({**base, "label_source": "ellipse"}, progress=False)
    return csv, ellipse


@pytest.mark.slow
def test_hc18_csv(hc18):
    res = hc18[0]
    m = res.manifest
    assert len(m) == 622
    assert len(res.frames) == 622
    assert len(res.issues) == 0
    assert (m["spacing_source"] == "pixel_size_csv").all()
    ps = pd.read_csv(HC18 / "pixel_size.csv")
    np.testing.assert_allclose(m["spacing_mm"], ps["pixel size(mm)"])  # same (sorted) order
    assert m[REF].notna().all().all()
    assert (m["label_status"] == "ok").all()
    assert (m["dup_count"] == 1).all()
    table = pd.read_csv(HC18 / "role_challenge_dataset_ground_truth.csv")
    np.testing.assert_array_equal(m[list(COORD_COLUMNS)].to_numpy(float),
                                  table[list(COORD_COLUMNS)].to_numpy(float))
    s = m.set_index("frame_id")["subject_id"]
    assert (s["014_HC"], s["014_2HC"], s["014_3HC"]) == ("014", "014", "014")
    assert m["subject_id"].nunique() < 622
    f = res.frames["000_HC"]
    assert f.dtype == np.uint8
    assert f.shape == (540, 800)


@pytest.mark.slow
def test_hc18_ellipse(hc18):
    csv, ell = hc18
    m = ell.manifest
    assert len(m) == 622
    assert (m["label_status"] == "ok").all()
    lab = diameters(m[list(COORD_COLUMNS)].to_numpy(float))
    ref = diameters(csv.manifest[REF].to_numpy(float))
    np.testing.assert_allclose(lab, ref, atol=1e-9)
    assert (lab[:, 0] >= lab[:, 1]).all()  # OFD = major axis
    # the fitted ellipse reproduces HC18's published head circumference (Ramanujan)
    a, b = lab[:, 0] / 2 * m["spacing_mm"].to_numpy(), lab[:, 1] / 2 * m["spacing_mm"].to_numpy()
    hc = np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b)))
    published = pd.read_csv(HC18 / "pixel_size.csv")["head circumference (mm)"].to_numpy()
    assert np.abs(hc - published).max() < 0.2


def test_rows_sorted_by_frame_id_not_path(raw):
    write_image(raw / "zz" / "sub000_x.png", gradient(H, W, 7))
    write_json(raw / "zz" / "sub000_x.json", {"pixel_spacing_mm": 0.1})
    m = ex.extract(params(raw), progress=False).manifest
    assert m["frame_id"].iloc[0] == "sub000_x"
    assert m["source_file"].iloc[0] == "zz/sub000_x.png"
    assert list(m["frame_id"]) == sorted(m["frame_id"])


def test_bad_pixel_size_row(raw):
    (raw / "pixel_size.csv").write_text("filename,pixel size(mm)\nsub004_2HC.png,-1\n")
    with pytest.raises(InputError, match=r"pixel_size\.csv, row 2: column 'pixel size\(mm\)'"):
        ex.extract(params(raw), progress=False)
    res = ex.extract(params(raw, on_bad_input="exclude", default_spacing_mm=0.4), progress=False)
    assert res.issues.to_dict("records")[0]["file"] == "pixel_size.csv"
    assert row(res.manifest, "sub004_2HC")["spacing_source"] == "default"


def test_bad_annotation(raw):
    write_image(raw / "annotations" / "sub004_HC_Annotation.png", np.zeros((H, W), np.uint8))
    with pytest.raises(InputError, match=r"sub004_HC_Annotation\.png.*no ellipse"):
        ex.extract(params(raw), progress=False)
    res = ex.extract(params(raw, on_bad_input="exclude"), progress=False)  # csv labels: ref_* empty
    assert row(res.manifest, "sub004_HC")["label_status"] == "ok"
    assert row(res.manifest, "sub004_HC")[REF].isna().all()
    assert res.issues.to_dict("records")[0]["file"] == "annotations/sub004_HC_Annotation.png"
    assert res.issues.to_dict("records")[0]["action"] == "ref_* left empty"
    res = ex.extract(params(raw, on_bad_input="exclude", label_source="ellipse"), progress=False)
    assert row(res.manifest, "sub004_HC")["label_status"].startswith("no ellipse could be fitted")
    assert len(res.issues) == 0


# ----------------------------------------------------------------------------- issue 18 probe

def test_data_config_defaults_are_the_schemas():
    """extract.DataConfig declares no default of its own: each is schema.Data's."""
    import dataclasses

    from fhbiometry.config.schema import Data

    fields = {f.name: f for f in dataclasses.fields(ex.DataConfig)}
    assert set(fields) == set(Data.model_fields)
    cfg = ex.DataConfig(raw_dir=Path("x"))
    for name, info in Data.model_fields.items():
        if name == "raw_dir":
            continue
        default = info.get_default(call_default_factory=True)
        default = default.model_dump() if hasattr(default, "model_dump") else default
        assert getattr(cfg, name) == default, name


def test_unicode_forms_of_a_name_match(tmp_path):
    """A table naming an image in NFD matches the file named in NFC (and the pixel-size table)."""
    import unicodedata

    raw = tmp_path / "raw"
    nfc, nfd = (unicodedata.normalize(f, "sub001_café.png") for f in ("NFC", "NFD"))
    write_image(raw / nfc, gradient(H, W))
    write_table(raw / "landmarks.csv", [(nfd, 0, *label(0))])
    (raw / "px.csv").write_text(f"filename,pixel size(mm)\n{nfd},0.2\n", encoding="utf-8")
    res = ex.extract(data_params(raw, pixel_size_csv="px.csv"), progress=False)
    row = res.manifest.iloc[0]
    assert row["label_status"] == "ok"
    assert row["spacing_source"] == "pixel_size_csv"


def test_semicolon_table_is_named(tmp_path):
    raw = tmp_path / "raw"
    write_image(raw / "sub001_a.png", gradient(H, W))
    write_json(raw / "sub001_a.json", {"pixel_spacing_mm": 0.2})
    header = ";".join(("image_name", "frame") + COORD_COLUMNS)
    (raw / "landmarks.csv").write_text(header + "\nsub001_a.png;0;" + ";".join(["10,5"] * 8) + "\n")
    for mode in ("fail", "exclude"):
        with pytest.raises(InputError, match="missing column.*looks semicolon-separated.*comma-separated"):
            ex.extract(data_params(raw, on_bad_input=mode), progress=False)
    (raw / "px.csv").write_text("filename;pixel size(mm)\nsub001_a.png;0,2\n")
    with pytest.raises(InputError, match="px.csv: missing column.*looks semicolon-separated"):
        ex.extract(data_params(raw, pixel_size_csv="px.csv", label_source="ellipse"), progress=False)


def test_stop_message_names_exclude_only_in_fail_mode():
    err = InputError("a.png", "has the same file name", "rename one")
    assert "on_bad_input: exclude" in ex.stop_message(err, "fail")
    assert "on_bad_input: exclude" not in ex.stop_message(err, "exclude")


def test_table_row_fix_names_exclude_only_in_fail_mode(tmp_path, caplog):
    import logging

    raw = tmp_path / "raw"
    write_image(raw / "sub001_a.png", gradient(H, W))
    write_json(raw / "sub001_a.json", {"pixel_spacing_mm": 0.2})
    write_table(raw / "landmarks.csv", [("sub009.png", 0, *label(0))])
    with pytest.raises(InputError, match="or set data.on_bad_input: exclude"):
        ex.extract(data_params(raw), progress=False)
    with caplog.at_level(logging.WARNING):
        ex.extract(data_params(raw, on_bad_input="exclude"), progress=False)
    assert "image not found" in caplog.text
    assert "on_bad_input: exclude" not in caplog.text


def test_subject_ids_differing_by_case_are_one_subject(tmp_path):
    raw = tmp_path / "raw"
    for name in ("P001_HC.png", "p001_2HC.png", "p002_HC.png"):
        write_image(raw / name, gradient(H, W))
        write_json((raw / name).with_suffix(".json"), {"pixel_spacing_mm": 0.2})
    write_table(raw / "landmarks.csv", [])
    res = ex.extract(data_params(raw, subject_pattern=r"^(?P<subject>[A-Za-z]*\d+)"), progress=False)
    subjects = res.manifest.set_index("frame_id")["subject_id"].to_dict()
    assert subjects == {"P001_HC": "P001", "p001_2HC": "P001", "p002_HC": "p002"}
    merged = res.issues[res.issues["problem"].str.startswith("subject_ids_merged")]
    assert list(merged["file"]) == ["p001_2HC.png"]


def test_hidden_files_are_recorded(tmp_path):
    from PIL import Image

    raw = tmp_path / "raw"
    write_image(raw / "sub001_a.png", gradient(H, W))
    write_json(raw / "sub001_a.json", {"pixel_spacing_mm": 0.2})
    Image.fromarray(gradient(H, W)).save(raw / "..png", format="PNG")
    write_image(raw / ".a.png", gradient(H, W))
    (raw / ".DS_Store").write_bytes(b"x")
    write_table(raw / "landmarks.csv", [])
    res = ex.extract(data_params(raw), progress=False)
    assert list(res.manifest["frame_id"]) == ["sub001_a"]
    hidden = res.issues[res.issues["problem"].str.startswith("hidden_file_skipped")]
    assert list(hidden["file"]) == ["..png", ".a.png"]


def test_write_csv_neutralises_formulas(tmp_path):
    """A PatientID '=HYPERLINK(...)' reaches the manifest as text a spreadsheet does not run."""
    from fhbiometry.core.store import neutralise_cell

    raw = tmp_path / "raw"
    write_dicom(raw / "sub001_a.dcm", gradient(H, W)[None], patient_id='=HYPERLINK("http://x","y")')
    write_table(raw / "landmarks.csv", [])
    paths = ex.write_outputs(ex.extract(data_params(raw), progress=False), tmp_path / "out")
    manifest = pd.read_csv(paths["manifest"], dtype=str, keep_default_na=False)
    assert manifest["subject_id"].iat[0] == "'=HYPERLINK(\"http://x\",\"y\")"
    for cell in ("+cmd", "-x", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise_cell(cell) == "'" + cell
    for cell in ("-3.5", "+2", "1e-3", "sub001", "", 5, -1.0):
        assert neutralise_cell(cell) == cell

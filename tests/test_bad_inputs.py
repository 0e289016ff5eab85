"""Every row of docs/bad_inputs.md: a small crafted input, what happens under
``data.on_bad_input: fail`` and under ``exclude``.

Each case writes one good still (``sub001_ok.png``, labelled) and the bad input beside it.
A case either stops under ``fail`` (``fail_match``) or not (the frame is kept, the conversion
or guess recorded as a note); under ``exclude`` the good frame always survives and the issue
row (``problem`` prefix, ``action``) is recorded.
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from fhbiometry.data import extract as ex
from fhbiometry.data.qc import count_input_issues
from fhbiometry.readers.media import ALWAYS_COUNTED, NOTES, InputError
from fixtures_io import (data_params, draw_ellipse_outline, gradient, write_dicom, write_image,
                         write_json, write_png_header, write_table, write_video)

H, W = 24, 32
LABEL = (4.0, 12.0, 28.0, 12.0, 16.0, 4.0, 16.0, 20.0)
SMALL = 1000  # a data.max_image_pixels above the good 32 x 24 frame, below a 48 x 40 one
BIG = gradient(40, 48)


@dataclass
class Case:
    name: str
    build: Callable            # build(raw) writes the bad input under raw
    fail_match: str | None     # regex of the InputError under fail; None: fail does not stop
    problem: str               # expected issues.csv problem prefix (note name or problem text)
    action: str                # expected issues.csv action under exclude
    params: dict = field(default_factory=dict)
    rows: tuple = ()           # extra landmark table rows
    frames: int = 2            # frames in the manifest under fail when it does not stop


def png(raw, name="sub002_x.png", arr=None, spacing=0.2, **sidecar):
    write_image(raw / name, gradient(H, W) if arr is None else arr)
    if spacing is not None or sidecar:
        side = {} if spacing is None else {"pixel_spacing_mm": spacing}
        write_json((raw / name).with_suffix(".json"), {**side, **sidecar})


def dicom(raw, **kw):
    kw.setdefault("spacing", (0.2, 0.2))
    frames = kw.pop("frames", gradient(H, W)[None])
    write_dicom(raw / "sub002_x.dcm", frames, **kw)


def garbage(name, data=b"this is not an image at all" * 4):
    return lambda raw: (raw / name).write_bytes(data)


def truncated_dicom(keep: int):
    """A DICOM cut after ``keep`` bytes (< 0: that many bytes from the end)."""
    def build(raw):
        path = write_dicom(raw / "sub002_x.dcm", gradient(H, W)[None])
        path.write_bytes(path.read_bytes()[:keep])
    return build


def video(raw):
    write_video(raw / "sub002_x.mp4", np.stack([BIG] * 2))
    write_json(raw / "sub002_x.json", {"pixel_spacing_mm": 0.2})


def rgba(raw):
    arr = np.dstack([gradient(H, W)] * 3 + [np.full((H, W), 200, np.uint8)])
    png(raw, arr=arr)


def la(raw):
    png(raw, arr=np.dstack([gradient(H, W), np.full((H, W), 200, np.uint8)]))


def bilevel(raw):
    path = raw / "sub002_x.png"
    Image.fromarray(gradient(H, W) > 100).convert("1").save(path)
    write_json(path.with_suffix(".json"), {"pixel_spacing_mm": 0.2})


def oriented(raw):
    from fixtures_io import write_oriented

    write_oriented(raw / "sub002_x.jpg", gradient(H, W), 6)
    write_json(raw / "sub002_x.json", {"pixel_spacing_mm": 0.2})


def hidden(raw):
    png(raw, name=".sub002_x.png")


TISSUE = {"PhysicalDeltaX": 0.02, "PhysicalDeltaY": 0.02}


def annotation(raw, img):
    write_image(raw / "annotations" / "sub001_ok_Annotation.png", img)


CASES = [
    Case("unreadable image", garbage("sub002_x.png"), "cannot read image", "cannot read image",
         "file skipped"),
    Case("truncated DICOM (cut in the header)", truncated_dicom(400), "truncated before its pixel data",
         "DICOM has no pixel data", "file skipped"),
    Case("truncated DICOM (cut in the pixel data)", truncated_dicom(-300),
         "less than expected.*copy the file again", "DICOM pixel data cannot be decoded", "file skipped"),
    Case("DICOM without pixel data", lambda r: dicom(r, pixel_data=False), "no pixel data",
         "DICOM has no pixel data", "file skipped"),
    Case("undecodable video", garbage("sub002_x.mp4"), "video cannot be decoded",
         "video cannot be decoded", "file skipped"),
    Case("bomb PNG (header 20000 x 20000)", lambda r: write_png_header(r / "sub002_x.png", 20000, 20000),
         r"20000 x 20000 = 400000000 pixels exceeds data.max_image_pixels = 50000000",
         "image too large", "file skipped"),
    Case("huge still", lambda r: png(r, arr=BIG),
         r"48 x 40 = 1920 pixels exceeds data.max_image_pixels = 1000", "image too large",
         "file skipped", params={"max_image_pixels": SMALL}),
    Case("huge DICOM frame", lambda r: dicom(r, frames=BIG[None]), "DICOM frame of 48 x 40",
         "image too large", "file skipped", params={"max_image_pixels": SMALL}),
    Case("huge video frame", video, "video frame of 48 x 40", "image too large", "file skipped",
         params={"max_image_pixels": SMALL}),
    Case("bomb annotation (ellipse labels)",
         lambda r: write_png_header(r / "annotations" / "sub001_ok_Annotation.png", 20000, 20000),
         "annotation image of 20000 x 20000", "image too large", "frame kept",
         params={"label_source": "ellipse"}),
    Case("unreadable annotation (csv labels: reference)",
         lambda r: (r / "annotations").mkdir() or garbage("annotations/sub001_ok_Annotation.png")(r),
         "cannot read annotation image", "cannot read annotation image", "ref_* left empty"),
    Case("annotation without a fittable ellipse", lambda r: annotation(r, np.zeros((H, W), np.uint8)),
         "no ellipse could be fitted", "no ellipse could be fitted", "frame kept",
         params={"label_source": "ellipse"}),
    Case("DICOM Modality not US", lambda r: dicom(r, modality="CT"), None, "modality_not_us", "kept"),
    Case("DICOM without Modality", lambda r: dicom(r, modality=None), None, "modality_not_us", "kept"),
    Case("RGB PNG", lambda r: png(r, arr=np.dstack([gradient(H, W)] * 3)), None, "colour_to_grey",
         "converted"),
    Case("RGBA PNG (alpha channel)", rgba, None, "alpha_dropped", "converted"),
    Case("grey + alpha PNG", la, None, "alpha_dropped", "converted"),
    Case("16-bit PNG", lambda r: png(r, arr=gradient(H, W).astype(np.uint16) * 200), None,
         "rescaled_to_8bit", "converted"),
    Case("1-bit PNG", bilevel, None, "bilevel_to_grey", "converted"),
    Case("RGB DICOM", lambda r: dicom(r, frames=np.stack([gradient(H, W)] * 3, -1)[None],
                                      photometric="RGB"), None, "colour_to_grey", "converted"),
    Case("16-bit DICOM", lambda r: dicom(r, frames=gradient(H, W)[None].astype(np.uint16) * 100,
                                         bits=16), None, "rescaled_to_8bit", "converted"),
    Case("MONOCHROME1 DICOM", lambda r: dicom(r, photometric="MONOCHROME1"), None,
         "monochrome1_kept", "kept as stored"),
    Case("non-square DICOM spacing", lambda r: dicom(r, spacing=(0.3, 0.2)), None,
         "spacing_non_square", "column spacing used"),
    Case("ultrasound region not in cm", lambda r: dicom(r, spacing=None, regions=(0.02, 0.02),
                                                        region_units=4, imager_spacing=(0.2, 0.2)),
         None, "spacing_units_ignored", "ignored"),
    Case("missing spacing", lambda r: png(r, spacing=None), "no pixel spacing", "no pixel spacing",
         "file skipped"),
    Case("missing spacing, default_spacing_mm set", lambda r: png(r, spacing=None), None,
         "spacing_default", "default spacing used", params={"default_spacing_mm": 0.2}),
    Case("unmatched subject (on_unmatched_subject fail)", lambda r: png(r, name="scan_x.png"),
         r"subject unknown: data.subject_pattern .* does not match the file name 'scan_x'",
         "subject unknown", "file skipped"),
    Case("unmatched subject (on_unmatched_subject accept)", lambda r: png(r, name="scan_x.png"),
         None, "subject_from_stem", "stem used as subject", params={"on_unmatched_subject": "accept"}),
    Case("invalid sidecar JSON", lambda r: png(r, spacing=None) or (r / "sub002_x.json").write_text("{"),
         "sidecar is not valid JSON", "sidecar is not valid JSON", "file skipped"),
    Case("bad coordinate in the table", png, r"row 3: column 'ofd_1_x': 'abc' is not a number",
         "'abc' is not a number", "frame kept", rows=(("sub002_x.png", 0, "abc", *LABEL[1:]),)),
    Case("table row naming a missing image", lambda r: None, "image not found: 'sub009.png'",
         "image not found", "row skipped", rows=(("sub009.png", 0, *LABEL),)),
    Case("frame index past the last frame", png, "frame 3 is not in sub002_x.png",
         "frame index out of range", "row skipped", rows=(("sub002_x.png", 3, *LABEL),)),
    Case("JPEG with EXIF orientation 6", oriented, None, "exif_orientation_applied", "rotated"),
    Case("DICOM NumberOfFrames 0, data for 2 frames",
         lambda r: dicom(r, frames=np.stack([gradient(H, W)] * 2), number_of_frames=0), None,
         "frame_count_from_data", "data length trusted", frames=3),
    Case("DICOM NumberOfFrames 2, data for 3 frames",
         lambda r: dicom(r, frames=np.stack([gradient(H, W)] * 3), number_of_frames=2), None,
         "frame_count_from_data", "data length trusted", frames=4),
    Case("DICOM NumberOfFrames 3, data for 2 frames",
         lambda r: dicom(r, frames=np.stack([gradient(H, W)] * 2), number_of_frames=3),
         "pixel data cannot be decoded.*less than expected", "DICOM pixel data cannot be decoded",
         "file skipped"),
    Case("two 2-D tissue ultrasound regions",
         lambda r: dicom(r, spacing=None, regions=[TISSUE, {**TISSUE, "PhysicalDeltaX": 0.04}],
                         imager_spacing=(0.2, 0.2)), None, "regions_unused", "no region spacing"),
    Case("ultrasound region without PhysicalDeltaY",
         lambda r: dicom(r, spacing=None, regions=[{**TISSUE, "PhysicalDeltaY": None}],
                         imager_spacing=(0.2, 0.2)), None, "regions_unused", "no region spacing"),
    Case("negative PixelSpacing component", lambda r: dicom(r, spacing=(-0.2, 0.2)),
         r"PixelSpacing \[-0.2, 0.2\] is not two numbers > 0", "PixelSpacing", "file skipped"),
    Case("hidden file (.sub002_x.png)", hidden, None, "hidden_file_skipped", "file skipped", frames=1),
    Case("subject ids that differ only by case", lambda r: png(r, name="SUB001_x.png"), None,
         "subject_ids_merged", "one subject", frames=2),
    Case("coordinate written 1_0_0", png, r"row 3: column 'ofd_1_x': '1_0_0' is not a number",
         "'1_0_0' is not a number", "frame kept", rows=(("sub002_x.png", 0, "1_0_0", *LABEL[1:]),)),
    Case("bad pixel-size table row",
         lambda r: (r / "px.csv").write_text("filename,pixel size(mm)\nx.png,-1\n"),
         "'-1' is not a positive number", "column 'pixel size(mm)'", "row skipped",
         params={"pixel_size_csv": "px.csv"}),
]


def build(tmp_path, case: Case, mode: str):
    raw = tmp_path / mode
    png(raw, name="sub001_ok.png")
    case.build(raw)
    write_table(raw / "landmarks.csv", [("sub001_ok.png", 0, *LABEL), *case.rows])
    return data_params(raw, **{**case.params, "on_bad_input": mode})


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fail_mode(tmp_path, case):
    params = build(tmp_path, case, "fail")
    if case.fail_match is None:
        res = ex.extract(params, progress=False)
        assert len(res.manifest) == case.frames
        assert (res.issues["problem"].str.split(":").str[0] == case.problem).sum() == 1
        assert set(res.issues["action"]) == {case.action}
    else:
        with pytest.raises(InputError, match=case.fail_match) as info:
            ex.extract(params, progress=False)
        assert "Fix:" in str(info.value)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exclude_mode(tmp_path, case):
    res = ex.extract(build(tmp_path, case, "exclude"), progress=False)
    m = res.manifest.set_index("frame_id")
    assert "sub001_ok" in m.index
    if case.action == "frame kept":  # a bad label of an existing frame: label_status says why
        bad = m[~m["label_status"].isin(["ok", "missing"])]
        assert len(bad) == 1
        assert len(res.issues) == 0
        assert case.problem in bad["label_status"].iat[0]
        return
    issue = res.issues[res.issues["problem"].str.startswith(case.problem)]
    assert len(issue) == 1, res.issues
    assert issue["action"].iat[0] == case.action
    if case.action == "file skipped":
        assert len(m) == 1
    inputs_or_issues = count_input_issues(res.issues)
    if case.problem in NOTES:
        assert inputs_or_issues[1][case.problem] == 1
        assert inputs_or_issues[0] == {}
    else:
        assert sum(inputs_or_issues[0].values()) >= 1
        assert sum(inputs_or_issues[1].values()) == 0


def test_every_note_has_a_case_and_a_docs_row():
    from pathlib import Path

    covered = {c.problem for c in CASES}
    assert set(NOTES) <= covered
    doc = (Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md").read_text()
    for c in CASES:
        assert f"| {c.name} |" in doc, c.name
    for name in NOTES:
        assert f"`{name}`" in doc, name


def test_same_stem_twice_stops_in_both_modes(tmp_path):
    for mode in ("fail", "exclude"):
        raw = tmp_path / mode
        png(raw, name="a/sub001_x.png")
        png(raw, name="b/sub001_x.png")
        write_table(raw / "landmarks.csv", [])
        with pytest.raises(InputError, match="same file name"):
            ex.extract(data_params(raw, on_bad_input=mode), progress=False)


def test_missing_label_and_duplicate_rows_are_kept_for_qc(tmp_path):
    raw = tmp_path / "raw"
    png(raw, name="sub001_ok.png")
    png(raw, name="sub002_x.png")
    write_table(raw / "landmarks.csv", [("sub001_ok.png", 0, *LABEL), ("sub001_ok.png", 0, *LABEL)])
    for mode in ("fail", "exclude"):
        m = ex.extract(data_params(raw, on_bad_input=mode), progress=False).manifest.set_index("frame_id")
        assert m.loc["sub002_x", "label_status"] == "missing"   # qc flag no_label
        assert m.loc["sub001_ok", "dup_count"] == 2              # qc flag duplicate


def test_ellipse_bomb_leaves_other_frames_alone(tmp_path):
    """A too-large annotation does not stop the frames that have a good one."""
    raw = tmp_path / "raw"
    png(raw, name="sub001_ok.png")
    png(raw, name="sub002_x.png")
    annotation(raw, draw_ellipse_outline(H, W, 16, 12, 10, 7, 0.2))
    write_png_header(raw / "annotations" / "sub002_x_Annotation.png", 20000, 20000)
    res = ex.extract(data_params(raw, label_source="ellipse", on_bad_input="exclude"), progress=False)
    status = res.manifest.set_index("frame_id")["label_status"]
    assert status["sub001_ok"] == "ok"
    assert "image too large" in status["sub002_x"]


def test_unmatched_subject_is_recorded_in_manifest_and_qc_summary(tmp_path):
    """Without on_unmatched_subject the stem fallback was silent (a log line only): now the
    manifest says where each subject id came from and metrics/qc.json counts the fallbacks."""
    from fhbiometry.data.qc import compute_flags, summarise

    raw = tmp_path / "raw"
    png(raw, name="sub001_ok.png")
    png(raw, name="scan_a.png")
    png(raw, name="scan_b.png", subject_id="S7")
    write_table(raw / "landmarks.csv", [("sub001_ok.png", 0, *LABEL), ("scan_a.png", 0, *LABEL)])
    with pytest.raises(InputError, match="scan_a.png: subject unknown"):
        ex.extract(data_params(raw), progress=False)
    res = ex.extract(data_params(raw, on_unmatched_subject="accept"), progress=False)
    src = res.manifest.set_index("frame_id")["subject_source"]
    assert src.to_dict() == {"scan_a": "stem", "scan_b": "sidecar", "sub001_ok": "pattern"}
    cfg = {"policy": "exclude", "naming": "anatomical", "max_midpoint_offset": 0.15,
           "max_perpendicular_deviation_deg": 15, "ratio_range": [0.6, 0.95], "reference": "",
           "reference_tolerance_mm": 3.0, "overlay_limit": 0}
    s = summarise(compute_flags(res.manifest, cfg), res.issues, cfg)
    assert s["inputs"]["subject_from_stem"] == 1
    assert s["input_issues"] == {}
    assert sorted(s["inputs"]) == sorted(ALWAYS_COUNTED)
    assert sum(s["inputs"].values()) == 1

"""Tests for fhbiometry.readers.media: frames from DICOM / video / stills, spacing, subject ids."""
import logging

import numpy as np
import pytest

from fhbiometry.readers import media as rd
from fixtures_io import HC18, gradient, write_dicom, write_image, write_json, write_png_header, write_video

from fhbiometry.readers.subjects import DEFAULT_SUBJECT_PATTERN as PATTERN  # noqa: E402


def frames(n=3, h=24, w=32):
    return np.stack([gradient(h, w, offset=i) for i in range(n)])


# ----------------------------------------------------------------------------- DICOM

def test_multi_frame_dicom(tmp_path):
    data = frames(4)
    path = write_dicom(tmp_path / "sub001_cine.dcm", data, spacing=(0.25, 0.25), patient_id="P001")
    out = rd.read_file(path)
    assert out.multi_frame
    assert out.frames.dtype == np.uint8
    np.testing.assert_array_equal(out.frames, data)
    assert out.spacing_mm == pytest.approx(0.25)
    assert out.spacing_source == "dicom:PixelSpacing"
    assert out.patient_id == "P001"
    assert rd.frame_ids("sub001_cine", 4, out.multi_frame) == [
        "sub001_cine_f000", "sub001_cine_f001", "sub001_cine_f002", "sub001_cine_f003"]


def test_single_frame_dicom(tmp_path):
    data = frames(1)
    path = write_dicom(tmp_path / "one.dicom", data)
    out = rd.read_file(path)
    assert not out.multi_frame
    assert out.frames.shape == (1, 24, 32)
    np.testing.assert_array_equal(out.frames[0], data[0])
    assert rd.frame_ids("one", 1, out.multi_frame) == ["one"]


def test_16bit_dicom_rescaled_with_note(tmp_path, caplog):
    data = (frames(2).astype(np.uint16) * 16)  # 12-bit-like values
    path = write_dicom(tmp_path / "deep.dcm", data, bits=16)
    with caplog.at_level(logging.INFO, logger="fhbiometry.readers"):
        out = rd.read_dicom(path)
    assert out.frames.dtype == np.uint8
    assert out.frames.min() == 0
    assert out.frames.max() == 255
    assert "rescaled" in caplog.text
    # one mapping for the whole file: order of values is kept across frames
    lo, hi = data.min(), data.max()
    expected = np.rint((data - lo) * 255.0 / (hi - lo)).astype(np.uint8)
    np.testing.assert_array_equal(out.frames, expected)


@pytest.mark.parametrize("photometric", ["RGB", "YBR_FULL"])
def test_colour_dicom_to_gray(tmp_path, photometric):
    rgb = np.zeros((1, 8, 10, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    if photometric == "YBR_FULL":  # store the same colour as YCbCr (full range)
        y = 0.299 * 200 + 0.587 * 100 + 0.114 * 50
        stored = np.empty_like(rgb)
        stored[..., 0] = round(y)
        stored[..., 1] = round(128 + (-0.168736 * 200 - 0.331264 * 100 + 0.5 * 50))
        stored[..., 2] = round(128 + (0.5 * 200 - 0.418688 * 100 - 0.081312 * 50))
    else:
        stored = rgb
    path = write_dicom(tmp_path / "colour.dcm", stored, photometric=photometric)
    out = rd.read_dicom(path)
    assert out.frames.shape == (1, 8, 10)
    assert np.all(np.abs(out.frames.astype(int) - 124) <= 1)  # 0.299*200+0.587*100+0.114*50


def test_dicom_spacing_sources(tmp_path):
    p = write_dicom(tmp_path / "a.dcm", frames(1), spacing=None, regions=(0.015, 0.015))
    assert rd.read_dicom(p).spacing_mm == pytest.approx(0.15)
    assert rd.read_dicom(p).spacing_source == "dicom:PhysicalDeltaX"
    p = write_dicom(tmp_path / "b.dcm", frames(1), spacing=None, imager_spacing=(0.3, 0.3))
    assert (rd.read_dicom(p).spacing_mm, rd.read_dicom(p).spacing_source) == (
        pytest.approx(0.3), "dicom:ImagerPixelSpacing")
    p = write_dicom(tmp_path / "c.dcm", frames(1), spacing=(0.2, 0.2), regions=(0.05, 0.05))
    assert rd.read_dicom(p).spacing_mm == pytest.approx(0.2)  # PixelSpacing wins
    p = write_dicom(tmp_path / "d.dcm", frames(1), spacing=None)
    assert rd.read_dicom(p).spacing_mm is None


def test_non_square_dicom_spacing_uses_column_and_warns(tmp_path, caplog):
    p = write_dicom(tmp_path / "ns.dcm", frames(1), spacing=(0.3, 0.2))  # (row, column)
    with caplog.at_level(logging.WARNING):
        out = rd.read_dicom(p)
    assert out.spacing_mm == pytest.approx(0.2)
    assert "non-square" in caplog.text


def test_dicom_without_pixel_data(tmp_path):
    p = write_dicom(tmp_path / "report.dcm", frames(1), pixel_data=False)
    with pytest.raises(rd.InputError, match=r"report\.dcm.*no pixel data.*Fix"):
        rd.read_file(p)


def test_unreadable_dicom(tmp_path):
    p = tmp_path / "junk.dcm"
    p.write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(rd.InputError, match=r"junk\.dcm"):
        rd.read_file(p)


# ----------------------------------------------------------------------------- video

@pytest.mark.parametrize("name,codec", [("clip.mp4", "libx264"), ("clip.avi", "ffv1"),
                                        ("clip.mov", "libx264")])
def test_video_frames(tmp_path, name, codec):
    data = frames(5)
    p = write_video(tmp_path / name, data, codec=codec)
    out = rd.read_file(p)
    assert out.multi_frame
    assert out.frames.shape == (5, 24, 32)
    assert out.frames.dtype == np.uint8
    assert np.abs(out.frames.astype(int) - data).max() <= 2
    assert out.spacing_mm is None


def test_undecodable_video(tmp_path):
    p = tmp_path / "broken.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(rd.InputError, match=r"broken\.mp4.*cannot be decoded|broken\.mp4.*no "):
        rd.read_file(p)


# ----------------------------------------------------------------------------- stills

def test_png_gray_and_rgb(tmp_path):
    g = gradient()
    out = rd.read_file(write_image(tmp_path / "g.png", g))
    assert not out.multi_frame
    np.testing.assert_array_equal(out.frames[0], g)
    rgb = np.zeros((6, 7, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    out = rd.read_file(write_image(tmp_path / "c.png", rgb))
    assert out.frames.shape == (1, 6, 7)
    assert np.all(out.frames == 150)  # 0.587 * 255 = 149.7


def test_16bit_png_rescaled(tmp_path):
    from PIL import Image

    arr = (gradient().astype(np.uint16) * 100)
    p = tmp_path / "deep.png"
    Image.fromarray(arr).save(p)
    out = rd.read_file(p)
    assert out.frames.dtype == np.uint8
    assert out.frames.max() == 255
    assert out.frames.min() == 0


def test_jpeg_and_bmp(tmp_path):
    g = gradient()
    for name in ("a.jpg", "b.bmp", "c.tif"):
        out = rd.read_file(write_image(tmp_path / name, g))
        assert out.frames.shape == (1, 24, 32)
        assert np.abs(out.frames[0].astype(int) - g).max() <= (10 if name.endswith("jpg") else 0)


def test_unreadable_png(tmp_path):
    p = tmp_path / "bad.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken")
    with pytest.raises(rd.InputError, match=r"bad\.png.*cannot read image"):
        rd.read_file(p)


# ----------------------------------------------------------------------------- discovery

def test_find_inputs_skips_and_sorts(tmp_path):
    g = gradient()
    write_image(tmp_path / "b" / "002_HC.png", g)
    write_image(tmp_path / "a" / "001_HC.png", g)
    write_image(tmp_path / "a" / "001_HC_Annotation.png", g)
    write_image(tmp_path / "annotations" / "whatever.png", g)
    write_json(tmp_path / "a" / "001_HC.json", {"pixel_spacing_mm": 0.1})
    (tmp_path / "labels.csv").write_text("x\n")
    (tmp_path / "notes.md").write_text("x\n")
    write_dicom(tmp_path / "c" / "cine.dcm", frames(2))
    found = rd.find_inputs(tmp_path, "annotations/{stem}_Annotation.png")
    rels = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rels == ["a/001_HC.png", "b/002_HC.png", "c/cine.dcm"]


def test_find_inputs_duplicate_names(tmp_path):
    write_image(tmp_path / "x" / "001_HC.png", gradient())
    write_image(tmp_path / "y" / "001_HC.png", gradient())
    with pytest.raises(rd.InputError, match=r"001_HC.*same file name.*rename"):
        rd.find_inputs(tmp_path)


def test_find_inputs_missing_dir(tmp_path):
    with pytest.raises(rd.InputError, match=r"nope.*does not exist.*data.raw_dir"):
        rd.find_inputs(tmp_path / "nope")


# ----------------------------------------------------------------------------- spacing tables

def test_sidecar(tmp_path):
    img = write_image(tmp_path / "v.png", gradient())
    assert rd.read_sidecar(img) == {}
    write_json(tmp_path / "v.json", {"pixel_spacing_mm": 0.3, "subject_id": "S9"})
    assert rd.read_sidecar(img) == {"pixel_spacing_mm": 0.3, "subject_id": "S9"}
    write_json(tmp_path / "v.json", {"pixel_spacing_mm": "abc"})
    with pytest.raises(rd.InputError, match=r"v\.json.*pixel_spacing_mm"):
        rd.read_sidecar(img)
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(rd.InputError, match=r"v\.json.*not valid JSON"):
        rd.read_sidecar(img)


def test_pixel_size_table(tmp_path):
    p = tmp_path / "ps.csv"
    p.write_text("filename,pixel size(mm),head circumference (mm)\n000_HC.png,0.069,44\n"
                 "001_HC.png,0.09,50\n")
    table = rd.read_pixel_size_table(p, {"image": "filename", "spacing": "pixel size(mm)"})
    assert table == {"000_HC.png": 0.069, "001_HC.png": 0.09}
    assert rd.lookup_by_name(table, "images/001_HC.png") == 0.09
    assert rd.lookup_by_name(table, "images/002_HC.png") is None
    with pytest.raises(rd.InputError, match=r"ps\.csv.*missing column.*pixel_size_columns"):
        rd.read_pixel_size_table(p, {"image": "name", "spacing": "pixel size(mm)"})
    p.write_text("filename,pixel size(mm)\n000_HC.png,zero\n")
    with pytest.raises(rd.InputError, match=r"ps\.csv, row 2: column 'pixel size\(mm\)'"):
        rd.read_pixel_size_table(p, {"image": "filename", "spacing": "pixel size(mm)"})


# ----------------------------------------------------------------------------- subjects

@pytest.mark.parametrize("stem,subject", [("014_HC", "014"), ("014_2HC", "014"), ("014_3HC", "014"),
                                          ("sub014_2HC", "sub014"), ("sub007_cine", "sub007")])
def test_subject_from_stem(stem, subject):
    assert rd.subject_id(stem, PATTERN) == subject


def test_subject_precedence(caplog):
    assert rd.subject_id("sub014_2HC", PATTERN, patient_id="PAT-9") == "PAT-9"
    assert rd.subject_id("sub014_2HC", PATTERN, patient_id=" ", sidecar_id="S3") == "S3"
    with caplog.at_level(logging.WARNING):
        assert rd.subject_id("scan_a", PATTERN) == "scan_a"
    assert "does not match" in caplog.text


def test_dicom_patient_id_used_as_subject(tmp_path):
    p = write_dicom(tmp_path / "sub001_x.dcm", frames(2), patient_id="HOSP-42")
    out = rd.read_dicom(p)
    assert rd.subject_id(p.stem, PATTERN, out.patient_id) == "HOSP-42"


def test_subject_source():
    assert rd.subject_with_source("sub014_2HC", PATTERN, patient_id="P") == ("P", "dicom")
    assert rd.subject_with_source("sub014_2HC", PATTERN, sidecar_id="S3") == ("S3", "sidecar")
    assert rd.subject_with_source("sub014_2HC", PATTERN) == ("sub014", "pattern")
    assert rd.subject_with_source("scan_a", PATTERN) == ("scan_a", "stem")


@pytest.mark.skipif(not HC18.exists(), reason=f"real data set not found at {HC18}")
def test_default_pattern_matches_every_hc18_file():
    """data.on_unmatched_subject: fail is safe on HC18: the default pattern names every file."""
    files = rd.find_inputs(HC18, "annotations/{stem}_Annotation.png")
    assert len(files) == 622
    assert all(rd.subject_from_stem(p.stem, PATTERN) is not None for p in files)


# ----------------------------------------------------------------------------- size limit, notes

def test_bomb_png_is_an_input_error_before_decoding(tmp_path):
    """A tiny PNG whose header claims 20000 x 20000: InputError, not Pillow's
    DecompressionBombError, and Pillow's own limit is restored afterwards."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    p = write_png_header(tmp_path / "bomb.png", 20000, 20000)
    assert p.stat().st_size < 200
    with pytest.raises(rd.InputError, match=r"bomb\.png: image too large: image of 20000 x 20000 = "
                                            r"400000000 pixels exceeds data\.max_image_pixels"):
        rd.read_file(p)
    assert Image.MAX_IMAGE_PIXELS == saved


def test_size_limit_applies_to_every_format(tmp_path):
    still = write_image(tmp_path / "s.png", gradient(24, 32))
    dcm = write_dicom(tmp_path / "d.dcm", frames(2))
    video = write_video(tmp_path / "v.mp4", frames(2))
    for p in (still, dcm, video):
        assert rd.read_file(p, max_pixels=768).frames.shape[1:] == (24, 32)  # at the limit: read
        with pytest.raises(rd.InputError, match="32 x 24 = 768 pixels exceeds data.max_image_pixels = 767"):
            rd.read_file(p, max_pixels=767)


def test_conversions_are_returned_as_notes(tmp_path):
    rgba = np.dstack([gradient(24, 32)] * 3 + [np.full((24, 32), 9, np.uint8)])
    assert rd.read_file(write_image(tmp_path / "g.png", gradient(24, 32))).notes == []
    names = [n for n, _ in rd.read_file(write_image(tmp_path / "c.png", rgba)).notes]
    assert names == ["alpha_dropped", "colour_to_grey"]
    d = write_dicom(tmp_path / "d.dcm", frames(1) * 100, bits=16, modality="MR", spacing=(0.3, 0.2))
    names = [n for n, _ in rd.read_file(d).notes]
    assert names == ["modality_not_us", "rescaled_to_8bit", "spacing_non_square"]
    assert set(names) <= set(rd.NOTES)
    assert rd.note_name("modality_not_us: Modality 'MR'") == "modality_not_us"
    assert rd.note_name("image not found: 'x.png'") is None


# ----------------------------------------------------------------------------- issue 18 probe

def test_exif_orientation_is_applied_with_a_note(tmp_path):
    """A still stored sideways with EXIF orientation 6 is read as displayed (labels are given
    on the displayed image), and the conversion is a note."""
    from PIL import Image

    from fixtures_io import write_oriented

    arr = gradient(24, 32)
    out = rd.read_file(write_oriented(tmp_path / "sub001_x.png", arr, 6))
    shown = np.asarray(Image.fromarray(arr).transpose(Image.Transpose.ROTATE_270))
    assert out.frames.shape == (1, 32, 24)
    np.testing.assert_array_equal(out.frames[0], shown)
    assert [n for n, _ in out.notes] == ["exif_orientation_applied"]
    jpeg = rd.read_file(write_oriented(tmp_path / "sub002_x.jpg", arr, 8))
    assert jpeg.frames.shape == (1, 32, 24)
    assert jpeg.notes[0][0] == "exif_orientation_applied"
    plain = rd.read_file(write_image(tmp_path / "sub003_x.png", arr))
    assert plain.frames.shape == (1, 24, 32)
    assert plain.notes == []


def test_exif_orientation_of_an_annotation_image(tmp_path):
    """Annotation images go through the same orientation rule as the stills they label."""
    from fhbiometry.readers import labels as lab
    from fixtures_io import draw_ellipse_outline, write_oriented

    outline = draw_ellipse_outline(40, 60, 30, 20, 20, 10, 0.0)
    plain = lab.annotation_landmarks(write_image(tmp_path / "a.png", outline))
    turned = lab.annotation_landmarks(write_oriented(tmp_path / "b.png", outline, 6))
    # displayed rotated 90 clockwise: (x, y) -> (H - 1 - y, x)
    expect = np.stack([39 - plain[:, 1], plain[:, 0]], axis=1)
    assert sorted(map(tuple, np.round(turned, 3))) == sorted(map(tuple, np.round(expect, 3)))


def regions_dicom(path, regions, **kw):
    return write_dicom(path, frames(1, 24, 32), spacing=None, regions=regions, **kw)


TISSUE = {"PhysicalDeltaX": 0.02, "PhysicalDeltaY": 0.02}
DOPPLER = {"RegionSpatialFormat": 3, "RegionDataType": 3, "PhysicalDeltaX": 0.5, "PhysicalDeltaY": 0.05,
           "RegionLocationMinY0": 16, "PhysicalUnitsYDirection": 7}


def test_spacing_comes_from_the_tissue_region_in_any_order(tmp_path):
    a = rd.read_dicom(regions_dicom(tmp_path / "a.dcm", [DOPPLER, TISSUE]))
    b = rd.read_dicom(regions_dicom(tmp_path / "b.dcm", [TISSUE, DOPPLER]))
    assert a.spacing_mm == pytest.approx(0.2)
    assert b.spacing_mm == pytest.approx(0.2)
    assert a.spacing_source == "dicom:PhysicalDeltaX"
    assert a.notes == []
    assert b.notes == []   # square tissue region: no spacing_non_square
    assert [r.data_type for r in a.regions] == [3, 1]
    assert [r.data_type for r in b.regions] == [1, 3]
    assert a.regions[1].spacing_mm == pytest.approx((0.2, 0.2))
    assert (a.regions[1].x0, a.regions[1].y0, a.regions[1].x1, a.regions[1].y1) == (0, 0, 31, 23)


def test_region_without_delta_y_is_skipped_with_a_note(tmp_path):
    p = regions_dicom(tmp_path / "a.dcm", [{"PhysicalDeltaX": 0.02, "PhysicalDeltaY": None}],
                      imager_spacing=(0.3, 0.3))
    out = rd.read_dicom(p)
    assert out.spacing_mm == pytest.approx(0.3)
    assert out.spacing_source == "dicom:ImagerPixelSpacing"
    assert out.notes[0][0] == "regions_unused"
    assert "PhysicalDeltaY" in out.notes[0][1]
    assert out.regions[0].spacing_mm is None
    assert "PhysicalDeltaY" in out.regions[0].note


def test_several_tissue_regions_are_never_guessed(tmp_path):
    second = {**TISSUE, "PhysicalDeltaX": 0.04, "PhysicalDeltaY": 0.04}
    out = rd.read_dicom(regions_dicom(tmp_path / "a.dcm", [TISSUE, second]))
    assert out.spacing_mm is None
    assert out.notes[0][0] == "regions_unused"
    assert "2 2-D tissue ultrasound regions" in out.notes[0][1]


def test_non_square_region_is_noted_only_when_non_square(tmp_path):
    out = rd.read_dicom(regions_dicom(tmp_path / "a.dcm", [{"PhysicalDeltaX": 0.02, "PhysicalDeltaY": 0.03}]))
    assert out.spacing_mm == pytest.approx(0.2)
    assert [n for n, _ in out.notes] == ["spacing_non_square"]


def test_read_regions_is_robust_to_missing_attributes():
    from pydicom.dataset import Dataset

    from fhbiometry.readers.regions import read_regions, tissue_region

    ds = Dataset()
    assert read_regions(ds) == ()
    assert tissue_region(())[0] is None
    ds.SequenceOfUltrasoundRegions = [Dataset()]
    (region,) = read_regions(ds)
    assert region.spatial_format is None
    assert region.data_type is None
    assert region.spacing_mm is None
    assert (region.x0, region.x1) == (-1, -1)
    chosen, why = tissue_region((region,))
    assert chosen is None
    assert "2-D tissue" in why


@pytest.mark.parametrize("declared,n_data", [(0, 2), (2, 3), ("", 2)])
def test_number_of_frames_that_disagrees_with_the_data(tmp_path, declared, n_data):
    """The frames the pixel data holds are read, each 2-D, with a note; never a 3-D frame."""
    p = write_dicom(tmp_path / "a.dcm", frames(n_data), number_of_frames=declared)
    out = rd.read_dicom(p)
    assert out.frames.shape == (n_data, 24, 32)
    assert out.multi_frame
    assert out.notes[0][0] == "frame_count_from_data"
    assert f"holds {n_data} frame(s)" in out.notes[0][1]


def test_number_of_frames_beyond_the_data_is_refused(tmp_path):
    p = write_dicom(tmp_path / "a.dcm", frames(2), number_of_frames=3)
    with pytest.raises(rd.InputError, match=r"a.dcm: DICOM pixel data cannot be decoded.*NumberOfFrames"):
        rd.read_dicom(p)


@pytest.mark.parametrize("spacing", [(-0.2, 0.2), (0.2, -0.2)])
def test_negative_pixel_spacing_is_refused(tmp_path, spacing):
    p = write_dicom(tmp_path / "a.dcm", frames(1), spacing=spacing)
    with pytest.raises(rd.InputError, match=r"a.dcm: PixelSpacing \[.*\] is not two numbers > 0"):
        rd.read_dicom(p)


def test_a_reader_registered_elsewhere_is_used_for_its_extension(tmp_path):
    """The registry is the one source of accepted extensions: a reader added by a test module
    is found by find_inputs and used by read_file."""
    from fhbiometry.readers.common import FileFrames
    from fhbiometry.readers.registry import register, unregister

    @register(".xyz", kind="test")
    def read_xyz(path, max_pixels=0):
        return FileFrames(np.full((1, 4, 5), 7, np.uint8), multi_frame=False)

    try:
        (tmp_path / "sub001_a.xyz").write_bytes(b"x")
        assert [p.name for p in rd.find_inputs(tmp_path)] == ["sub001_a.xyz"]
        assert rd.kind_of(tmp_path / "sub001_a.xyz") == "test"
        assert rd.read_file(tmp_path / "sub001_a.xyz").frames.shape == (1, 4, 5)
        with pytest.raises(ValueError, match="already has the reader"):
            register(".xyz", kind="test")(lambda path, max_pixels=0: None)
    finally:
        unregister(".xyz")
    assert rd.find_inputs(tmp_path) == []


def test_find_inputs_follows_symlinked_folders_and_reports_hidden_files(tmp_path, caplog):
    import os

    from PIL import Image

    raw, elsewhere = tmp_path / "raw", tmp_path / "elsewhere"
    write_image(raw / "sub001_a.png", gradient())
    write_image(elsewhere / "sub002_b.png", gradient())
    os.symlink(elsewhere, raw / "linked")
    os.symlink(raw, elsewhere / "loop")            # a loop: walked once
    write_image(raw / ".a.png", gradient())
    Image.fromarray(gradient()).save(raw / "..png", format="PNG")  # Path("..png").suffix is ''

    skipped = []
    with caplog.at_level(logging.WARNING, logger="fhbiometry.readers"):
        found = rd.find_inputs(raw, skipped=skipped)
    assert [p.relative_to(raw).as_posix() for p in found] == ["linked/sub002_b.png", "sub001_a.png"]
    assert skipped == ["..png", ".a.png"]
    assert "skipped 2 hidden file(s)" in caplog.text


def test_canonical_subjects_merge_ids_that_differ_only_by_case_space_or_form():
    import unicodedata

    from fhbiometry.readers.subjects import canonical_subjects

    nfd = unicodedata.normalize("NFD", "josé1")
    mapping, merged = canonical_subjects(["P001", "p001", "p001", "sub002", "josé1", nfd])
    assert mapping["P001"] == mapping["p001"] == "p001"      # the spelling of the most files
    assert mapping["sub002"] == "sub002"
    assert mapping[nfd] == mapping["josé1"]
    assert set(merged) == {"p001", mapping["josé1"]}


def test_plain_numbers_only():
    from fhbiometry.readers.common import parse_number, positive

    assert parse_number("1_0_0") is None
    assert parse_number("3,5") is None
    assert parse_number("inf") is None
    assert parse_number(" -2.5e1 ") == -25.0
    assert positive("0.2") == 0.2
    assert positive("-1") is None

"""Tests for fhbiometry.readers.labels: landmark tables and ellipse annotations."""
import numpy as np
import pytest

from fhbiometry.readers import labels as lab
from fhbiometry.core.geometry import COORD_COLUMNS, diameters, ellipse_landmarks, pair_invariant_errors
from fhbiometry.readers.media import InputError
from fixtures_io import draw_ellipse_outline, write_image, write_table

COLUMNS = {"image": "image_name", "frame": "frame", **{c: c for c in COORD_COLUMNS}}
ROW = (10, 20, 30, 40, 50, 60, 70, 80)


def test_table_with_renamed_columns(tmp_path):
    header = ("file", *(f"P{i}" for i in range(8)))
    p = write_table(tmp_path / "t.csv", [("a.png", *ROW), ("b.png", *ROW)], header=header)
    cols = {"image": "file", "frame": "", **{c: f"P{i}" for i, c in enumerate(COORD_COLUMNS)}}
    t = lab.read_landmark_table(p, cols)
    assert list(t["image"]) == ["a.png", "b.png"]
    assert list(t["frame"]) == [0, 0]  # no frame column: every row is frame 0
    assert list(t["row"]) == [2, 3]
    np.testing.assert_array_equal(t.loc[0, list(COORD_COLUMNS)].to_numpy(float), ROW)
    assert list(t["status"]) == ["ok", "ok"]


def test_missing_columns_error(tmp_path):
    header = ("image_name", "frame", *COORD_COLUMNS[:-1], "BPD2Y")
    p = write_table(tmp_path / "t.csv", [("a.png", 0, *ROW)], header=header)
    with pytest.raises(InputError) as info:
        lab.read_landmark_table(p, COLUMNS)
    msg = str(info.value)
    assert "t.csv" in msg
    assert "bpd_2_y (data.columns.bpd_2_y)" in msg
    assert "the table has: image_name, frame" in msg
    assert "BPD2Y" in msg
    assert "data.columns" in msg


@pytest.mark.parametrize("value,what", [("abc", "not a number"), ("", "empty")])
def test_bad_coordinate_strict(tmp_path, value, what):
    bad = list(ROW)
    bad[5] = value  # bpd_1_y
    p = write_table(tmp_path / "t.csv", [("a.png", 0, *ROW), ("b.png", 0, *bad)])
    with pytest.raises(InputError, match=rf"t\.csv, row 3: column 'bpd_1_y': '{value}' is {what}"):
        lab.read_landmark_table(p, COLUMNS)


def test_bad_values_lenient(tmp_path):
    bad = list(ROW)
    bad[0] = "x"
    p = write_table(tmp_path / "t.csv", [("a.png", 0, *bad), ("b.png", "two", *ROW)])
    t = lab.read_landmark_table(p, COLUMNS, strict=False)
    assert np.isnan(t.loc[0, "ofd_1_x"])
    assert t.loc[0, "ofd_1_y"] == 20
    assert t.loc[0, "status"] == "column 'ofd_1_x': 'x' is not a number"
    assert t.loc[1, "frame"] == -1
    assert "frame" in t.loc[1, "status"]


def test_missing_table(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv.*not found.*data.landmarks_csv"):
        lab.read_landmark_table(tmp_path / "nope.csv", COLUMNS)


@pytest.mark.parametrize("cx,cy,a,b,deg", [(100.3, 80.7, 60.0, 45.0, 0.0),
                                           (95.0, 85.0, 70.0, 52.0, 33.0),
                                           (110.5, 75.2, 50.0, 64.0, -71.0)])
def test_ellipse_outline_recovered(tmp_path, cx, cy, a, b, deg):
    img = draw_ellipse_outline(170, 210, cx, cy, a, b, np.radians(deg))
    path = write_image(tmp_path / "x_Annotation.png", img)
    got = lab.annotation_landmarks(path)
    true = ellipse_landmarks(cx, cy, a, b, np.radians(deg))
    assert got.shape == (4, 2)
    np.testing.assert_allclose(got, true, atol=1.0)  # same canonical order, within 1 px
    assert np.all(pair_invariant_errors(got, true) < 1.0)
    d = diameters(got)
    assert d[0] > d[1]  # OFD = major axis


def test_fit_ellipse_parameters():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    th = np.radians(20)
    x = 50 + 30 * np.cos(t) * np.cos(th) - 10 * np.sin(t) * np.sin(th)
    y = 40 + 30 * np.cos(t) * np.sin(th) + 10 * np.sin(t) * np.cos(th)
    cx, cy, sa, sb, ang = lab.fit_ellipse(np.stack([x, y], 1))
    assert (cx, cy) == (pytest.approx(50), pytest.approx(40))
    assert sorted([sa, sb]) == [pytest.approx(10), pytest.approx(30)]
    assert lab.fit_ellipse(np.ones((3, 2))) is None


def test_failed_fit_names_file(tmp_path):
    path = write_image(tmp_path / "empty_Annotation.png", np.zeros((40, 50), np.uint8))
    with pytest.raises(InputError, match=r"empty_Annotation\.png.*no ellipse"):
        lab.annotation_landmarks(path)
    line = np.zeros((40, 50), np.uint8)
    line[20, 5:45] = 255  # a straight line: no ellipse
    path = write_image(tmp_path / "line_Annotation.png", line)
    with pytest.raises(InputError, match=r"line_Annotation\.png"):
        lab.annotation_landmarks(path)


def test_annotation_path():
    p = lab.annotation_path("raw", "annotations/{stem}_Annotation.png", "014_2HC")
    assert p.as_posix() == "raw/annotations/014_2HC_Annotation.png"

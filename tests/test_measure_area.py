"""The measured area (measure/area.py): a DICOM's 2-D tissue region, else the image area found
on the pixels, else the whole frame; the network sees the crop, the landmarks come back in the
original image's pixels and the spacing is the region's."""
import numpy as np
import pytest

from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.measure.area import (DETECTED_SECTOR, DICOM_REGION, WHOLE_FRAME, Area, choose_area, detect_area,
                                     region_area)
from fhbiometry.readers.regions import Region
from conftest import untrained_checkpoint
from predict_helpers import region_item, screen_with, synthetic_head, write_screen_dicom

AT = (90, 60)


@pytest.fixture(scope="module")
def head():
    return synthetic_head()


def bounds(area: Area):
    return area.x0, area.y0, area.x1, area.y1


def test_a_screen_is_cropped_to_its_image_and_a_head_alone_is_not(head):
    h, w = head.shape
    alone = detect_area(head[None])
    assert alone.kind == WHOLE_FRAME
    assert bounds(alone) == (0, 0, w - 1, h - 1)
    found = detect_area(screen_with(head, AT)[None])
    assert found.kind == DETECTED_SECTOR, found
    assert bounds(found) == (AT[0], AT[1], AT[0] + w - 1, AT[1] + h - 1)
    assert "left out" in found.note


def test_blank_and_tiny_content_measure_the_whole_frame():
    blank = detect_area(np.zeros((1, 64, 80), np.uint8))
    assert blank.kind == WHOLE_FRAME
    assert "no image area" in blank.note
    noise = np.random.default_rng(1).integers(0, 255, (2, 64, 80)).astype(np.uint8)
    assert detect_area(noise).kind == WHOLE_FRAME


def test_an_image_cut_by_a_shadow_stays_whole(head):
    """A dark band across the image (an acoustic shadow) does not make half of it chrome."""
    cut = head.copy()
    cut[:, 70:82] = 0
    screen = np.zeros((200, 260), np.uint8)
    screen[20:20 + cut.shape[0], 30:30 + cut.shape[1]] = cut
    screen[185:195, 5:120] = 255                       # a text line below the image
    found = detect_area(screen[None])
    assert found.kind == DETECTED_SECTOR
    assert bounds(found) == (30, 20, 30 + cut.shape[1] - 1, 20 + cut.shape[0] - 1)


def test_the_tissue_region_is_chosen_and_bounds_outside_the_image_are_refused():
    doppler = Region(0, 250, 399, 299, 3, 3, (0.5, 0.5))
    tissue = Region(90, 60, 249, 186, 1, 1, (0.2, 0.2))
    frames = np.zeros((1, 300, 400), np.uint8)
    area = choose_area(frames, [doppler, tissue], (tissue, ""))
    assert area.kind == DICOM_REGION
    assert bounds(area) == (90, 60, 249, 186)
    assert area.spacing_mm == 0.2
    area, why = region_area(Region(84, 31, 595, 414, 1, 1, (0.5, 0.5)), 240, 320)
    assert area is None
    assert "do not lie inside the 320 x 240 image" in why
    fallback = choose_area(frames, [doppler], (None, "none of the 1 ultrasound region(s) is 2-D tissue"))
    assert fallback.kind == WHOLE_FRAME
    assert "2-D tissue" in fallback.note


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("torch")
    return untrained_checkpoint(tmp_path_factory.mktemp("area") / "heatmap.safetensors")


def measured(paths, model, **options):
    from fhbiometry.measure.api import predict

    frames, _ = predict(paths, model=model, overlays="none", **options)
    return frames


def test_landmarks_on_a_screen_match_the_head_alone(head, model, tmp_path):
    """A still screen (detected image area) and a DICOM screen with a Doppler region before its
    tissue region: after mapping back, the landmarks are those of the head alone, and the DICOM's
    spacing is its tissue region's (0.02 cm), not the first region's."""
    from fhbiometry.synth.writers import write_still

    h, w = head.shape
    alone = write_still(tmp_path / "alone.png", head)
    still = write_still(tmp_path / "screen.png", screen_with(head, AT))
    tissue = (AT[0], AT[1], AT[0] + w - 1, AT[1] + h - 1)
    dicom = write_screen_dicom(tmp_path / "screen.dcm", screen_with(head, AT),
                               [region_item((0, 200, 399, 299), 3, 3, 0.05), region_item(tissue, 1, 1, 0.02)])
    frames = measured([alone, still, dicom], model, spacing=0.3)
    rows = frames.set_index("source_file")
    assert rows.loc["alone.png", "region"] == WHOLE_FRAME
    assert rows.loc["screen.png", "region"] == DETECTED_SECTOR
    assert rows.loc["screen.dcm", "region"] == DICOM_REGION
    expected = rows.loc["alone.png", list(COORD_COLUMNS)].to_numpy(np.float64).reshape(4, 2)
    for name in ("screen.png", "screen.dcm"):
        got = rows.loc[name, list(COORD_COLUMNS)].to_numpy(np.float64).reshape(4, 2) - np.array(AT)
        assert np.abs(got - expected).max() < 0.5, f"{name}: landmarks differ from the head alone"
        assert tuple(rows.loc[name, ["region_x0", "region_y0", "region_x1", "region_y1"]]) == tissue
    assert rows.loc["screen.dcm", "spacing_mm"] == pytest.approx(0.2)
    assert rows.loc["screen.dcm", "spacing_source"].startswith("dicom")
    assert rows.loc["screen.png", "spacing_mm"] == pytest.approx(0.3)     # --spacing: no region there

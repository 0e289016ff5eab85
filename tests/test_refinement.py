"""Head-normalised refinements: the crop geometry (core.crop), the crops of a split
(refinement.crops), the params section ``refine`` and its rules, and a refinement as a model."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import fake_prepared, tiny_params
from fhbiometry.config import schema
from fhbiometry.config.messages import ParamError
from fhbiometry.core.crop import box_errors, crop_image, crop_transform, head_boxes, head_crops, jittered_boxes
from fhbiometry.core.letterbox import to_input, to_original
from fhbiometry.refinement.crops import coarse_errors, cropped_split, training_crops
from fhbiometry.refinement.settings import crop_settings, refine_params

REFINE = {"coarse": "m", "size": 32, "context": 1.35, "copies": 3, "jitter": 1.0,
          "arch": "resnet18", "kind": "heatmap", "loss": "mse", "head_channels": 16, "epochs": 1}


def spot(width=120, height=90, x=70, y=40) -> np.ndarray:
    image = np.zeros((height, width), np.uint8)
    image[y, x] = 255
    return image


@pytest.mark.parametrize("side", [32.0, 64.0, 16.0])
def test_a_pixel_lands_where_the_crop_transform_maps_it(side):
    """The crop's pixels and its transform agree: a lone bright pixel's centroid in the crop is
    where ``to_input`` maps its coordinates (to a tenth of a crop pixel), at scales 1, 1/2, 2."""
    image, size, centre = spot(), 32, (66.0, 43.0)
    crop = crop_image(image, centre, side, size).astype(np.float64)
    ys, xs = np.mgrid[:size, :size]
    found = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
    expected = to_input(np.array([[70.0, 40.0]]), crop_transform(centre, side, size))[0]
    assert np.abs(found - expected).max() < 0.1, (found, expected)


def test_a_window_beyond_the_frame_is_black_there_and_maps_back():
    image = np.full((50, 60), 200, np.uint8)
    crop = crop_image(image, (2.0, 2.0), 40.0, 40)        # centred on a corner: three quarters outside
    assert crop[:15, :15].max() == 0
    assert crop[-10:, -10:].min() == 200
    t = crop_transform((2.0, 2.0), 40.0, 40)
    points = np.array([[[0.0, 0.0], [59.0, 49.0], [10.5, 3.25], [-4.0, 7.0]]])
    assert np.allclose(to_original(to_input(points, t), t), points)


def test_a_crop_refuses_a_head_it_cannot_place():
    with pytest.raises(ValueError, match="finite centre and a positive side"):
        crop_image(spot(), (np.nan, 3.0), 20.0, 16)
    with pytest.raises(ValueError, match="finite centre and a positive side"):
        crop_image(spot(), (3.0, 3.0), 0.0, 16)


def test_head_boxes_are_the_mean_point_and_the_longer_diameter():
    points = np.array([[[10.0, 50.0], [90.0, 50.0], [50.0, 30.0], [50.0, 70.0]]])
    centres, lengths = head_boxes(points)
    assert np.allclose(centres, [[50.0, 50.0]])
    assert np.allclose(lengths, [80.0])


def test_box_errors_measure_offset_and_scale_in_units_of_the_head():
    true = np.array([[[0.0, 0.0], [100.0, 0.0], [50.0, -30.0], [50.0, 30.0]]] * 2)
    pred = true.copy()
    pred[0] += [10.0, 0.0]                                   # centre 0.1 OFD off along x
    pred[1] = 50.0 + (true[1] - 50.0) * np.exp(0.2)          # 0.2 larger in log, centre kept
    pred[1, :, 1] = true[1, :, 1] * np.exp(0.2)
    errors = box_errors(pred, true)
    assert errors["frames"] == 2
    assert errors["centre_sd"] == pytest.approx(np.sqrt(0.1 ** 2 / 4), rel=1e-6)
    assert errors["scale_sd"] == pytest.approx(np.sqrt(0.2 ** 2 / 2), rel=1e-6)
    with pytest.raises(ValueError, match="no frame"):
        box_errors(np.full_like(true, np.nan), true)


def test_jittered_boxes_follow_the_measured_errors_and_the_seed():
    points = np.tile(np.array([[[0.0, 0.0], [100.0, 0.0], [50.0, -30.0], [50.0, 30.0]]]), (200, 1, 1))
    rows, centres, lengths = jittered_boxes(points, np.random.default_rng(0), 0.05, 0.1, 10)
    assert rows.tolist()[:12] == [0] * 10 + [1] * 2
    assert len(rows) == 2000
    assert np.std(centres[:, 0] - 50.0) == pytest.approx(5.0, rel=0.05)
    assert np.std(np.log(lengths / 100.0)) == pytest.approx(0.1, rel=0.05)
    again = jittered_boxes(points, np.random.default_rng(0), 0.05, 0.1, 10)
    assert np.array_equal(again[1], centres)
    still = jittered_boxes(points[:3], np.random.default_rng(0), 0.0, 0.0, 2)
    assert np.allclose(still[1], 50.0 * np.array([1.0, 0.0]))
    assert np.allclose(still[2], 100.0)


def with_frames(data: dict, seed: int = 0) -> dict:
    """Original frames for a fake prepared split: its letterboxed images back at original size."""
    from PIL import Image

    frames = {}
    for fid, image, t, w, h in zip(data["frame_id"], data["image"], data["transform"], data["width"], data["height"]):
        nw, nh = int(round(w * t[0])), int(round(h * t[1]))
        px, py = int(round(t[2] - 0.5 * t[0] + 0.5)), int(round(t[3] - 0.5 * t[1] + 0.5))
        frames[str(fid)] = np.asarray(Image.fromarray(image[py:py + nh, px:px + nw]).resize((int(w), int(h))))
    return frames


def test_cropped_split_keeps_the_labels_and_maps_points_into_the_crop():
    data = fake_prepared(6, seed=1)
    frames = with_frames(data)
    heads = np.asarray(data["points_orig"], np.float64) + 1.5
    heads[2] = np.nan                                        # a coarse model that found no head
    out, whole = cropped_split(data, frames, heads, 32, 1.35)
    assert whole == 1
    assert out["image"].shape == (6, 32, 32)
    assert np.array_equal(out["frame_id"], data["frame_id"])
    assert np.allclose(to_original(out["points"], out["transform"]), data["points_orig"], atol=1e-4)
    inside = np.delete(out["points"], 2, axis=0)
    assert (inside > 0).all()        # 1.35 x the OFD holds the whole head
    assert (inside < 31).all()


def test_training_crops_repeat_every_accepted_frame_with_the_seed():
    data = fake_prepared(5, seed=2)
    data["use_for_training"][1] = False
    frames = with_frames(data)
    cfg = {"size": 32, "context": 1.35, "copies": 3, "jitter": 1.0}
    errors = {"centre_sd": 0.05, "scale_sd": 0.1}
    out = training_crops(data, frames, errors, cfg, seed=7)
    assert len(out["frame_id"]) == 12
    assert data["frame_id"][1] not in set(out["frame_id"])
    assert np.array_equal(training_crops(data, frames, errors, cfg, seed=7)["image"], out["image"])
    assert not np.array_equal(training_crops(data, frames, errors, cfg, seed=8)["image"], out["image"])
    assert np.allclose(to_original(out["points"], out["transform"]), out["points_orig"], atol=1e-4)
    assert coarse_errors(data, data["points_orig"])["centre_sd"] == 0.0


def params_with(**refine) -> dict:
    p = tiny_params(kind="heatmap", loss="mse")
    p["refine"] = {"r": {**REFINE, **refine}}
    return p


def test_a_refinement_validates_and_reads_as_a_model():
    p = schema.validate_params(params_with())
    rp = refine_params(p, "r")
    assert list(rp["models"]) == ["r"]
    assert rp["models"]["r"]["epochs"] == 1
    assert "coarse" not in rp["models"]["r"]
    assert rp["input"] == {"size": 32, "resize": "letterbox"}
    assert schema.model_config(rp, "r")["kind"] == "heatmap"
    assert crop_settings(p, "r") == {"coarse": "m", "size": 32, "context": 1.35, "copies": 3, "jitter": 1.0}


@pytest.mark.parametrize("change, text", [
    ({"coarse": "nope"}, "refine.r.coarse = 'nope': choose one of ['m']"),
    ({"size": 36}, "refine.r.size = 36: must be a positive multiple of 32"),
    ({"context": 1.0}, "refine.r.context"),
    ({"loss": "smooth_l1"}, "refine.r.loss"),
])
def test_a_wrong_refinement_is_named(change, text):
    with pytest.raises(ParamError) as err:
        schema.validate_params(params_with(**change))
    assert text in str(err.value), str(err.value)


def test_a_refinement_needs_its_crop_keys_and_a_name_of_its_own():
    p = params_with()
    del p["refine"]["r"]["jitter"]
    with pytest.raises(ParamError, match="refine.r.jitter"):
        schema.validate_params(p)
    p = params_with()
    p["refine"] = {"m": copy.deepcopy(p["refine"]["r"])}
    with pytest.raises(ParamError, match="must differ from every name under `models`"):
        schema.validate_params(p)


def test_two_passes_are_a_decoding_setting():
    p = params_with()
    p["decode"]["refine_passes"] = 3
    with pytest.raises(ParamError, match="decode.refine_passes"):
        schema.validate_params(p)
    p["decode"]["refine_passes"] = 2
    assert schema.validate_params(p)["decode"]["refine_passes"] == 2


def test_head_crops_stack_frames_of_any_size():
    images = [spot(120, 90), spot(60, 80, x=30, y=30)]
    crops, transforms = head_crops(images, np.array([[70.0, 40.0], [30.0, 30.0]]), np.array([40.0, 20.0]), 16)
    assert crops.shape == (2, 16, 16)
    assert transforms.shape == (2, 4)
    assert (crops.reshape(2, -1).argmax(axis=1) > 0).all()


class SectorBackend:
    """A stand-in network that reads a plus of four bright blobs: each landmark is the centroid of
    the bright pixels in its sector of the crop (left, right, top, bottom of the crop's centre),
    encoded as a regression model's outputs; on a correct crop it finds the blobs."""

    def __init__(self, codec):
        self.codec = codec

    def outputs(self, images):
        images = np.asarray(images, np.float64)
        size = images.shape[-1]
        ys, xs = np.mgrid[:size, :size] - (size - 1) / 2
        sectors = [xs < -abs(ys), xs > abs(ys), ys < -abs(xs), ys > abs(xs)]   # OFD ends, BPD ends
        points = np.zeros((len(images), 4, 2))
        for k, sector in enumerate(sectors):
            w = images * sector
            points[:, k] = np.stack([(w * (xs + (size - 1) / 2)).sum((1, 2)), (w * (ys + (size - 1) / 2)).sum((1, 2))],
                                    axis=1) / w.sum((1, 2))[:, None]
        return self.codec.encode(points)


def plus_frames(n=2, width=220, height=170) -> tuple[np.ndarray, np.ndarray]:
    """Frames with four 5-px blobs at a head's ends (OFD 90 px, BPD 60 px) and those points."""
    true = np.array([[60.0, 80.0], [150.0, 80.0], [105.0, 50.0], [105.0, 110.0]])
    frames = np.zeros((n, height, width), np.uint8)
    yy, xx = np.mgrid[:height, :width]
    for x, y in true:
        frames[:, (xx - x) ** 2 + (yy - y) ** 2 <= 6] = 255
    return frames, np.repeat(true[None], n, axis=0)


@pytest.mark.parametrize("passes", [1, 2])
def test_refine_frames_maps_the_crop_points_back_to_the_frame(passes):
    """A coarse head 8 px off and 15 % too long: the crop around it still holds the blobs and the
    refinement's points, mapped back, are on them (to half an original pixel); a head that is not
    finite gets the whole frame."""
    from fhbiometry.codecs import make_codec
    from fhbiometry.refinement.apply import refine_frames

    codec = make_codec("regression", 48, tiny_params()["codec"])
    frames, true = plus_frames()
    centre = true.mean(axis=1, keepdims=True)
    heads = centre + 1.15 * (true - centre) + np.array([8.0, -5.0])
    heads[1] = np.nan
    crop = {"size": 48, "context": 1.35}
    out = refine_frames(SectorBackend(codec), codec, frames, heads, crop, passes=passes, flip=True)
    assert out.whole_frame == 1
    assert np.abs(out.points[0] - true[0]).max() < 0.5, out.points[0]
    assert out.flip_points.shape == out.points.shape
    assert out.peak is None
    if passes == 2:   # the second crop is around the refined head: the whole-frame one too
        assert np.abs(out.points[1] - true[1]).max() < 0.5, out.points[1]

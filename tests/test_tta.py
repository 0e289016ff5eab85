"""Test-time augmentation by rotation and zoom (inference/tta.py) and the intervals' ``tta`` score
(trust/intervals.py): the passes map back onto the plain pass, their spread is the score, the
evaluate stage records the transforms and ``fhbiometry predict`` runs them."""
import json

import numpy as np
import pytest

from fhbiometry.config.sections_model import Intervals
from fhbiometry.trust import intervals as iv

torch = pytest.importorskip("torch")
from fhbiometry.inference import tta  # noqa: E402  (imports torch)
from test_refinement import SectorBackend, tiny_params  # noqa: E402

TRANSFORMS = ((-8.0, 1.0), (8.0, 1.0), (0.0, 0.9), (0.0, 1.1))   # params.yaml's


def plus_images(n=2, size=64):
    """Inputs with four bright blobs (OFD 40 px, BPD 28 px) around the centre, and their points."""
    c = (size - 1) / 2
    true = np.array([[c - 20, c], [c + 20, c], [c, c - 14], [c, c + 14]])
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size), np.uint8)
    for x, y in true:
        images[:, (xx - x) ** 2 + (yy - y) ** 2 <= 4] = 255
    return images, true


def test_points_follow_the_image_and_map_back():
    images, true = plus_images(1)
    for degrees, zoom in TRANSFORMS + ((20.0, 1.2),):
        moved = tta.transform_images(images, degrees, zoom)[0].astype(np.float64)
        where = tta.transform_points(true, degrees, zoom, 64)
        for p in where:                                  # the blob's centroid lies where the point went
            yy, xx = np.mgrid[:64, :64]
            near = ((xx - p[0]) ** 2 + (yy - p[1]) ** 2 <= 16) * moved
            centroid = np.array([(near * xx).sum(), (near * yy).sum()]) / near.sum()
            assert np.abs(centroid - p).max() < 0.3, (degrees, zoom, centroid, p)
        back = tta.untransform_points(where, degrees, zoom, 64)
        np.testing.assert_allclose(back, true, atol=1e-9)
    # a positive angle turns the content counter-clockwise on the screen (y down): right end goes up
    assert tta.transform_points(true[1], 10.0, 1.0, 64)[1] < true[1][1]


def test_the_passes_agree_with_the_plain_pass_on_a_clean_image():
    """A stand-in network that finds the blobs: every transformed pass, mapped back, lands on the
    plain pass's points (an unmapped pass is 2 to 3 px off, a wrong sign twice that)."""
    from fhbiometry.codecs import make_codec

    codec = make_codec("regression", 64, tiny_params()["codec"])
    backend = SectorBackend(codec)
    images, true = plus_images()
    plain = codec.decode(backend.outputs(images)).points
    passes = tta.tta_points(backend, codec, images, TRANSFORMS)
    assert passes.shape == (len(TRANSFORMS), 2, 4, 2)
    assert np.abs(passes - plain[None]).max() < 0.5
    spread = iv.tta_spread(iv.target_values(plain), passes)
    assert spread.shape == (2, 3)
    assert spread.max() < 0.01
    unmapped = np.stack([codec.decode(backend.outputs(tta.transform_images(images, d, z))).points
                         for d, z in TRANSFORMS])
    assert np.abs(unmapped - plain[None]).max() > 2.0


def test_tta_spread_is_the_relative_sd_over_the_passes():
    base = np.array([[[0.0, 0.0], [100.0, 0.0], [50.0, -40.0], [50.0, 40.0]]])   # OFD 100, BPD 80
    longer = base.copy()
    longer[:, 1, 0] = 110.0                                                      # OFD 110 in one pass
    spread = iv.tta_spread(iv.target_values(base), np.stack([base, longer]))
    assert spread[0, 1] == pytest.approx(np.std([100, 100, 110]) / 100)           # OFD
    assert spread[0, 0] == pytest.approx(0.0, abs=1e-12)                           # BPD unchanged
    features = {"geometry": np.zeros(1), "flip": np.zeros((1, 3)), "peak": np.zeros(1), "tta": spread}
    np.testing.assert_allclose(iv.raw_score(features, "tta"), spread)
    features.pop("tta")
    with pytest.raises(ValueError, match="tta_rotations_deg"):
        iv.raw_score(features, "tta")


def test_transforms_come_from_params_and_are_validated():
    cfg = Intervals().model_dump()
    assert tta.transforms_from(cfg) == TRANSFORMS
    assert tta.transforms_from({"tta_rotations_deg": [], "tta_scales": []}) == ()
    for bad in ({"tta_scales": [3.0]}, {"tta_rotations_deg": [90]}):
        with pytest.raises(Exception, match="tta_"):
            Intervals(**bad)


def test_predict_runs_the_calibrated_passes(tmp_path):
    """A calibration with score ``tta`` (relative scale): each frame's half-width is q x (its tta
    spread + the floor) x its value, the spread differing between frames; the transforms come from
    the calibration (a calibration without them says how to fix it)."""
    from conftest import untrained_checkpoint
    from fhbiometry.measure.api import measure
    from fhbiometry.measure.intervals import tta_transforms
    from predict_helpers import make_inputs
    import shutil
    from pathlib import Path

    torch.set_num_threads(1)
    (tmp_path / "models").mkdir()
    untrained_checkpoint(tmp_path / "models/heatmap.safetensors")
    shutil.copy(Path(__file__).resolve().parents[1] / "params.yaml", tmp_path / "params.yaml")
    q, floor = 2.0, 0.01
    calib = {"level": 0.9, "score": "tta", "scale": "relative", "n": 20, "tta_transforms": [[8, 1], [0, 1.1]],
             "floor": {t: floor for t in iv.TARGETS}, "quantile": {t: q for t in iv.TARGETS},
             "cine_quantile": {t: 1.0 for t in iv.TARGETS}}
    (tmp_path / "metrics/eval").mkdir(parents=True)
    (tmp_path / "metrics/eval/heatmap.json").write_text(json.dumps({"intervals": {"calibration": calib}}))
    inputs = make_inputs(tmp_path / "in")
    result = measure([inputs["dicom"]], model=tmp_path / "models/heatmap.safetensors", measure_rejected=True)
    f = result.frames
    u = (f["bpd_px_hi"] - f["bpd_px"]) / f["bpd_px"] / q - floor      # the frames' tta spread
    assert (u >= -1e-9).all()
    assert u.max() > u.min() + 1e-6                                   # it differs from frame to frame
    assert result.settings.intervals["score"] == "tta"
    assert tta_transforms(calib) == ((8.0, 1.0), (0.0, 1.1))
    with pytest.raises(ValueError, match="dvc repro evaluate"):
        tta_transforms({**calib, "tta_transforms": []})


def test_a_refinement_runs_the_passes_on_its_crops():
    """``fhbiometry predict`` with a refinement: the passes on the head-normalised crops, mapped
    back to the frame, land on the refined points."""
    from fhbiometry.codecs import make_codec
    from fhbiometry.refinement.apply import refine_frames
    from test_refinement import plus_frames

    codec = make_codec("regression", 48, tiny_params()["codec"])
    frames, true = plus_frames()
    out = refine_frames(SectorBackend(codec), codec, frames, true + 2.0, {"size": 48, "context": 1.35},
                        tta=TRANSFORMS)
    assert out.tta_points.shape == (len(TRANSFORMS),) + out.points.shape
    assert np.abs(out.tta_points - out.points[None]).max() < 0.5
    assert refine_frames(SectorBackend(codec), codec, frames, true, {"size": 48, "context": 1.35}).tta_points is None

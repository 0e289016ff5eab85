"""Size calibration (calibration.py): factors from validation frames, applied about each midpoint."""
from __future__ import annotations

import numpy as np
import pytest

from fhbiometry.trust import calibration
from fhbiometry.core.geometry import diameters, ellipse_landmarks


def heads(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([ellipse_landmarks(rng.uniform(200, 400), rng.uniform(150, 300), a, a * rng.uniform(0.7, 0.9),
                                       rng.uniform(-1, 1)) for a in rng.uniform(60, 200, n)])


def test_factors_undo_a_uniform_shrinkage():
    true = heads()
    pred = calibration.apply_factors(true, {"ofd": 0.98, "bpd": 0.985})      # a model that measures small
    f = calibration.estimate_factors(pred, true)
    assert f["ofd"] == pytest.approx(1 / 0.98)
    assert f["bpd"] == pytest.approx(1 / 0.985)
    assert f["n"] == 20
    fixed = calibration.apply_factors(pred, f)
    np.testing.assert_allclose(fixed, true, atol=1e-9)


def test_apply_keeps_centre_and_direction():
    p = heads(3)
    q = calibration.apply_factors(p, {"ofd": 1.1, "bpd": 0.9})
    for k in (0, 1):
        ends_p, ends_q = p[:, 2 * k:2 * k + 2], q[:, 2 * k:2 * k + 2]
        np.testing.assert_allclose(ends_q.mean(axis=1), ends_p.mean(axis=1))
        dp, dq = ends_p[:, 1] - ends_p[:, 0], ends_q[:, 1] - ends_q[:, 0]
        np.testing.assert_allclose(dp[:, 0] * dq[:, 1] - dp[:, 1] * dq[:, 0], 0, atol=1e-9)   # parallel
    np.testing.assert_allclose(diameters(q), diameters(p) * [1.1, 0.9])
    np.testing.assert_array_equal(calibration.apply_factors(p, None), p)


def test_median_ignores_a_wild_frame_and_unlabelled_ones():
    true = heads(11)
    pred = calibration.apply_factors(true, {"ofd": 0.99, "bpd": 0.99})
    pred[0] *= 3.0                                        # one frame far off
    true[1] = np.nan                                      # one frame without a label
    f = calibration.estimate_factors(pred, true)
    assert f["n"] == 10
    assert f["ofd"] == pytest.approx(1 / 0.99)


def test_too_few_frames_is_an_error_that_names_the_fix():
    true = heads(3)
    with pytest.raises(ValueError, match="decode.size_calibration: none"):
        calibration.estimate_factors(true, true)


def test_schema_choices_are_the_methods():
    from fhbiometry.config.sections_model import Decode

    allowed = Decode.model_fields["size_calibration"].annotation
    assert calibration.METHODS == ("none", "validation")
    assert set(allowed.__args__) == set(calibration.METHODS)

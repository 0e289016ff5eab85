"""The figures training chooses its best epoch on (``training.validation.validate``).

A module of its own, importing only ``core``, so that the train stages depend on these few
lines and not on every evaluation metric (dvc.yaml: editing ``errors`` or ``breakdown`` reruns
the evaluations, never the training). The same conventions as ``errors`` (pair-invariant radial
errors, the MRE over all landmarks).
"""
from __future__ import annotations

import numpy as np

from fhbiometry.core.geometry import diameters, pair_invariant_errors, to_mm
from fhbiometry.core.letterbox import to_original


def validation_metrics(pred_in, val: dict) -> dict:
    """MRE (px, mm) and BPD/OFD absolute errors (mm) of input-pixel predictions on the prepared
    arrays ``val`` (the figures training chooses its best epoch on).

    Plain means (a NaN prediction makes the figure NaN, so that epoch is never the best); the
    diameter errors are taken in pixels and then scaled (|a - b| x spacing), which can differ
    from ``errors.diameter_errors_mm`` in the last bit: kept so, because the best epoch of every
    trained model was chosen on exactly these numbers."""
    pred = to_original(pred_in, np.asarray(val["transform"], np.float64))
    true = np.asarray(val["points_orig"], np.float64)
    spacing = np.asarray(val["spacing_mm"], np.float64)
    err_px = pair_invariant_errors(pred, true)
    err_mm = to_mm(err_px, spacing)
    diam_err = to_mm(np.abs(diameters(pred) - diameters(true)), spacing)
    return {"mre_px": float(err_px.mean()), "mre_mm": float(err_mm.mean()),
            "ofd_mae_mm": float(diam_err[:, 0].mean()), "bpd_mae_mm": float(diam_err[:, 1].mean())}

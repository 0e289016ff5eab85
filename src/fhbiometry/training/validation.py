"""Validation during training: the frames validated on, and the figures the best epoch is
chosen on (``metrics.validation.validation_metrics``: keep them bit-identical, or every trained
model's best epoch may change)."""
from __future__ import annotations

import numpy as np

from fhbiometry.data.prepare import accepted_rows, select
from fhbiometry.inference.runner import predict
from fhbiometry.metrics.validation import validation_metrics


def training_frames(train_data: dict, val_data: dict) -> tuple[dict, dict]:
    """The training and validation frames the QC policy accepts (``prepare.accepted_rows``);
    stops with the fix when either split has none."""
    train = select(train_data, accepted_rows(train_data))
    val = select(val_data, accepted_rows(val_data))
    if len(train["image"]) == 0:
        raise ValueError("data/prepared/train.npz has no frame with use_for_training and finite points: "
                         "check qc.policy and split.fractions")
    if len(val["image"]) == 0:
        raise ValueError("data/prepared/val.npz has no frame the QC policy accepts: the best epoch cannot be "
                         "chosen; give the val split a share in split.fractions")
    return train, val


def validate(model, codec, val: dict) -> dict:
    """``metrics.validation.validation_metrics`` of the model on the validation arrays, and the mean
    heatmap peak where the codec gives one."""
    decoded, _ = predict(model, codec, val["image"])
    metrics = validation_metrics(decoded.points, val)
    if decoded.peak is not None:  # a mean peak near 0 means the model sits at an all-zero output
        metrics["peak"] = float(np.mean(decoded.peak))
    return metrics

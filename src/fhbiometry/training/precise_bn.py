"""Precise BatchNorm statistics: before a validation, recompute every BatchNorm layer's running
mean and variance as the plain average over the (un-augmented) training frames, instead of the
exponential average (momentum 0.1) of the last few augmented batches that training leaves.

Why it was tried (docs/reproduction.md, "Precise BatchNorm statistics"): a regressor's validation
error jumped by millimetres from one epoch to the next even at a learning rate near 0, where the
weights barely move. Measured on three seeds it smooths the validation curve but does not narrow
the seed-to-seed spread, so it is off by default. As fvcore / Detectron2's PreciseBN and Wu &
Johnson 2021 ("Rethinking 'Batch' in BatchNorm"). Forward passes only: no gradient, no random
number, so the training trajectory itself is unchanged.
"""
from __future__ import annotations

import numpy as np
import torch

from fhbiometry.models.networks import to_tensor


def batchnorm_layers(model: torch.nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def recalibrate(model: torch.nn.Module, images, batch_size: int, to_device=lambda x: x) -> int:
    """Recompute ``model``'s BatchNorm running statistics over ``images`` ((N, S, S) uint8), in
    near-equal batches of at most ``batch_size`` (the training batch: the per-batch statistics
    training sees).
    Each layer's running mean / variance become the mean over batches of the batch means / unbiased
    variances (``momentum=None``). Restores the layers' momentum and the model's train / eval mode.
    Returns the number of layers recalibrated (0: the model has no BatchNorm, nothing done)."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    images = np.asarray(images)
    if len(images) == 0:
        raise ValueError("precise BatchNorm needs at least one training frame")
    momenta = [m.momentum for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = None          # cumulative average over the batches below
    model.train()
    try:
        with torch.no_grad():
            for idx in np.array_split(np.arange(len(images)), max(1, -(-len(images) // int(batch_size)))):
                model(to_device(to_tensor(images[idx])))
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    return len(layers)

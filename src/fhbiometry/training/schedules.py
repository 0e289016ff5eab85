"""Learning-rate schedules and optimisers: the registries ``core.choices.SCHEDULES`` and
``core.choices.OPTIMIZERS`` point at the functions below (params ``train.schedule``,
``train.optimizer``)."""
from __future__ import annotations

import math

import torch

from fhbiometry.core.choices import OPTIMIZERS, SCHEDULES

STEP_MILESTONES = (0.5, 0.75)  # 'step' schedule: lr x 0.1 at these fractions of the post-warm-up steps
STEP_GAMMA = 0.1
SGD_MOMENTUM = 0.9


def cosine(progress: float) -> float:
    """Cosine from 1 to 0 over the post-warm-up steps."""
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def step(progress: float) -> float:
    """x0.1 at half and at three quarters of the post-warm-up steps."""
    return STEP_GAMMA ** sum(progress >= m for m in STEP_MILESTONES)


def constant(progress: float) -> float:
    return 1.0


def lr_factor(step_index: int, steps_per_epoch: int, epochs: int, schedule: str, warmup_epochs: float) -> float:
    """Learning-rate multiplier of optimisation step ``step_index`` (0-based): linear warm-up over
    ``warmup_epochs``, then the ``schedule`` (a name of ``SCHEDULES``) of the progress in [0, 1)."""
    shape = SCHEDULES.get(schedule)
    total = epochs * steps_per_epoch
    warm = min(total, int(round(warmup_epochs * steps_per_epoch)))
    if step_index < warm:
        return (step_index + 1) / warm
    return shape((step_index - warm) / max(1, total - warm))


def adamw(parameters, lr: float, weight_decay: float):
    """AdamW; ``fused``: one multi-threaded kernel per step (deterministic)."""
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=True)


def sgd(parameters, lr: float, weight_decay: float):
    """Nesterov SGD; ``fused`` as ``adamw``."""
    return torch.optim.SGD(parameters, lr=lr, momentum=SGD_MOMENTUM, nesterov=True,
                           weight_decay=weight_decay, fused=True)


def make_optimizer(model, name: str, lr: float, weight_decay: float):
    """The optimiser ``name`` (a name of ``OPTIMIZERS``) of ``model``'s parameters."""
    return OPTIMIZERS.get(name)(model.parameters(), lr=lr, weight_decay=weight_decay)

"""Reading params.yaml: the one place for every knob."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import yaml


class ParamError(ValueError):
    """A value in params.yaml is missing or wrong; the message names the key and the fix."""


def load_params(path="params.yaml") -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamError(f"{path} not found: run the stage from the repository root")
    with open(path) as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict):
        raise ParamError(f"{path} must hold a mapping of sections")
    return params


def get(params: dict, dotted: str):
    """``get(p, "codec.stride")``; raises ParamError naming the missing key."""
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamError(f"params.yaml: missing key '{dotted}' (see README, section Parameters)")
        node = node[part]
    return node


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ParamError(f"params.yaml: {name} = {value!r}; choose one of {list(choices)}")


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy and (when imported) PyTorch, and make PyTorch deterministic on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a requirement
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if threads:
        torch.set_num_threads(int(threads))

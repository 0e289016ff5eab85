"""Checkpoints that execute nothing when loaded: the weights as safetensors, everything else as
one JSON document in the safetensors header (key ``fhbiometry``).

``torch.load`` of a pickle runs whatever code the file holds; a safetensors file is a JSON header
and raw tensor bytes, so reading one (even a crafted one) cannot run code. The metadata is checked
against the params schema (``config.checkpoint_meta``) before any model is built. Every load error
names the file and the fix.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from fhbiometry.config.checkpoint_meta import CheckpointError, checkpoint_meta_lines

META_KEY = "fhbiometry"
FORMAT = 1
REQUIRED = ("arch", "kind", "codec", "input", "landmarks")


def save_checkpoint(path, state_dict: dict, meta: dict) -> Path:
    """Write ``state_dict`` (name -> tensor) and the JSON-able ``meta`` to ``path``; the same
    content always gives the same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    text = json.dumps({"format": FORMAT, **meta}, sort_keys=True, allow_nan=True)
    save_file(tensors, str(path), metadata={META_KEY: text})
    return path


def read_checkpoint(path, fix: str = "") -> tuple[dict, dict]:
    """(state_dict, meta) of a checkpoint written by ``save_checkpoint``."""
    path = Path(path)
    fix = fix or f"rerun `dvc repro train@{path.stem}`"
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: {fix}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            text = (f.metadata() or {}).get(META_KEY)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({type(err).__name__}: "
                              f"{str(err)[:120]}); it may be truncated, empty, or a pickle (.pt) file, "
                              f"which is never loaded because it can run code: {fix}") from err
    if text is None:
        raise CheckpointError(f"{path} has no '{META_KEY}' metadata: it is not a fhbiometry checkpoint: {fix}")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: the '{META_KEY}' metadata is not JSON ({err}): {fix}") from err
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: checkpoint metadata lacks {missing}: {fix}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, this code reads {FORMAT}: {fix}")
    lines = checkpoint_meta_lines(meta, f"{path} (checkpoint metadata)")
    if lines:
        raise CheckpointError("\n".join(lines) + f"\n{path}: this checkpoint's settings are not ones params.yaml "
                              f"allows, so its model cannot be rebuilt: {fix}")
    return state, meta


def state_dict_copy(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}

"""A refinement's params (``refine.<name>``) as the training loop and the evaluation read a model's."""
from __future__ import annotations

import copy
from pathlib import Path

from fhbiometry.config.sections_refine import CROP_KEYS, model_section


def refine_params(params: dict, name: str) -> dict:
    """``params`` as the training loop and the evaluation read them for the refinement ``name``:
    ``models`` holds it alone (its model keys) and ``input`` is its crop (``size``, letterbox)."""
    section = params["refine"][name]
    out = {k: copy.deepcopy(v) for k, v in params.items() if k not in ("models", "refine", "input")}
    out["models"] = {name: model_section(section)}
    out["input"] = {"size": int(section["size"]), "resize": "letterbox"}
    return out


def crop_settings(params: dict, name: str) -> dict:
    """What a refinement crops (stored in its checkpoint's metadata as ``refine``)."""
    return {k: params["refine"][name][k] for k in CROP_KEYS}


def coarse_checkpoint(model, meta: dict, coarse=None) -> Path:
    """The coarse model of the refinement checkpoint ``model`` (its metadata ``meta``): ``coarse``
    when given, else ``<refine.coarse>.safetensors`` beside it (as ``dvc repro`` writes them)."""
    if coarse is not None:
        return Path(coarse)
    return Path(model).with_name(f"{meta['refine']['coarse']}.safetensors")

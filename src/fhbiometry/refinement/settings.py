"""A refinement's params (``refine.<name>``) as the training loop and the evaluation read a model's."""
from __future__ import annotations

import copy

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

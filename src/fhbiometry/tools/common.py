"""Helpers shared by the tools: nested dicts as dotted keys, and the model list of params.yaml."""
from __future__ import annotations


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: every leaf under its dotted key, in order."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def model_names(params: dict) -> list[str]:
    """The models of params.yaml (section ``models``), in the order they are listed there."""
    return list(params["models"])

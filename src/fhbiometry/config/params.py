"""Reading params.yaml: the one place for every knob."""
from __future__ import annotations

import sys

from fhbiometry.config.messages import ParamError
from fhbiometry.config.schema import read_yaml, validate_params

__all__ = ["ParamError", "load_params", "run_stage", "select"]


def load_params(path="params.yaml", only=None, model: str | None = None) -> dict:
    """params.yaml validated against the one schema (``schema.Params``), as a plain dict: the file's
    nesting and key order, defaults only where the file omits an optional key. Raises one
    ParamError listing every problem (key path, value, what is allowed).

    ``only``: the dotted keys a stage reads (its ``PARAMS``; ``{model}`` is replaced by ``model``):
    the stage gets those and nothing else, so the params dvc.yaml lists for it are all it can use.
    """
    params = validate_params(read_yaml(path), source=str(path))
    if only is None:
        return params
    return select(params, [key.format(model=model) for key in only], source=str(path))


def select(params: dict, keys, source: str = "params.yaml") -> dict:
    """A nested copy of ``params`` holding only the dotted ``keys``."""
    out: dict = {}
    for key in keys:
        node, target, parts = params, out, key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                have = sorted(node) if isinstance(node, dict) else []
                raise ParamError(f"{source}: no key '{key}' ('{'.'.join(parts[:i]) or '<top>'}' has {have})")
            node = node[part]
            if i < len(parts) - 1:
                target = target.setdefault(part, {})
        target[parts[-1]] = node
    return out


def run_stage(main) -> None:
    """Run a stage's ``main``: a ParamError (a wrong or missing value in params.yaml) prints its
    message alone, without a traceback, and the stage exits with status 2."""
    try:
        main()
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

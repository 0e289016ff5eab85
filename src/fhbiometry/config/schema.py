"""The one schema of params.yaml (pydantic v2): every key, its type and its allowed values.

``validate_params(raw)`` checks a whole params mapping at once and raises one ``ParamError``
listing every problem on its own line, each naming the key path, the value and what is allowed;
unknown keys get a "did you mean" suggestion. Types are strict: no string -> bool or
string -> number coercion (an int is accepted where a number is asked for). The result is a
plain dict in the file's nesting and key order, with defaults only where the file omits an
optional key. ``model_config`` merges ``train`` with one ``models.<name>`` section;
``validate_config`` checks a configuration under configs/ (a partial override or an ablation
ladder) merged onto params.yaml.

The sections are in ``sections_data`` and ``sections_model``, their field types in ``fields``,
the messages in ``messages``. Every choice that code implements (architectures, kinds, decoders,
coordinates, losses, schedules, optimisers, split names, devices) comes from ``core.choices``,
where the implementing registries are: a name registered there is valid here.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from fhbiometry.config.documents import deep_merge, read_yaml, unflatten
from fhbiometry.config.fields import Bool, NonEmptyText, NonNegativeWhole, PositiveWhole, Section
from fhbiometry.config.ladders import ladder_lines, ladder_rows
from fhbiometry.config.messages import Hint, ParamError, error_lines, message, problems, shown
from fhbiometry.config.sections_data import QC, Data, Split, Synthesize
from fhbiometry.config.sections_model import (Codec, Decode, Device, Evaluate, Input, Intervals, Landmarks,
                                              ModelSection, Plots, Train, model_rules)
from fhbiometry.config.sections_refine import RefineSection, refine_rules
from fhbiometry.core.choices import DEFAULT_HEAD_CHANNELS, DEFAULT_HEAD_SKIPS

__all__ = ["Params", "deep_merge", "model_config", "read_yaml", "unflatten", "validate_config",
           "validate_lines", "validate_params"]

Models = Annotated[dict[str, ModelSection], Field(min_length=1),
                   Hint("must be a mapping of model name -> model section (at least one)")]


class Params(Section):
    seed: NonNegativeWhole
    threads: PositiveWhole
    launcher: Annotated[NonEmptyText, Hint("must be the command that starts a stage's Python entry point, "
                                           "e.g. 'python' or 'torchrun --nproc_per_node 2'")] = "python"
    device: Device = Field(default_factory=Device)
    synthesize: Synthesize
    data: Data
    qc: QC
    split: Split
    input: Input
    landmarks: Landmarks
    codec: Codec
    decode: Decode
    train: Train
    models: Models
    evaluate: Evaluate
    plots: Plots
    intervals: Intervals = Field(default_factory=Intervals)
    refine: Annotated[dict[str, RefineSection], Hint("must be a mapping of refinement name -> refinement "
                                                     "section ({} for none)")] = Field(default_factory=dict)

    @field_validator("models", mode="after")
    @classmethod
    def _model_rules(cls, models, info):
        train = info.data.get("train")
        if train is None:          # train itself is invalid: reported there
            return models
        found = []
        for name, own in models.items():
            found += [(f"{name}.{key}", value, hint) for key, value, hint in model_rules(train, own)]
        if found:
            raise problems(*found)
        return models

    @model_validator(mode="after")
    def _size_and_stride(self):
        if self.input.size % self.codec.stride:
            raise problems(("input.size", self.input.size,
                            f"must be a multiple of codec.stride ({self.codec.stride})"))
        found = []
        for name, own in self.refine.items():
            found += [(f"refine.{name}" + (f".{key}" if key else ""), value, hint)
                      for key, value, hint in refine_rules(name, own, self.models, self.codec.stride)]
            found += [(f"refine.{name}.{key}", value, hint) for key, value, hint in model_rules(self.train, own)]
        if found:
            raise problems(*found)
        return self


def plain(value, raw):
    """A validated value as plain dicts / lists, keys in the file's order, then defaults."""
    if isinstance(value, BaseModel):
        raw = raw if isinstance(raw, dict) else {}
        fields = type(value).model_fields
        keys = [k for k in raw if k in fields]
        if not value.overrides_only:
            keys += [k for k in fields if k not in raw]
        return {k: plain(getattr(value, k), raw.get(k)) for k in keys}
    if isinstance(value, dict):
        raw = raw if isinstance(raw, dict) else {}
        return {k: plain(v, raw.get(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, None) for v in value]
    return value


def validate_lines(raw, source: str) -> tuple[dict | None, list[str]]:
    """(the validated params or None, the lines of every problem)."""
    if not isinstance(raw, dict):
        return None, [f"{source}: must hold a mapping of sections {list(Params.model_fields)}, got {shown(raw)}"]
    try:
        return plain(Params.model_validate(raw), raw), []
    except ValidationError as exc:
        return None, [text for err in exc.errors() for text in error_lines(Params, err, raw, source)]


def validate_params(raw: dict, source: str = "params.yaml") -> dict:
    """The validated params as a plain dict; raises one ParamError listing every problem."""
    params, lines = validate_lines(raw, source)
    if lines:
        raise ParamError(message(lines))
    return params


def model_config(params: dict, name: str) -> dict:
    """The merged, validated settings of ``models.<name>``: every ``train`` key, overridden by the
    model's own keys (``augment`` key by key), plus arch, kind, head_channels and head_skips.
    ``params`` is validated already (``params.load_params``; it may hold only the stage's keys)."""
    if name not in params["models"]:
        raise ParamError(f"params.yaml: models.{name}: no such model; choose one of {list(params['models'])}")
    own = params["models"][name]
    cfg = copy.deepcopy(params["train"])
    cfg.update({k: copy.deepcopy(v) for k, v in own.items() if k != "augment"})
    cfg["augment"] = {**params["train"]["augment"], **own.get("augment", {})}
    cfg.setdefault("head_channels", DEFAULT_HEAD_CHANNELS)
    cfg.setdefault("head_skips", DEFAULT_HEAD_SKIPS)
    return cfg


def model_codec_params(params: dict, cfg: dict) -> dict:
    """params ``codec`` with the model's own target setting: ``contour_weight``, the weight of the
    contour codec's skull band in the loss (other codecs ignore it): the model's ``contour_weight``
    when set, else 1 where the labels come from an ellipse (``data.label_source: ellipse``, whose
    four points are the annotated ellipse's axis ends, so the band is the annotated skull) and 0
    for a landmark table (``csv``: four points that need not be an ellipse's axis ends; the model
    then trains without the contour term and decodes from its landmarks)."""
    weight = cfg.get("contour_weight")
    if weight is None:
        source = (params.get("data") or {}).get("label_source")
        if source is None:
            raise ParamError("params: data.label_source is needed to choose the contour term's weight "
                             "(declare it in the stage's params, or set models.<name>.contour_weight)")
        weight = 1.0 if source == "ellipse" else 0.0
    return {**params["codec"], "contour_weight": float(weight)}


def validate_ladder(path: Path, ladder: dict, params: dict, root: Path) -> dict:
    """Every row of a ladder validated: {row name: params}; one ParamError for every problem."""
    out, lines, seen = {}, [], set()
    for name, row_params in ladder_rows(ladder, params, root):
        result, found = validate_lines(row_params, f"{path} row {name!r}")
        for text in found:
            problem = text.split(": ", 1)[1]
            if problem not in seen:
                seen.add(problem)
                lines.append(text)
        out[name] = result
    if lines:
        raise ParamError(message(lines))
    return out


def validate_config(path, params_path="params.yaml") -> dict:
    """Validate a configuration under configs/ merged onto params.yaml: a partial params file
    (deep merge), or an ablation ladder (``ladders``). Returns {name: params} (the file's stem,
    or each row's name); raises one ParamError listing every problem."""
    path, params_path = Path(path), Path(params_path)
    params = read_yaml(params_path)
    if not isinstance(params, dict):
        validate_params(params, str(params_path))
    config = read_yaml(path, "configuration") or {}
    if not isinstance(config, dict):
        raise ParamError(f"{path}: must hold a mapping, got {shown(config)}")
    if "rows" not in config:
        result, lines = validate_lines(deep_merge(params, config), f"{path} (on {params_path.name})")
        if lines:
            raise ParamError(message(lines))
        return {path.stem: result}
    lines = ladder_lines(path, config)
    if lines:
        raise ParamError(message(lines))
    return validate_ladder(path, config, params, params_path.parent)

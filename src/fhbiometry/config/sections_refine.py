"""The params section ``refine``: head-normalised refinements (stages ``refine_crops``,
``train_refine``, ``evaluate_refine``; docs/hc18.md, "A head-normalised refinement").

``refine.<name>`` names a second network that sees a crop of the original frame centred on the
head that a coarse model (``coarse``, a key of ``models``) found, ``context`` times its longer
diameter wide, resampled to ``size`` pixels; it trains on ``copies`` crops per training frame
around the true head, moved and scaled by the coarse model's validation errors times ``jitter``.
Every other key is a model section's (``arch``, ``kind`` and any ``train`` key), as under
``models``. The crop keys have no defaults: a refinement says what it crops.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import create_model

from fhbiometry.config.fields import InputSize, NonEmptyText, NonNegative, PositiveWhole, number
from fhbiometry.config.messages import Hint
from fhbiometry.config.sections_model import ModelSection

CROP_KEYS = ("coarse", "size", "context", "copies", "jitter")

RefineSection = create_model(
    "RefineSection", __base__=ModelSection,
    coarse=(Annotated[NonEmptyText, Hint("must be the name of a model under `models` (the coarse model)")], ...),
    size=(InputSize, ...),
    context=(Annotated[number(1), Hint("must be a number > 1 (the crop's side / the coarse OFD)")], ...),
    copies=(PositiveWhole, ...),
    jitter=(NonNegative, ...),
)


def refine_rules(name: str, section, models: dict, stride: int) -> list[tuple[str, object, str]]:
    """The cross-key rules of one refinement: (key, value, hint)."""
    out = []
    if name in models:
        out.append(("", name, "must differ from every name under `models` (they share models/ and metrics/eval/)"))
    if section.coarse not in models:
        out.append(("coarse", section.coarse, f"choose one of {list(models)} (a model under `models`)"))
    if section.size % stride:
        out.append(("size", section.size, f"must be a multiple of codec.stride ({stride})"))
    return out


def model_section(section: dict) -> dict:
    """The refinement's model keys alone (what ``models.<name>`` would hold)."""
    return {k: v for k, v in section.items() if k not in CROP_KEYS}

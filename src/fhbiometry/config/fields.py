"""The field types of the params schema: a type, its constraints and a ``Hint`` (the text of its
error), and ``Section``, the base of every params section."""
from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fhbiometry.config.messages import Hint, problems
from fhbiometry.core.choices import HEATMAP_STRIDES, TRUNK_STRIDE
from fhbiometry.core.registry import Registry


class Section(BaseModel):
    """A params section: strict types, unknown keys are errors, no inf or nan."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    overrides_only: ClassVar[bool] = False   # True: a key the file omits stays omitted (no default filled in)


def check(test, hint: str = ""):
    """An AfterValidator that keeps the value when ``test(value)`` holds ('' = the key's Hint)."""
    def run(value):
        if not test(value):
            raise problems(("", None, hint))
        return value
    return AfterValidator(run)


def number(lo=None, hi=None, lo_open=True, hi_open=False):
    """A number (int or float) in the given range; ``lo_open``: lo itself excluded."""
    parts = ([f"{'>' if lo_open else '>='} {lo}"] if lo is not None else []) + \
            ([f"{'<' if hi_open else '<='} {hi}"] if hi is not None else [])
    hint = "must be a number" + (" " + " and ".join(parts) if parts else "")
    bounds = {}
    if lo is not None:
        bounds["gt" if lo_open else "ge"] = lo
    if hi is not None:
        bounds["lt" if hi_open else "le"] = hi
    return Annotated[float, Field(**bounds), Hint(hint)]


def whole(lo=None, hi=None, lo_open=False, multiple_of=None, hint=None):
    """A whole number (not a float, not a bool) in the given range."""
    bounds = {}
    parts = []
    if lo is not None:
        bounds["gt" if lo_open else "ge"] = lo
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        bounds["le"] = hi
        parts.append(f"<= {hi}")
    if multiple_of:
        bounds["multiple_of"] = multiple_of
    hint = hint or "must be a whole number" + (" " + " and ".join(parts) if parts else "")
    return Annotated[int, Field(**bounds), Hint(hint)]


def choice(values, note: str = ""):
    """One of ``values``: a tuple, or a ``Registry`` (the names registered when a file is validated,
    so an entry registered by a plug-in or a test module is valid without touching the schema)."""
    if isinstance(values, Registry):
        hint = Hint(lambda: f"choose one of {list(values.names())}{note}")
        return Annotated[str, check(lambda v: v in values), hint]
    return Annotated[Literal[values], Hint(f"choose one of {list(values)}{note}")]


def pair(lo_ok, hi_ok, strict_order=False, integer=False, lo_open=False):
    """[low, high] with lo_ok <= low <= high <= hi_ok (``strict_order``: low < high;
    ``lo_open``: 0 < low instead of lo_ok <= low)."""
    item = int if integer else float
    kind = "whole numbers" if integer else "numbers"
    first = f"{lo_ok} {'<' if lo_open else '<='} low"
    hint = f"must be two {kind} [low, high] with {first} {'<' if strict_order else '<='} high <= {hi_ok}"

    def ok(v):
        lo, hi = v
        above = lo > lo_ok if lo_open else lo >= lo_ok
        return above and (lo < hi if strict_order else lo <= hi) and hi <= hi_ok
    return Annotated[list[item], Field(min_length=2, max_length=2), check(ok, hint), Hint(hint)]


def valid_subject_regex(pattern: str) -> bool:
    try:
        return "subject" in re.compile(pattern).groupindex
    except re.error:
        return False


Bool = Annotated[bool, Hint("must be true or false (unquoted)")]
Text = Annotated[str, Hint("must be a string ('' for none)")]
NonEmptyText = Annotated[str, check(lambda s: s.strip() != ""), Hint("must be a non-empty string")]
Probability = number(0, 1, lo_open=False)
PositiveNumber = number(0)
NonNegative = number(0, lo_open=False)
PositiveWhole = whole(0, lo_open=True)
NonNegativeWhole = whole(0)
SubjectPattern = Annotated[str, check(valid_subject_regex, "must be a valid regular expression with a named "
                                                           "group (?P<subject>...)"),
                           Hint("must be a regular expression with a named group (?P<subject>...)")]
AnnotationPattern = Annotated[str, check(lambda s: not s or "{stem}" in s, "must contain {stem} (or be '')"),
                              Hint("must be a string containing {stem} (or '')")]
Stride = Annotated[int, check(lambda v: v in HEATMAP_STRIDES, f"choose one of {list(HEATMAP_STRIDES)}"),
                   Hint(f"choose one of {list(HEATMAP_STRIDES)}")]
InputSize = whole(0, lo_open=True, multiple_of=TRUNK_STRIDE,
                  hint=f"must be a positive multiple of {TRUNK_STRIDE} (the networks) and of codec.stride")
TtaRotations = Annotated[list[float], check(lambda v: all(-45 <= d <= 45 for d in v)),
                         Hint("must be a list of rotations in degrees, each in [-45, 45] (e.g. [-8, 8])")]
TtaScales = Annotated[list[float], check(lambda v: all(0.5 <= s <= 2 for s in v)),
                      Hint("must be a list of zoom factors, each in [0.5, 2] (e.g. [0.9, 1.1])")]
Thresholds = Annotated[list[float], Field(min_length=1), check(lambda v: all(t > 0 for t in v)),
                       Hint("must be a non-empty list of numbers > 0 (mm)")]

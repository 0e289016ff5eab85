"""The ParamError and its message: one line per problem, naming the file, the key path, the value
as written (shortened: a value is never printed whole, whatever its size) and what is allowed."""
from __future__ import annotations

import difflib
import itertools
import reprlib
import typing
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

MAX_LINES = 50          # problems listed in one message; the rest are counted
# keys of the previous layout -> where they live now (named in the unknown-key error)
MOVED_KEYS = {"codec.input_size": "input.size", "codec.resize": "input.resize",
              "codec.canonical_order": "landmarks.canonical_order", "codec.decode": "decode.method",
              "codec.pair_decode": "decode.pairs", "train.coordinates": "codec.coordinates"}
MISSING = object()


class ShortRepr(reprlib.Repr):
    """``reprlib.Repr`` that keeps a mapping's key order (the file's)."""

    def repr_dict(self, x, level):
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
                  for k, v in itertools.islice(x.items(), self.maxdict)]
        return "{" + ", ".join(pieces + (["..."] if len(x) > self.maxdict else [])) + "}"


_SHORT = ShortRepr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple = 3, 12, 12, 12
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 160, 160, 60


class ParamError(ValueError):
    """A value in params.yaml is missing or wrong; the message names the key and the fix."""


class Hint:
    """What a key allows, in words; the error message of every problem with that key. ``text``
    may be a function, read when a message is written (the choices of a registry)."""

    def __init__(self, text):
        self._text = text

    @property
    def text(self) -> str:
        return self._text() if callable(self._text) else self._text


def problems(*items):
    """The error of a rule: items ``(key, value, hint)``; key '' is the key being validated (its value
    as written is shown; hint '' = that key's Hint), else a dotted key below it with ``value``."""
    summary = "; ".join(hint for _, _, hint in items)
    return PydanticCustomError("param", "{summary}", {"problems": list(items), "summary": summary})


def clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value) -> str:
    """``repr(value)``, shortened: nested or long values are cut (``...``) before they are walked,
    and the text to 200 characters."""
    return clip(_SHORT.repr(value), 200)


def unwrap(annotation):
    """(the class or container behind an annotation, its Hint text or None)."""
    hint = None
    while typing.get_origin(annotation) is Annotated:
        hints = [m.text for m in annotation.__metadata__ if isinstance(m, Hint)]
        hint = hints[-1] if hints else hint
        annotation = typing.get_args(annotation)[0]
    return annotation, hint


def walk(root, loc) -> tuple[list, Any, str | None]:
    """Follow ``loc`` from the model ``root``: (the key path of the deepest key the schema names,
    the type at that key, its Hint text)."""
    node, hint, path = root, None, []
    for key in loc:
        if isinstance(node, type) and issubclass(node, BaseModel) and key in node.model_fields:
            node, hint = unwrap(node.model_fields[key].rebuild_annotation())
        elif typing.get_origin(node) is dict and isinstance(key, str):
            node, hint = unwrap(typing.get_args(node)[1])
        else:
            break
        path.append(key)
    return path, node, hint


def raw_at(raw, path):
    for key in path:
        if not isinstance(raw, dict) or key not in raw:
            return MISSING
        raw = raw[key]
    return raw


def allowed_keys(node) -> list[str]:
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def line(source: str, path, value, hint: str) -> str:
    name = ".".join(str(p) for p in path)
    value_text = "" if value is MISSING else f" = {shown(value)}"
    return f"{source}: {name}{value_text}: {hint}"


def unknown_key_line(root, loc, source: str) -> str:
    allowed = allowed_keys(walk(root, loc[:-1])[1])
    name = ".".join(map(str, loc))
    moved = MOVED_KEYS.get(name) or MOVED_KEYS.get(f"train.{loc[-1]}" if loc[0] == "models" else "")
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    fix = (f"moved to {moved!r} (the params layout changed)" if moved
           else f"did you mean {close[0]!r}?" if close else f"allowed keys: {allowed}")
    return f"{source}: {clip(name)}: unknown key; {fix}"


def error_lines(root, err: dict, raw: dict, source: str) -> list[str]:
    """One pydantic error of validating ``raw`` against ``root`` -> the lines of the message."""
    kind, loc = err["type"], tuple(err["loc"])
    if kind == "extra_forbidden":
        return [unknown_key_line(root, loc, source)]
    path, node, hint = walk(root, loc)
    if kind == "missing":
        keys = allowed_keys(node)
        what = f"missing section (keys: {keys})" if keys else f"missing key ({hint})" if hint else "missing key"
        return [f"{source}: {'.'.join(map(str, loc))}: {what}"]
    if kind == "param":
        out = []
        for key, value, text in err["ctx"]["problems"]:
            if key:
                out.append(line(source, path + key.split("."), value, text))
            else:
                out.append(line(source, path, raw_at(raw, path), text or hint or err["msg"]))
        return out
    if kind in ("model_type", "dict_type") and allowed_keys(node):
        hint = f"must be a mapping with keys {allowed_keys(node)}"
    return [line(source, path, raw_at(raw, path), hint or err["msg"])]


def message(lines: list[str]) -> str:
    """The lines without repeats, at most ``MAX_LINES`` of them."""
    unique = list(dict.fromkeys(lines))
    more = len(unique) - MAX_LINES
    return "\n".join(unique[:MAX_LINES] + ([f"... and {more} more problems"] if more > 0 else []))

"""A registry: the one list of the allowed values of one extension point (one params key), each
name pointing at the code that implements it.

An entry's target is either the object itself (``register`` used as a decorator, e.g. a decoder
added by a test or a plug-in module) or a ``"module:attribute"`` string, imported on the first
``get``: the params schema reads the names of a registry without importing torch or the
implementing module. ``meta`` holds what the schema checks across keys (e.g. the model kinds an
architecture has). Unknown names get one message listing the registered ones.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    target: Any                      # the implementation, or "module:attribute" naming it
    meta: dict = field(default_factory=dict)


class Registry:
    """Name -> implementation for the params key ``key`` (e.g. ``decode.method``)."""

    def __init__(self, key: str):
        self.key = key
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: Any = None, **meta):
        """Add ``name``. Without ``target``: a decorator that registers the function or class it
        decorates and returns it unchanged."""
        if name in self._entries:
            raise ValueError(f"{self.key}: {name!r} is registered already")
        if target is None:
            def decorate(obj):
                self._entries[name] = Entry(obj, dict(meta))
                return obj
            return decorate
        self._entries[name] = Entry(target, dict(meta))
        return target

    def unregister(self, name: str) -> None:
        del self._entries[name]

    def names(self, **where) -> tuple[str, ...]:
        """The registered names in registration order; ``where``: only entries whose ``meta[key]``
        contains the value (e.g. ``names(kinds="heatmap")``)."""
        return tuple(n for n, e in self._entries.items()
                     if all(v in e.meta.get(k, ()) for k, v in where.items()))

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def unknown(self, name) -> str:
        """The message for a value that is not registered."""
        return f"{self.key} = {name!r}: choose one of {list(self.names())}"

    def check(self, name) -> str:
        if name not in self:
            raise ValueError(self.unknown(name))
        return name

    def meta(self, name: str) -> dict:
        return self._entries[self.check(name)].meta

    def get(self, name: str):
        """The implementation of ``name`` (a ``"module:attribute"`` target is imported now)."""
        entry = self._entries[self.check(name)]
        if isinstance(entry.target, str):
            module, _, attribute = entry.target.partition(":")
            entry.target = getattr(importlib.import_module(module), attribute)
        return entry.target

"""Ablation ladders under configs/: ``base``, ``budget`` and ``rows`` of dotted ``set:``
overrides, each row on top of every row above it, plus the budget. Here: the shape of a ladder and
the params of its rows; ``schema.validate_config`` validates each row."""
from __future__ import annotations

from pathlib import Path

from fhbiometry.config.documents import deep_merge, read_yaml, unflatten

LADDER_KEYS = ("base", "budget", "rows")
ROW_KEYS = ("name", "label", "set")


def ladder_lines(path: Path, ladder: dict) -> list[str]:
    """Problems in the shape of an ablation ladder (not in the params it sets)."""
    out = [f"{path}: {k}: unknown key; allowed keys: {list(LADDER_KEYS)}" for k in ladder if k not in LADDER_KEYS]
    if not isinstance(ladder.get("base"), str):
        out.append(f"{path}: base = {ladder.get('base')!r}: must be the path of a configuration file")
    if not isinstance(ladder.get("budget", {}), dict):
        out.append(f"{path}: budget = {ladder['budget']!r}: must be a mapping of dotted keys")
    rows = ladder.get("rows")
    if not isinstance(rows, list) or not rows:
        return out + [f"{path}: rows = {rows!r}: must be a non-empty list of rows {list(ROW_KEYS)}"]
    names = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != set(ROW_KEYS) or not isinstance(row.get("set"), dict):
            out.append(f"{path}: rows[{i}] = {row!r}: must have exactly the keys {list(ROW_KEYS)}, "
                       "set a mapping of dotted keys")
            continue
        if not isinstance(row["name"], str) or not row["name"].strip():
            out.append(f"{path}: rows[{i}].name = {row['name']!r}: must be a text (it names the row's folder); "
                       "quote it: YAML reads bare on / off / yes / no as true / false")
            continue
        names.append(row["name"])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        out.append(f"{path}: rows: names must be unique; repeated: {dup}")
    return out


def ladder_rows(ladder: dict, params: dict, root: Path):
    """(row name, the params of that row: params.yaml, the base, every row up to it, the budget)."""
    merged = deep_merge(params, read_yaml(root / ladder["base"], "ladder base configuration") or {})
    for row in ladder["rows"]:
        merged = deep_merge(merged, unflatten(row["set"]))
        yield row["name"], deep_merge(merged, unflatten(ladder.get("budget") or {}))

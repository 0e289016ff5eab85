"""docs/architecture.md is the map of the code: its table names every subpackage and every module
file, and every file it names exists (so the map cannot go stale silently)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "src" / "fhbiometry"
DOC = REPO / "docs" / "architecture.md"


def rows(text: str) -> dict[str, str]:
    """Subpackage name -> its table row (``| `name/` | ...``)."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)/` \|.*$", text, flags=re.M)}


def problems(text: str, pkg: Path) -> list[str]:
    found, table = [], rows(text)
    for sub in sorted(p.parent for p in pkg.glob("*/__init__.py")):
        if sub.name not in table:
            found.append(f"subpackage {sub.name}/ has no row")
            continue
        named = set(re.findall(r"`([a-z_0-9]+\.py)`", table[sub.name]))
        files = {p.name for p in sub.glob("*.py") if p.name != "__init__.py"}
        found += [f"{sub.name}/{f} is not in its row" for f in sorted(files - named)]
        found += [f"{sub.name}/ row names {f}, which does not exist" for f in sorted(named - files)]
    for sub, name in re.findall(r"`([a-z_]+)/([a-z_0-9]+\.py)`", text):
        if not (pkg / sub / name).is_file() and not (REPO / sub / name).is_file():
            found.append(f"{sub}/{name} is named but does not exist")
    return found


def test_the_map_names_every_subpackage_and_module():
    assert problems(DOC.read_text(), PKG) == []


@pytest.mark.parametrize("edit,expected", [
    (lambda t: t.replace("`letterbox.py` (original", "(original"), "core/letterbox.py is not in its row"),
    (lambda t: t.replace("`registry.py` (`Registry`", "`registry.py`, `gone.py` (`Registry`"),
     "core/ row names gone.py, which does not exist"),
    (lambda t: t + "\nSee `data/nothing.py`.\n", "data/nothing.py is named but does not exist"),
])
def test_the_check_catches_a_stale_map(edit, expected):
    assert expected in problems(edit(DOC.read_text()), PKG)

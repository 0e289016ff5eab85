"""The layering of docs/architecture.md, checked on the imports themselves: the data stages'
modules never need torch, and nothing in the library imports the command line."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_dvc_deps import SRC, imported_names, project_closure

PKG = SRC / "fhbiometry"
# modules behind the data stages (synthesize .. prepare): numpy, pandas, Pillow, pydicom, PyAV
TORCH_FREE = ["geometry", "store", "letterbox", "paths", "params", "schema", "readers", "labels",
              "extract", "qc", "split", "neardup", "prepare", "viz", "report", "calibration", "synth/__init__"]
COMMAND_LINE = {"fhbiometry.cli", "fhbiometry.tools", "fhbiometry.__main__"}


def module_path(name: str) -> Path:
    path = PKG / f"{name}.py"
    return path if path.exists() else PKG / name / "__init__.py"


@pytest.mark.parametrize("name", TORCH_FREE)
def test_data_stage_modules_never_import_torch(name):
    path = module_path(name)
    for dep in {path} | project_closure(path):
        heavy = {n for n in imported_names(dep) if n.split(".")[0] in ("torch", "torchvision", "dvclive")}
        assert not heavy, f"{dep.relative_to(SRC)} (needed by {name}) imports {sorted(heavy)}"


def test_library_never_imports_the_command_line():
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel in ("cli.py", "__main__.py") or rel.startswith("tools/"):
            continue
        bad = {n for n in imported_names(path) if any(n == c or n.startswith(c + ".") for c in COMMAND_LINE)}
        assert not bad, f"{rel} imports the command line {sorted(bad)}"


def test_library_never_imports_stages():
    for path in PKG.rglob("*.py"):
        assert not {n for n in imported_names(path) if n.split(".")[0] == "stages"}, path

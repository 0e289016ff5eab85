"""dvc.yaml tells the truth: every stage lists exactly the project code its entry point imports
(transitively) and exactly the params it declares it reads (``PARAMS`` in stages/<stage>.py, the
only params ``load_params(only=PARAMS)`` hands to the stage)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "fhbiometry"


def module_file(name: str) -> Path | None:
    """The file of a project module (``fhbiometry.x.y``), or None for anything else."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_names(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports anywhere (functions included), with
    ``from a import b`` giving both ``a`` and ``a.b`` (``b`` may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path) if path.is_relative_to(SRC) else ""
    is_pkg = path.name == "__init__.py"
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = own.split(".")
                base_parts = parts if is_pkg else parts[:-1]
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def project_closure(entry: Path) -> set[Path]:
    """Every project file that importing/running ``entry`` executes: the transitive imports,
    with each package's ``__init__.py`` on the way."""
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return {p for p in seen if p != entry}


# the refinement every `refine` stage is checked with (params.yaml has none by default)
REFINE_EXAMPLE = {"refine_example": {"coarse": "heatmap"}}


def stages() -> dict:
    """{stage name: (entry point, deps, params)} with foreach expanded over params `models`, and
    over ``REFINE_EXAMPLE`` for the stages that iterate params `refine`."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    out = {}
    for name, stage in dvc["stages"].items():
        if "foreach" in stage:
            assert stage["foreach"] in ("${models}", "${refine}"), \
                f"{name}: foreach must iterate params `models` or `refine`"
            items = params["models"] if stage["foreach"] == "${models}" else REFINE_EXAMPLE
            for key, item in items.items():
                body = yaml.safe_dump(stage["do"]).replace("${key}", key)
                for field, value in item.items():
                    body = body.replace("${item.%s}" % field, str(value))
                out[f"{name}@{key}"] = (key, yaml.safe_load(body))
        else:
            out[name] = (None, stage)
    result = {}
    for name, (key, stage) in out.items():
        entry = re.search(r"^(?:python|\$\{launcher\}) (stages/\S+\.py)", stage["cmd"]).group(1)
        deps = [d for d in stage.get("deps", []) if isinstance(d, str)]
        params_list = [p for p in stage.get("params", []) if isinstance(p, str)]
        result[name] = (REPO / entry, deps, params_list, key)
    return result


def declared_params(entry: Path, key: str | None) -> list[str]:
    tree = ast.parse(entry.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PARAMS" for t in node.targets):
            return [p.format(model=key) for p in ast.literal_eval(node.value)]
    raise AssertionError(f"{entry} declares no PARAMS")


def code_deps(deps: list[str]) -> set[Path]:
    """Project source files covered by ``deps`` (a folder dep covers every .py file under it)."""
    files = set()
    for dep in deps:
        path = REPO / dep
        if dep.startswith("src/") and path.is_dir():
            files.update(path.rglob("*.py"))
        elif dep.startswith("src/"):
            files.add(path)
    return files


STAGES = stages()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_exactly_the_code_it_imports(stage):
    entry, deps, _, _ = STAGES[stage]
    assert entry.relative_to(REPO).as_posix() in deps, f"{stage}: its entry point {entry} is not a dep"
    imported = project_closure(entry)
    listed = code_deps(deps)
    missing = sorted(p.relative_to(REPO).as_posix() for p in imported - listed)
    unused = sorted(p.relative_to(REPO).as_posix() for p in listed - imported)
    assert not missing, f"dvc.yaml stage {stage}: imports but does not list {missing}"
    assert not unused, f"dvc.yaml stage {stage}: lists but never imports {unused}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_exactly_the_params_it_reads(stage):
    entry, _, params, key = STAGES[stage]
    assert sorted(params) == sorted(declared_params(entry, key)), (
        f"dvc.yaml stage {stage}: params {sorted(params)} differ from PARAMS in {entry.name}")


def test_the_check_fails_when_a_dep_is_dropped():
    """The checker itself: dropping one imported module from a stage's deps is caught."""
    entry, deps, _, _ = STAGES["prepare"]
    imported = project_closure(entry)
    dropped = [d for d in deps if d.startswith("src/") and (REPO / d) in imported][0]
    remaining = code_deps([d for d in deps if d != dropped])
    assert imported - remaining == {REPO / dropped}


def test_closure_follows_relative_and_lazy_imports():
    closure = {p.relative_to(SRC).as_posix() for p in project_closure(REPO / "stages/evaluate.py")}
    assert "fhbiometry/inference/runner.py" in closure        # imported inside a function
    assert "fhbiometry/codecs/decoders.py" in closure  # relative import two levels down
    assert "fhbiometry/__init__.py" in closure

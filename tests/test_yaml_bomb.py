"""A YAML alias bomb in params.yaml (issue 18, item 7): a ~9 KB file of nested anchors and aliases
that expands to billions of nodes is refused at load, quickly, naming the file; an error message
never prints a value whole."""
import copy
import time
from pathlib import Path

import pytest
import yaml

from fhbiometry.config import schema
from fhbiometry.config.documents import MAX_NODES, load_yaml_text
from fhbiometry.config.messages import shown
from fhbiometry.config.params import ParamError, load_params

REPO = Path(__file__).resolve().parents[1]


def bomb_text(levels: int = 9, width: int = 9) -> str:
    """The committed params.yaml with ``plots`` replaced by ``levels`` anchors, each a list of
    ``width`` aliases of the one before: width ** levels leaves (9 ** 9 = 387 million)."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    params = (REPO / "params.yaml").read_text()
    return "\n".join(lines) + "\n" + params.replace("plots:\n", f"plots: *a{levels - 1}\nunused_plots:\n", 1)


def test_an_alias_bomb_is_refused_in_under_two_seconds(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(bomb_text())
    assert path.stat().st_size < 12_000
    started = time.perf_counter()
    with pytest.raises(ParamError) as info:
        load_params(path)
    elapsed = time.perf_counter() - started
    message = str(info.value)
    assert elapsed < 2.0, f"refusing the bomb took {elapsed:.1f} s"
    assert message.startswith(f"{path}: the document expands to "), message
    assert "aliases" in message, message
    assert len(message) < 1000, len(message)


def test_a_few_aliases_are_still_fine():
    text = "a: &x {k: 1}\nb: *x\nc: [*x, *x]\n"
    assert load_yaml_text(text, "t.yaml") == {"a": {"k": 1}, "b": {"k": 1}, "c": [{"k": 1}, {"k": 1}]}


def test_the_limit_counts_expanded_nodes():
    leaves = "[" + ", ".join(["1"] * 99) + "]"
    text = f"a: &x {leaves}\nb: [{', '.join(['*x'] * (MAX_NODES // 100 + 5))}]\n"
    with pytest.raises(ParamError, match="expands to"):
        load_yaml_text(text, "t.yaml")


def test_a_recursive_document_is_refused():
    with pytest.raises(ParamError, match="t.yaml: refused: an alias refers to a node that contains it"):
        load_yaml_text("a: &x [1, *x]\n", "t.yaml")


def test_an_error_message_never_prints_a_huge_value_whole():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    shared = list(range(50))
    for _ in range(6):                   # 50 ** 6 values if printed whole, built from shared lists
        shared = [shared] * 50
    bad = copy.deepcopy(raw)
    bad["plots"] = {"examples": shared}
    started = time.perf_counter()
    with pytest.raises(ParamError) as info:
        schema.validate_params(bad)
    assert time.perf_counter() - started < 2.0
    assert len(str(info.value)) < 2000, len(str(info.value))
    assert "plots.examples = [[[" in str(info.value)
    assert len(shown("x" * 10_000)) < 200

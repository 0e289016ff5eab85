"""The test suite's own rules (issue 17, "Committed results and tests"): an assert states one fact,
so that a failure says which one failed (not seven facts joined with `and`)."""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def joined_asserts(path: Path) -> list[str]:
    """``file:line`` of every ``assert a and b ...`` in ``path``."""
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{n.lineno}" for n in ast.walk(tree)
            if isinstance(n, ast.Assert) and isinstance(n.test, ast.BoolOp) and isinstance(n.test.op, ast.And)]


def test_every_assert_states_one_fact():
    found = [hit for path in sorted(TESTS.glob("*.py")) for hit in joined_asserts(path)]
    assert not found, f"asserts joining facts with `and` (write one assert per fact): {found}"


def test_the_check_finds_a_joined_assert(tmp_path):
    path = tmp_path / "t.py"
    path.write_text("def test_x():\n    x = 1\n    assert x == 1\n    assert x and x > 0, 'two facts'\n")
    assert joined_asserts(path) == ["t.py:4"]

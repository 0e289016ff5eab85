"""What docs/ keeps in git (issue 17): the report tables and the figures the docs show, at most
3 MB, no byte-identical copies, no raw row outputs of the ladders (`fhbiometry ablation` writes
them to <out>/<row>/, ignored); every file a page links to is there; and editing a ladder or a
tool reruns no pipeline stage."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MAX_DOCS_BYTES = 3_000_000
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")       # [text](target) and ![alt](target)


def tracked(*paths: str) -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(["git", "ls-files", "-z", "--", *paths], cwd=REPO, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p and (REPO / p).is_file()]


def test_docs_stay_small():
    sizes = {p: (REPO / p).stat().st_size for p in tracked("docs")}
    largest = sorted(sizes, key=sizes.get, reverse=True)[:5]
    assert sum(sizes.values()) <= MAX_DOCS_BYTES, (
        f"docs/ tracks {sum(sizes.values()) / 1e6:.2f} MB (at most {MAX_DOCS_BYTES / 1e6:.0f} MB); largest: {largest}")


def test_docs_hold_no_byte_identical_copies():
    by_hash: dict[str, list[str]] = {}
    for p in tracked("docs"):
        by_hash.setdefault(hashlib.sha256((REPO / p).read_bytes()).hexdigest(), []).append(p)
    copies = [paths for paths in by_hash.values() if len(paths) > 1]
    assert not copies, f"byte-identical files under docs/: {copies}"


@pytest.mark.parametrize("folder", ["docs/ablation", "docs/hc18", "docs/accuracy/headsize", "docs/accuracy/random"])
def test_no_raw_row_outputs_in_git(folder):
    """A row of a ladder (<out>/<row>/row.json beside eval/, train/, predictions/) is a raw output:
    the table beside it names the command that writes it."""
    rows = sorted({str(Path(p).parent) for p in tracked(folder) if Path(p).name == "row.json"})
    assert not rows, f"raw row outputs tracked in git: {rows}; .gitignore ignores them"
    assert not [p for p in tracked(folder) if "/predictions/" in p], f"{folder}: prediction CSVs tracked"


def test_every_linked_file_exists():
    """Every relative link or image of README.md and docs/*.md names a file or folder of the checkout."""
    missing = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target):                # http:, https:, mailto:
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)} -> {target}")
    assert not missing, f"links to files that are not there: {missing}"


def test_ladders_and_tools_are_no_stage_dependency():
    """configs/ (named configurations, ablation ladders) and the tools are read only by
    `fhbiometry` commands: editing them must not rerun a stage."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)                      # foreach stages
        for dep in stage.get("deps", []):
            assert not str(dep).startswith(("configs", "src/fhbiometry/tools")), f"stage {name}: dep {dep}"

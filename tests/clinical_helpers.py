"""Shared by the tests of fhbiometry.clinical: the real Debian tools they run (dciodvfy, dsr2xml,
chromium, Orthanc), skipped with the package to install where missing, FAILED instead when
FHB_REQUIRE_TOOLS=1 (as .ci/run sets it, so CI skips none); inputs measured by `fhbiometry predict`
with the tiny untrained checkpoint of predict_helpers and QC loose enough that its frames pass."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import untrained_checkpoint
from predict_helpers import head_frames

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"dciodvfy": "dicom3tools", "dsr2xml": "dcmtk", "chromium": "chromium", "Orthanc": "orthanc"}
DICOMWEB_PLUGINS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so*")


def missing(what: str, package: str) -> None:
    """Skip (or, with FHB_REQUIRE_TOOLS=1, fail) because ``what`` is not installed."""
    message = f"{what} not installed: `apt-get install {package}` (README, 'Tests'); .ci/run installs it"
    if os.environ.get("FHB_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " (FHB_REQUIRE_TOOLS=1: no test may skip)")
    pytest.skip(message)


def require(tool: str) -> str:
    """The path of a command-line tool of PACKAGES."""
    path = shutil.which(tool) or (shutil.which(tool, path="/usr/sbin:/usr/bin") if tool == "Orthanc" else None)
    if path is None:
        missing(tool, PACKAGES[tool])
    return path


def dicomweb_plugin() -> str:
    for pattern in DICOMWEB_PLUGINS:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return str(found[0])
    missing("Orthanc's DICOMweb plugin", "orthanc-dicomweb")


def dciodvfy_errors(path) -> list[str]:
    """The ``Error`` lines dciodvfy (dicom3tools) reports for a DICOM file."""
    run = subprocess.run([require("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def loose_params(path) -> Path:
    """params.yaml with QC that accepts the untrained model's points (ratio, angle, midpoints)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["qc"].update(max_midpoint_offset=1.0, max_perpendicular_deviation_deg=90, ratio_range=[0.05, 1.0])
    Path(path).write_text(yaml.safe_dump(params, sort_keys=False))
    return Path(path)


def clinical_inputs(folder) -> dict:
    """A 4-frame DICOM cine (1.2 mm pixels: heads of about 50 mm, GA about 21 weeks), a 3-frame MP4
    and two PNG stills of subject sub002 (1.0 mm pixels, sidecars)."""
    from fhbiometry.synth.writers import write_dicom, write_still, write_video

    folder = Path(folder)
    paths = {"dicom": write_dicom(folder / "cine.dcm", head_frames(4), 1.2, "P7", 7),
             "video": write_video(folder / "clip.mp4", head_frames(3, 64, 96, seed=1), 18),
             "still1": write_still(folder / "stills/sub002_HC.png", head_frames(1, seed=2)[0]),
             "still2": write_still(folder / "stills/sub002_2HC.png", head_frames(1, seed=3)[0])}
    for key in ("video", "still1", "still2"):
        paths[key].with_suffix(".json").write_text(json.dumps({"pixel_spacing_mm": 1.0}))
    return paths


def predict_args(root: Path, inputs, out, *extra) -> list[str]:
    """`fhbiometry predict` arguments with the tiny checkpoint and the loose params under ``root``."""
    model = root / "heatmap.safetensors"
    if not model.is_file():
        untrained_checkpoint(model)
    params = root / "params.yaml"
    if not params.is_file():
        loose_params(params)
    return ["predict", *map(str, inputs), "--model", str(model), "--params", str(params), "--out", str(out),
            *map(str, extra)]

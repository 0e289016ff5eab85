"""What ``fhbiometry predict`` adds for the clinic after measuring: ``<out>/report.html`` always,
the SRs under ``<out>/sr/`` with ``--sr``, and those SRs stored back to the DICOMweb server the
study came from (``--server``). The one entry point the command calls: ``write_clinical``."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fhbiometry.clinical.dicomweb import store
from fhbiometry.clinical.report import write_report
from fhbiometry.clinical.sr import describe_model, write_srs

log = logging.getLogger(__name__)


@dataclass
class ClinicalOutputs:
    report: Path
    srs: list = field(default_factory=list)
    stored: list = field(default_factory=list)     # SOP Instance UIDs the server accepted


def write_clinical(result, sources: dict, out, model, sr: bool = False, server: str | None = None,
                   config=None) -> ClinicalOutputs:
    """report.html (and with ``sr`` the SRs, stored to ``server`` when given) for a measurement
    ``result`` (its ``frames``, ``summary``, ``errors``, ``settings.threshold``); ``sources`` maps
    the frame table's ``source_file`` to the file measured."""
    settings = result.settings
    device = describe_model(model, settings.threshold, settings.threshold_source,
                            settings.coarse_source or None)
    out = Path(out)
    srs = write_srs(result.frames, result.summary, sources, out / "sr", device) if sr else []
    max_pixels = (getattr(settings, "data", None) or {}).get("max_image_pixels")
    report = write_report(result.frames, result.summary, sources, out, device, result.errors,
                          [p.relative_to(out) for p in srs], max_pixels)
    stored = []
    if server and srs:

        stored = store(server, srs, config)
        log.info("stored %d SR(s) at %s (STOW-RS)", len(stored), server)
    return ClinicalOutputs(report, srs, stored)

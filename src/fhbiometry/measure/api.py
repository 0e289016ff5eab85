"""The public API of measuring new scans: ``measure`` (the whole ``Measurement``: tables,
unreadable inputs, settings) and ``predict`` (the frame table and the per-cine summary), which
``fhbiometry.predict`` and ``fhbiometry predict`` call."""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fhbiometry.config.checkpoint_meta import CheckpointError
from fhbiometry.inference.backends import DEFAULT_BACKEND, make_backend
from fhbiometry.measure.aggregate import summarise_cines
from fhbiometry.measure.discovery import list_inputs, read_scan
from fhbiometry.measure.frames import Refiner, locate_landmarks
from fhbiometry.measure.intervals import cine_intervals
from fhbiometry.measure.outputs import check_output_folder, write_outputs
from fhbiometry.measure.overlays import OVERLAY_MODES, draw_overlay, overlay_name
from fhbiometry.measure.settings import DEFAULT_MODEL, Settings, load_settings, shown
from fhbiometry.readers import media as rd
from fhbiometry.readers.media import InputError
from fhbiometry.refinement.settings import coarse_checkpoint

log = logging.getLogger(__name__)


@dataclass
class Measurement:
    """What ``measure`` returns: the frame table, the per-cine summary, the inputs that could not
    be read (their ``InputError``) and the settings used."""

    frames: pd.DataFrame
    summary: pd.DataFrame
    errors: list
    settings: Settings
    best_images: dict = field(default_factory=dict)   # cine -> (image of its best frame, its row)


def warn_no_spacing(scan) -> None:
    log.warning("WARNING: %s has no pixel spacing (no DICOM tag, sidecar %s.json or pixel-size table "
                "row): measured in PIXELS only, mm columns left empty; give --spacing MM", scan.rel, scan.path.stem)


def keep_overlays(scan, table, overlays: str, out, best: dict) -> None:
    """Draw every frame (``all``, with ``out``) or remember each cine's best frame in ``best``."""
    for i, row in table.iterrows():
        if overlays == "all" and out is not None:
            draw_overlay(scan.frames[i], row, Path(out) / "overlays" / overlay_name(row))
        if overlays == "best" and row["confidence"] > best.get(row["cine_id"], (-1.0,))[0]:
            best[row["cine_id"]] = (row["confidence"], scan.frames[i].copy(), row)


def measure_scans(inputs, loaded, backend, settings: Settings, overlays: str = "best", out=None,
                  progress: bool = True, refiner: Refiner | None = None) -> Measurement:
    """Measure every input (unreadable ones are logged and listed in ``errors``); with ``out``,
    overlays are written as they are made (``all``) or for each cine's best frame (``best``);
    with a ``refiner`` the model ``loaded`` is its coarse model."""
    subject_rx = rd.compile_subject_pattern(settings.data.get("subject_pattern", rd.DEFAULT_SUBJECT_PATTERN))
    tables, errors, best = [], [], {}
    bar = tqdm(desc="predict", unit="frame", disable=not progress, file=sys.stderr)
    for path, rel in list_inputs(inputs):
        try:
            scan = read_scan(path, rel, settings, subject_rx)
        except InputError as err:
            log.error("%s -> file skipped", err)
            errors.append(err)
            continue
        if not np.isfinite(scan.spacing):
            warn_no_spacing(scan)
        table = locate_landmarks(scan, loaded, backend, settings, bar, refiner)
        keep_overlays(scan, table, overlays, out, best)
        tables.append(table)
    bar.close()
    frames = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    summary = cine_intervals(frames, summarise_cines(frames, settings.measure_rejected), settings.intervals)
    result = Measurement(frames, summary, errors, settings, {k: v[1:] for k, v in best.items()})
    if out is not None and overlays == "best":
        for image, row in result.best_images.values():
            draw_overlay(image, row, Path(out) / "overlays" / overlay_name(row))
    return result


def load_networks(model, coarse, backend: str, batch_size: int, passes: int):
    """(model, backend, refiner) to measure with: the checkpoint ``model`` alone, or, where it is a
    refinement (its metadata has ``refine``), its coarse model first and the refinement after."""
    from fhbiometry.inference.runner import load_model  # lazy: torch only once a model is loaded

    fix = "give the path of a checkpoint written by `dvc repro train@<model>`"
    loaded = load_model(Path(model), fix=fix)
    if "refine" not in loaded.meta:
        if coarse is not None:
            raise CheckpointError(f"--coarse {coarse}: {model} is not a refinement (its checkpoint has no `refine`); "
                             f"drop --coarse or give a checkpoint written by `dvc repro train_refine@<name>`")
        return loaded, make_backend(backend, loaded, model, batch_size), None
    path = coarse_checkpoint(model, loaded.meta, coarse)
    first = load_model(path, fix=f"the coarse model of the refinement {model}: give --coarse PATH "
                                 f"or run `dvc repro train@{path.stem}`")
    refiner = Refiner(loaded, make_backend(backend, loaded, model, batch_size), int(passes), path)
    log.info("refinement %s on the heads of %s (%d pass(es))", model, path, passes)
    return first, make_backend(backend, first, path, batch_size), refiner


def measure(inputs, model=DEFAULT_MODEL, spacing=None, out=None, pixel_size_csv=None, overlays: str = "best",
            backend: str = DEFAULT_BACKEND, confidence_threshold=None, batch_size: int = 32,
            params=None, progress: bool = False, metrics=None, measure_rejected: bool = False,
            coarse=None) -> Measurement:
    """``predict`` returning the whole ``Measurement`` (with the inputs that could not be read).
    The output folder ``out`` is checked before anything is measured (``OutputError``). A
    refinement's checkpoint (``dvc repro train_refine@<name>``) runs after its coarse model
    (``coarse``, default ``<refine.coarse>.safetensors`` beside it)."""
    if overlays not in OVERLAY_MODES:
        raise ValueError(f"overlays must be one of {OVERLAY_MODES}, got {overlays!r}")
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if out is not None:
        check_output_folder(out)
    settings = load_settings(params, model, metrics, spacing, pixel_size_csv, confidence_threshold, batch_size,
                             measure_rejected)
    loaded, runner, refiner = load_networks(model, coarse, backend, batch_size,
                                            int(settings.decode.get("refine_passes", 1)))
    if refiner is not None:
        settings.coarse_source = shown(refiner.coarse)
    result = measure_scans(inputs, loaded, runner, settings, overlays, out, progress, refiner)
    if out is not None:
        write_outputs(result, out, model)
    return result


def predict(inputs, model=DEFAULT_MODEL, spacing=None, out=None, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure ``inputs`` (files and folders, any mix ``extract_frames`` reads) with the checkpoint
    ``model``: returns (frame table, per-cine summary), also written under ``out`` when given,
    with overlays. ``spacing``: mm per pixel where the input gives none. Options: those of
    ``measure`` (pixel_size_csv, overlays, backend, confidence_threshold, batch_size, params,
    metrics, progress, measure_rejected, coarse). Inputs that cannot be read are logged and skipped. A
    cine with no accepted frame has no measurement (``status`` "no accepted frame") unless
    ``measure_rejected``."""
    result = measure(inputs, model, spacing, out, **options)
    return result.frames, result.summary

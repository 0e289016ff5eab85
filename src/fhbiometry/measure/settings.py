"""What a measurement needs besides the inputs, resolved explicitly and recorded with its source.

* the parameter file: ``params`` when given, else ``<pipeline root>/params.yaml`` when the
  checkpoint sits in a pipeline (``<root>/models/<name>.safetensors``), else ``params.yaml`` in
  the working directory;
* the evaluate stage's metrics of the model (confidence threshold, size calibration):
  ``metrics`` when given, else ``<pipeline root>/metrics/eval/<name>.json``; never guessed from
  the working directory alone.

Every source is kept in ``Settings`` (``params_source``, ``metrics_source``,
``threshold_source``) and written to summary.json and printed by ``fhbiometry predict``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fhbiometry.config.params import load_params
from fhbiometry.config.paths import Paths
from fhbiometry.measure.intervals import resolve_intervals
from fhbiometry.readers import media as rd
from fhbiometry.trust.confidence import DEFAULT_THRESHOLD

DEFAULT_MODEL = "models/heatmap.safetensors"


@dataclass
class Settings:
    """What a measurement needs besides the inputs: params sections and the command's options."""

    qc: dict
    confidence: dict
    decode: dict
    data: dict
    threshold: float
    threshold_source: str
    spacing_mm: float = 0.0
    pixel_sizes: dict = field(default_factory=dict)
    batch_size: int = 32
    size_factors: dict | None = None      # calibration.py: from the evaluate stage's metrics
    params_source: str = ""
    metrics_source: str = ""
    measure_rejected: bool = False        # the old behaviour: a median of rejected frames
    intervals: dict | None = None         # trust/intervals.py calibration, from the evaluate stage's metrics
    intervals_source: str = ""
    coarse_source: str = ""               # a refinement's coarse model (measure.api.load_networks); "" for none


def shown(path) -> str:
    """``path`` relative to the working directory where it lies below it, else as given."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def model_name(model_path) -> str:
    """``models/heatmap.safetensors`` -> ``heatmap`` (the name of its train/evaluate stages)."""
    return Path(model_path).name.split(".")[0]


def pipeline_root(model_path) -> Path | None:
    """The pipeline folder a checkpoint belongs to: ``<root>`` for ``<root>/models/<name>.*``."""
    path = Path(model_path)
    return path.parent.parent if path.parent.name == "models" else None


def params_file(params, model_path) -> Path:
    """The parameter file (module docstring, first found wins)."""
    if params is not None:
        return Path(params)
    root = pipeline_root(model_path)
    if root is not None and (root / "params.yaml").is_file():
        return root / "params.yaml"
    return Path("params.yaml")


def metrics_file(metrics, model_path) -> Path | None:
    """The evaluate stage's metrics of the model (module docstring), None where there is none."""
    if metrics is not None:
        if not Path(metrics).is_file():
            raise FileNotFoundError(f"{metrics}: no such metrics file (--metrics); give the "
                                    f"metrics/eval/<model>.json the evaluate stage wrote for this model")
        return Path(metrics)
    root = pipeline_root(model_path)
    found = None if root is None else Paths(root).eval_metrics(model_name(model_path))
    return found if found is not None and found.is_file() else None


def read_metrics(path: Path | None) -> dict:
    return {} if path is None else json.loads(Path(path).read_text())


def resolve_threshold(value, metrics: dict, source: Path | None) -> tuple[float, str]:
    """The confidence threshold: ``value`` when given, else the evaluate stage's (validation
    quantile, section ``confidence`` of the metrics), else 0.5."""
    if value is not None:
        return float(value), "--confidence-threshold"
    found = metrics.get("confidence", {}).get("threshold")
    if found is not None and np.isfinite(found):
        return float(found), f"{shown(source)} (evaluate stage, validation quantile)"
    where = "no metrics/eval/<model>.json beside the model" if source is None else f"none in {shown(source)}"
    return DEFAULT_THRESHOLD, f"default 0.5 ({where}; give --metrics or --confidence-threshold)"


def resolve_size_factors(method: str, metrics: dict, source: Path | None, name: str) -> dict | None:
    """The size calibration of params ``decode.size_calibration``: None for ``none``; for
    ``validation`` the factors the evaluate stage estimated on the validation frames (section
    ``size_calibration`` of the metrics)."""
    if method == "none":
        return None
    found = metrics.get("size_calibration")
    if not found:
        where = "no metrics file beside the model (give --metrics)" if source is None else shown(source)
        raise FileNotFoundError(f"{where}: no size_calibration section for decode.size_calibration: "
                                f"{method}; run `dvc repro evaluate@{name}` with these params, or set it to none")
    return found


def load_settings(params=None, model_path=DEFAULT_MODEL, metrics=None, spacing_mm=None, pixel_size_csv=None,
                  threshold=None, batch_size: int = 32, measure_rejected: bool = False) -> Settings:
    """Settings from the parameter file (qc, data, decode, evaluate.confidence), the model's
    evaluate metrics and the options, each with where it was read."""
    params_path = params_file(params, model_path)
    loaded = load_params(params_path)
    pixel_sizes = {}
    if pixel_size_csv:
        pixel_sizes = rd.read_pixel_size_table(pixel_size_csv, loaded["data"]["pixel_size_columns"])
    metrics_path = metrics_file(metrics, model_path)
    doc = read_metrics(metrics_path)
    value, source = resolve_threshold(threshold, doc, metrics_path)
    factors = resolve_size_factors(loaded["decode"].get("size_calibration", "none"), doc, metrics_path,
                                   model_name(model_path))
    return Settings(loaded["qc"], loaded["evaluate"]["confidence"], loaded["decode"], loaded["data"], value,
                    source, float(spacing_mm or 0.0), pixel_sizes, int(batch_size), factors,
                    params_source=shown(params_path),
                    metrics_source="none" if metrics_path is None else shown(metrics_path),
                    measure_rejected=bool(measure_rejected),
                    **dict(zip(("intervals", "intervals_source"), resolve_intervals(doc, metrics_path and shown(metrics_path)))))

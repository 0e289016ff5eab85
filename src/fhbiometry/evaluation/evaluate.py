"""Test-set predictions and metrics in pixels and millimetres (stage `evaluate@<model>`).

Everything is measured in the original image: predictions (network input pixels) are mapped
back with ``letterbox.to_original`` and the frame's letterbox ``transform``, and scaled to mm with
the frame's ``spacing_mm``.  Metrics are computed on the test frames whose label the QC policy
accepts (``use_for_training``: the labels that passed every check under ``qc.policy: exclude``,
every finite label under ``keep``); every test frame still gets a row in the predictions table,
with ``evaluated`` saying whether it counts.

The figures themselves live in ``fhbiometry.metrics`` (``errors``: points and diameters, with
their conventions; ``breakdown``: HC, bins, pixel and relative errors); this module predicts,
maps back and assembles them. ``EvaluationOptions`` says what is added beyond the plain
metrics (confidence, mirrored pass, size calibration, all calibrated on the validation arrays).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from fhbiometry.trust.calibration import apply_factors, estimate_factors
from fhbiometry.trust.confidence import evaluation_sections, frame_confidence
from fhbiometry.config.paths import Paths
from fhbiometry.core.store import load_npz, write_csv, write_json
from fhbiometry.core.geometry import COORD_COLUMNS, LANDMARKS, to_mm
from fhbiometry.core.letterbox import to_original
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.metrics.breakdown import breakdown_sections
from fhbiometry.metrics.errors import compute_metrics, diameter_lengths_mm, radial_errors, short_metrics
from fhbiometry.evaluation.intervals import interval_line, interval_section

WARMUP_FRAMES = 3


@dataclass(frozen=True)
class EvaluationOptions:
    """What ``evaluate_model`` adds beyond the plain metrics (``from_params``: as the stage does).

    ``confidence``: params ``evaluate.confidence`` and ``qc``: the frame confidence (sections
    ``confidence``, ``per_subject``), its threshold from the validation frames; ``flip_test``:
    params ``decode.flip_test`` (average with the mirrored pass); ``size_calibration``: params
    ``decode.size_calibration`` (``none`` or ``validation``); ``val``: the prepared validation
    arrays all of it is calibrated on (None: no validation split); ``intervals``: params
    ``intervals`` (section ``intervals``; its ``tta_*`` transforms add one pass each)."""
    confidence: dict
    qc: dict
    val: dict | None = None
    flip_test: bool = False
    size_calibration: str = "none"
    intervals: dict | None = None

    @classmethod
    def from_params(cls, params: dict, val: dict | None) -> "EvaluationOptions":
        return cls(confidence=params["evaluate"]["confidence"], qc=params["qc"], val=val,
                   flip_test=bool(params["decode"].get("flip_test", False)),
                   size_calibration=params["decode"].get("size_calibration", "none"),
                   intervals=params.get("intervals"))

    def tta(self) -> tuple:
        """The rotated / zoomed passes the intervals' ``tta`` score and its candidate need (none
        without intervals): params ``intervals.tta_rotations_deg`` and ``tta_scales``."""
        from fhbiometry.inference.tta import transforms_from  # lazy: torch only where a model runs

        return transforms_from(self.intervals) if self.intervals else ()


def mean_shape_points(train_mean_points, transforms) -> np.ndarray:
    """The mean-shape floor: the (4, 2) mean training landmarks (input px) used as the
    prediction for every frame, mapped to each frame's original pixels. Returns (N, 4, 2)."""
    mean = np.asarray(train_mean_points, np.float64)
    if mean.shape != (4, 2):
        raise ValueError(f"train_mean_points must have shape (4, 2), got {mean.shape}")
    t = np.asarray(transforms, np.float64)
    return to_original(np.broadcast_to(mean, (len(t), 4, 2)), t)


def predictions_table(data: dict, pred_orig) -> pd.DataFrame:
    """One row per test frame: ids, spacing, label_ok, true and predicted points (original px),
    per-landmark radial error (mm), frame MRE (mm), and true/pred/error (pred - true) BPD, OFD (mm)."""
    true = np.asarray(data["points_orig"], np.float64)
    pred = np.asarray(pred_orig, np.float64)
    spacing = np.asarray(data["spacing_mm"], np.float64)
    err_mm = to_mm(radial_errors(pred, true), spacing)
    d_true, d_pred = diameter_lengths_mm(true, spacing), diameter_lengths_mm(pred, spacing)
    cols = {
        "frame_id": np.asarray(data["frame_id"]).astype(str),
        "subject_id": np.asarray(data["subject_id"]).astype(str),
        "spacing_mm": spacing,
        "label_ok": np.asarray(data["label_ok"]).astype(bool),
        "evaluated": accepted_rows(data),
    }
    for j, c in enumerate(COORD_COLUMNS):
        cols[f"true_{c}"] = true.reshape(-1, 8)[:, j]
    for j, c in enumerate(COORD_COLUMNS):
        cols[f"pred_{c}"] = pred.reshape(-1, 8)[:, j]
    for k, name in enumerate(LANDMARKS):
        cols[f"err_{name}_mm"] = err_mm[:, k]
    cols["mre_mm"] = err_mm.mean(axis=1)
    for k, name in ((1, "bpd"), (0, "ofd")):
        cols[f"true_{name}_mm"] = d_true[:, k]
        cols[f"pred_{name}_mm"] = d_pred[:, k]
        cols[f"err_{name}_mm"] = d_pred[:, k] - d_true[:, k]
    return pd.DataFrame(cols)


# ---- model-dependent parts --------------------------------------------------------------
def time_inference(model, codec, images, frames: int, warmup: int = WARMUP_FRAMES) -> dict:
    """Median CPU time per frame (ms) of ``inference.predict`` at batch size 1 on ``frames``
    frames (cycling through ``images``) after ``warmup`` untimed frames."""
    from fhbiometry.inference.runner import predict  # lazy: torch only where a model runs; the metric functions stay torch-free

    images = np.asarray(images)
    if len(images) == 0 or frames <= 0:
        return {"cpu_ms_per_frame": float("nan"), "frames": 0}
    for i in range(warmup):
        predict(model, codec, images[i % len(images)][None], batch_size=1)
    times = []
    for i in tqdm(range(frames), desc="timing", leave=False):
        frame = images[i % len(images)][None]
        start = time.perf_counter()
        predict(model, codec, frame, batch_size=1)
        times.append(time.perf_counter() - start)
    return {"cpu_ms_per_frame": 1000.0 * float(np.median(times)), "frames": int(frames)}


def check_checkpoint(meta: dict, model_params: dict, data: dict, name: str, path) -> None:
    """Stop with a clear message if the checkpoint does not fit params.yaml or the test data."""
    for key in ("arch", "kind"):
        if key in model_params and meta.get(key) != model_params[key]:
            raise ValueError(f"{path}: checkpoint {key} is {meta.get(key)!r} but params.yaml "
                             f"models.{name}.{key} is {model_params[key]!r}: rerun `dvc repro train@{name}`")
    size = np.asarray(data["image"]).shape[-1]
    if int(meta["input"]["size"]) != size:
        raise ValueError(f"{path}: checkpoint input size {meta['input']['size']} differs from the test "
                         f"images ({size} px) in data/prepared/test.npz: rerun `dvc repro train@{name}`")
    if "train_mean_points" not in meta:
        raise KeyError(f"{path}: checkpoint has no 'train_mean_points' (needed for the mean-shape floor): "
                       f"rerun `dvc repro train@{name}`")


REFERENCES = {  # section -> (prepared array, mask array or None)
    "ellipse": ("points_ref", "ref_ok"),  # the HC18 ellipse annotations that pass QC (OFD/BPD = major/minor axis)
    "csv": ("points_csv", None),       # every row of the landmark table
    "csv_clean": ("points_csv", "csv_ok"),  # the table rows that pass every QC check
}


def reference_sections(label_source: str) -> tuple[str, ...]:
    """The reference label sets reported beside the headline (which is against the labels the
    model learned): the ellipses for a csv-trained model, the table for an ellipse-trained one."""
    return tuple(name for name in REFERENCES if not name.startswith(label_source))


def reference_metrics(data: dict, pred_orig, floor, label_source: str, thresholds_mm) -> dict:
    """``vs_<name>``: the metrics (with their own floor) against each reference label set."""
    spacing = np.asarray(data["spacing_mm"], np.float64)
    out = {}
    for name in reference_sections(label_source):
        key, mask_key = REFERENCES[name]
        if key not in data:
            continue
        ref = np.asarray(data[key], np.float64)
        use = np.isfinite(ref).all(axis=(1, 2))
        if mask_key is not None:
            use &= np.asarray(data.get(mask_key, np.zeros(len(ref), bool)), bool)
        if use.any():
            section = compute_metrics(pred_orig[use], ref[use], spacing[use], thresholds_mm)
            section["floor"] = compute_metrics(floor[use], ref[use], spacing[use], thresholds_mm)
            out[f"vs_{name}"] = section
    return out


def variant_metrics(codec, outputs, data: dict, thresholds_mm) -> dict:
    """Short metrics of every alternative decoding the codec offers (``codec.variants``)."""
    mask = accepted_rows(data)
    transform = np.asarray(data["transform"], np.float64)
    true = np.asarray(data["points_orig"], np.float64)[mask]
    spacing = np.asarray(data["spacing_mm"], np.float64)[mask]
    return {section: {name: short_metrics(compute_metrics(to_original(points, transform)[mask], true, spacing,
                                                          thresholds_mm))
                      for name, points in entries.items()}
            for section, entries in codec.variants(outputs).items()}


def model_outputs(model, codec, images, batch_size: int, options: EvaluationOptions | None):
    """(input points, raw outputs, ``inference.FramePrediction`` or None) of the model on
    ``images``: the plain pass, or with ``options`` also the mirrored pass (``flip_test``)."""
    if options is None:
        from fhbiometry.inference.runner import predict  # lazy: torch only where a model runs

        decoded, outputs = predict(model, codec, images, batch_size=batch_size)
        return decoded.points, outputs, None
    from fhbiometry.inference.runner import TorchBackend, predict_frames  # lazy: torch only where a model runs

    frames = predict_frames(TorchBackend(model, batch_size), codec, images, flip=True,
                            flip_test=options.flip_test, tta=options.tta())
    return frames.points, frames.outputs, frames


def validation_outputs(model, codec, options: EvaluationOptions | None):
    """``options.val`` run through the model once, the way the test frames are (mirrored pass
    and ``flip_test``), for the confidence threshold and the size calibration; None without
    options or validation frames."""
    if options is None or options.val is None or not len(options.val["image"]):
        return None
    from fhbiometry.inference.runner import TorchBackend, predict_frames  # lazy: torch only where a model runs

    return predict_frames(TorchBackend(model), codec, options.val["image"], flip_test=options.flip_test,
                          tta=options.tta())


def size_factors(method: str, frames, arrays: dict) -> dict | None:
    """The size calibration of params ``decode.size_calibration`` (calibration.py): None for
    ``none``; for ``validation`` the factors estimated from ``frames`` (predictions of the
    prepared ``arrays``, e.g. the validation split) on the frames ``accepted_rows`` keeps."""
    if method == "none":
        return None
    if frames is None:
        raise ValueError("decode.size_calibration: validation needs the validation split "
                         "(data/prepared/val.npz): give split.fractions.val a share, or set it to none")
    use = accepted_rows(arrays)
    pred = to_original(frames.points, np.asarray(arrays["transform"], np.float64))[use]
    return {"method": method, **estimate_factors(pred, np.asarray(arrays["points_orig"], np.float64)[use])}


def confidence_metrics(codec, data: dict, frames, table: pd.DataFrame, options: EvaluationOptions,
                       val_frames) -> dict:
    """Sections ``confidence`` and ``per_subject`` (``confidence.evaluation_sections``) of the
    evaluated test frames; the threshold comes from ``val_frames`` (``validation_outputs``)."""
    cfg, qc, val = options.confidence, options.qc, options.val
    peak = float(codec.peak)
    conf = frame_confidence(frames, data["transform"], qc, cfg, peak)["confidence"].to_numpy()
    table["confidence"] = conf
    conf_val = None
    if val_frames is not None:
        conf_val = frame_confidence(val_frames, val["transform"], qc, cfg, peak)["confidence"].to_numpy()
    rows = table[table["evaluated"]]
    mm = {k: rows[[f"{k}_ofd_mm", f"{k}_bpd_mm"]].to_numpy() for k in ("pred", "true")}
    return evaluation_sections(rows["confidence"].to_numpy(), conf_val, rows["subject_id"].to_numpy(),
                               mm["pred"], mm["true"], cfg)


def model_fields(model, codec, meta: dict, n_test: int, mask) -> dict:
    """The names and counts at the top of metrics/eval/<model>.json, and the codec's decoding
    settings (``decode_method``, ``decode_pairs``: the params ``decode.method``, ``decode.pairs``)."""
    from fhbiometry.models.networks import count_parameters  # lazy: torch only where a model is evaluated

    return {"model_kind": str(meta.get("kind")), "arch": str(meta.get("arch")),
            "n_params": int(count_parameters(model)), "best_epoch": meta.get("best_epoch"),
            "n_test": int(n_test), "n_evaluated": int(mask.sum()), "n_excluded": int(n_test - mask.sum()),
            **codec.report()}


def evaluate_model(model, codec, meta: dict, data: dict, thresholds_mm, batch_size: int = 32,
                   timing_frames: int = 0, label_source: str = "csv",
                   options: EvaluationOptions | None = None) -> tuple[dict, pd.DataFrame]:
    """Predict the test arrays ``data`` (contract 5) with ``model`` and its ``codec`` (decoding
    as params ``decode``) and compute every metric.

    Besides the headline (against the training labels, on the frames ``accepted_rows`` keeps),
    each reference of ``reference_sections(label_source)`` present in ``data`` gets a section
    ``vs_<name>`` with the same metrics and its own mean-shape floor; the codec's alternative
    decodings get short metrics; ``metrics.breakdown`` adds HC, bins, pixel and relative errors.
    ``options`` (``EvaluationOptions``) adds ``confidence`` and ``per_subject``, and with
    ``size_calibration: validation`` scales the test predictions' diameters by factors estimated
    on ``options.val`` (section ``size_calibration``).
    Returns (metrics for metrics/eval/<model>.json, predictions table).
    """
    images = np.asarray(data["image"])
    transform = np.asarray(data["transform"], np.float64)
    spacing = np.asarray(data["spacing_mm"], np.float64)
    points, outputs, frames = model_outputs(model, codec, images, batch_size, options)
    val_frames = validation_outputs(model, codec, options)
    factors = size_factors(options.size_calibration if options else "none", val_frames,
                           options.val if options else None)
    pred_orig = apply_factors(to_original(points, transform), factors)
    mask = accepted_rows(data)
    true = np.asarray(data["points_orig"], np.float64)
    metrics = model_fields(model, codec, meta, len(images), mask)
    if factors is not None:
        metrics["size_calibration"] = factors
    metrics.update(compute_metrics(pred_orig[mask], true[mask], spacing[mask], thresholds_mm))
    floor = mean_shape_points(meta["train_mean_points"], transform)
    metrics["floor"] = compute_metrics(floor[mask], true[mask], spacing[mask], thresholds_mm)
    metrics.update(variant_metrics(codec, outputs, data, thresholds_mm))
    metrics.update(breakdown_sections(data, pred_orig, mask))  # hc, bins, pixel and relative errors, ...
    metrics.update(reference_metrics(data, pred_orig, floor, label_source, thresholds_mm))
    if timing_frames > 0:
        metrics["timing"] = time_inference(model, codec, images, timing_frames)
    table = predictions_table(data, pred_orig)
    if options is not None:
        metrics.update(confidence_metrics(codec, data, frames, table, options, val_frames))
    if options is not None and options.intervals:   # section intervals (evaluation/intervals.py)
        metrics.update(interval_section(codec, data, frames, options, val_frames, factors))
    return metrics, table


def summary_lines(name: str, metrics: dict) -> list[str]:
    """What the stage prints of its metrics: the headline in mm and pixels, the confidence."""
    def num(x, digits=2):
        return "n/a" if x is None else f"{x:.{digits}f}"

    w, r, c = metrics["worst_diameter_error"]["original_px"], metrics["relative_error"], metrics["confidence"]
    return [f"evaluate@{name}: MRE {metrics['mre_mm']:.2f} mm, BPD MAE {metrics['bpd']['mae_mm']:.2f} mm, "
            f"OFD MAE {metrics['ofd']['mae_mm']:.2f} mm on {metrics['n_evaluated']} frames "
            f"({metrics['n_excluded']} excluded); floor MRE {metrics['floor']['mre_mm']:.2f} mm",
            f"evaluate@{name}: worst-diameter error {num(w['mean'])} px mean, {num(w['median'])} px median "
            f"(original pixels); relative error BPD {num(r['bpd_pct'])} %, OFD {num(r['ofd_pct'])} %; "
            f"{r['over_limit_frames']} frames off by > {r['limit_pct']:g} % of a diameter",
            f"evaluate@{name}: confidence AUC(error > {c['bad_error_mm']:g} mm) {c['auc_bad']:.3f}; at threshold "
            f"{c['threshold']:.3f} rejects {c['rejected_share']:.1%} of frames, {c['bad_removed_share']:.1%} "
            "of bad ones"]


def run(params: dict, name: str, root=".") -> dict:
    """Stage body: models/<name>.safetensors + data/prepared/test.npz -> results/<name>/predictions.csv
    and metrics/eval/<name>.json. Returns the metrics."""
    import torch  # lazy: torch only where the stage runs a model

    from fhbiometry.inference.runner import load_model  # lazy: torch only where the stage runs a model

    paths = Paths(root)
    torch.set_num_threads(int(params["threads"]))
    data = load_npz(paths.prepared("test"))
    loaded = load_model(paths.checkpoint(name), fix=f"rerun `dvc repro train@{name}`")
    val = load_npz(paths.prepared("val")) if paths.prepared("val").is_file() else None
    return evaluate_and_write(params, name, loaded, data, val, paths)


def evaluate_and_write(params: dict, name: str, loaded, data: dict, val: dict | None, paths: Paths,
                       extra: dict | None = None) -> dict:
    """Evaluate ``loaded`` (``runner.Loaded``) on the test arrays ``data`` (validation arrays ``val``
    for the calibrations) and write results/<name>/predictions.csv and metrics/eval/<name>.json
    (with the ``extra`` sections)."""
    import torch  # lazy: torch only where the stage runs a model

    check_checkpoint(loaded.meta, params["models"][name], data, name, paths.checkpoint(name))
    codec = loaded.codec.with_decoding(params["decode"])
    print(f"evaluate@{name}: {len(data['frame_id'])} test frames, {loaded.meta['kind']} {loaded.meta['arch']}")
    with torch.no_grad():
        metrics, table = evaluate_model(loaded.model, codec, loaded.meta, data,
                                        [float(t) for t in params["evaluate"]["thresholds_mm"]],
                                        timing_frames=int(params["evaluate"]["timing_frames"]),
                                        label_source=str(params["data"]["label_source"]),
                                        options=EvaluationOptions.from_params(params, val))
    metrics = {"model": name, **(extra or {}), **metrics}
    write_csv(table, paths.predictions(name))
    write_json(paths.eval_metrics(name), metrics)
    for line in summary_lines(name, metrics):
        print(line)
    if (metrics.get("intervals") or {}).get("calibration"):
        print(interval_line(name, metrics["intervals"]))
    return metrics

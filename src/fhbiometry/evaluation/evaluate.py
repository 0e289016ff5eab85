"""Test-set predictions and metrics in pixels and millimetres (stage `evaluate@<model>`).

Everything is measured in the original image: predictions (network input pixels) are mapped
back with ``letterbox.to_original`` and the frame's letterbox ``transform``, and scaled to mm with
the frame's ``spacing_mm``.  Metrics are computed on the test frames whose label the QC policy
accepts (``use_for_training``: the labels that passed every check under ``qc.policy: exclude``,
every finite label under ``keep``); every test frame still gets a row in the predictions table,
with ``evaluated`` saying whether it counts.

Conventions used by the metric functions:

* radial errors are pair-order invariant (``geometry.pair_invariant_errors``);
* the MRE of a frame is the mean of its four radial errors; the headline ``mre_mm`` is the mean
  over all landmarks of all evaluated frames (equal to the mean of the frame MREs);
* standard deviations use ``ddof=1`` (sample sd; NaN for a single value, written as null);
* percentiles use NumPy's default linear interpolation;
* Bland-Altman differences are ``pred - true``; limits of agreement are ``bias +- 1.96 sd``.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from fhbiometry.trust.calibration import apply_factors, estimate_factors
from fhbiometry.core.geometry import COORD_COLUMNS, LANDMARKS, diameters, pair_invariant_errors, to_mm
from fhbiometry.core.letterbox import to_original
from fhbiometry.data.prepare import accepted_rows
from fhbiometry.metrics.breakdown import report_sections

LOA_Z = 1.96
WARMUP_FRAMES = 3
DIAMETERS = ("ofd", "bpd")  # column order of geometry.diameters


# ---- pure metric functions --------------------------------------------------------------
def radial_errors(pred, true) -> np.ndarray:
    """(N, 4) pair-invariant radial error of every landmark, in the units of the points."""
    return pair_invariant_errors(pred, true)


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def summary_stats(values) -> dict:
    """mean, median, std, p95, max of a 1-D array (NaN entries ignored; NaN if none left)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {k: float("nan") for k in ("mean", "median", "std", "p95", "max")}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "std": _sd(v),
            "p95": float(np.percentile(v, 95)), "max": float(v.max())}


def success_rates(errors_mm, thresholds_mm) -> dict:
    """Share of landmarks with radial error <= t mm, keyed ``within_<t>mm`` (``.`` -> ``p``)."""
    e = np.asarray(errors_mm, dtype=np.float64).ravel()
    e = e[np.isfinite(e)]
    out = {}
    for t in thresholds_mm:
        out[threshold_key(t)] = float((e <= float(t)).mean()) if len(e) else float("nan")
    return out


def threshold_key(t) -> str:
    """``within_2mm``, ``within_2p5mm``: no dots, so DVC's flattened names stay readable."""
    return f"within_{float(t):g}mm".replace(".", "p")


def bland_altman(pred, true) -> dict:
    """Bland-Altman agreement of two 1-D measurements: bias = mean(pred - true), sd of the
    differences (ddof=1) and the 95% limits of agreement bias +- 1.96 sd."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return {"bias": float("nan"), "sd": float("nan"), "loa_low": float("nan"), "loa_high": float("nan")}
    bias, sd = float(d.mean()), _sd(d)
    return {"bias": bias, "sd": sd, "loa_low": bias - LOA_Z * sd, "loa_high": bias + LOA_Z * sd}


def diameter_metrics(pred_mm, true_mm) -> dict:
    """Absolute-error statistics and Bland-Altman of one diameter (1-D arrays in mm)."""
    pred_mm, true_mm = np.asarray(pred_mm, np.float64), np.asarray(true_mm, np.float64)
    stats = summary_stats(np.abs(pred_mm - true_mm))
    ba = bland_altman(pred_mm, true_mm)
    return {"mae_mm": stats["mean"], "median_mm": stats["median"], "std_mm": stats["std"],
            "p95_mm": stats["p95"], "max_mm": stats["max"], "bias_mm": ba["bias"],
            "loa_low_mm": ba["loa_low"], "loa_high_mm": ba["loa_high"]}


def compute_metrics(pred_orig, true_orig, spacing_mm, thresholds_mm) -> dict:
    """All landmark and diameter metrics of N frames.

    ``pred_orig``/``true_orig`` are (N, 4, 2) points in original pixels, ``spacing_mm`` (N,).
    Returns a nested dict (n, MRE in px and mm with median and max, per-landmark mean radial
    error, success rates, and BPD/OFD error statistics with Bland-Altman).
    """
    pred_orig = np.asarray(pred_orig, np.float64)
    true_orig = np.asarray(true_orig, np.float64)
    spacing = np.asarray(spacing_mm, np.float64)
    err_px = radial_errors(pred_orig, true_orig)
    err_mm = to_mm(err_px, spacing)
    mm = summary_stats(err_mm)
    px = summary_stats(err_px)
    d_pred = to_mm(diameters(pred_orig), spacing)
    d_true = to_mm(diameters(true_orig), spacing)
    out = {
        "n": int(len(pred_orig)),
        "mre_mm": mm["mean"], "mre_mm_median": mm["median"], "mre_mm_max": mm["max"],
        "mre_px": px["mean"], "mre_px_median": px["median"], "mre_px_max": px["max"],
        "landmark_mre_mm": {name: _mean(err_mm[:, k]) for k, name in enumerate(LANDMARKS)},
        "landmark_mre_px": {name: _mean(err_px[:, k]) for k, name in enumerate(LANDMARKS)},
        "success_rate": success_rates(err_mm, thresholds_mm),
    }
    for k, name in enumerate(DIAMETERS):
        out[name] = diameter_metrics(d_pred[:, k], d_true[:, k])
    return out


def _mean(values) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def short_metrics(metrics: dict) -> dict:
    """The three numbers used to compare decoding modes: MRE and the two diameter MAEs."""
    return {"mre_mm": metrics["mre_mm"], "bpd_mae_mm": metrics["bpd"]["mae_mm"],
            "ofd_mae_mm": metrics["ofd"]["mae_mm"]}


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
    d_true = to_mm(diameters(true), spacing)
    d_pred = to_mm(diameters(pred), spacing)
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
    from fhbiometry.inference.runner import predict

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


def test_predictions(model, codec, images, batch_size: int, scoring: dict | None):
    """(input points, raw outputs, ``inference.FramePrediction`` or None): the plain prediction,
    or with ``scoring`` (``confidence``, ``qc``, ``flip_test``) also the mirrored pass."""
    if not scoring:
        from fhbiometry.inference.runner import predict

        decoded, outputs = predict(model, codec, images, batch_size=batch_size)
        return decoded.points, outputs, None
    from fhbiometry.inference.runner import TorchBackend, predict_frames

    frames = predict_frames(TorchBackend(model, batch_size), codec, images, flip=True,
                            flip_test=bool(scoring.get("flip_test")))
    return frames.points, frames.outputs, frames


def validation_frames(model, codec, scoring: dict | None):
    """The validation arrays ``scoring["val"]`` predicted once, the way the test frames are
    (mirrored pass and ``flip_test``), for the confidence threshold and the size calibration;
    None without scoring or validation frames."""
    val = (scoring or {}).get("val")
    if val is None or not len(val["image"]):
        return None
    from fhbiometry.inference.runner import TorchBackend, predict_frames

    return predict_frames(TorchBackend(model), codec, val["image"], flip_test=bool(scoring.get("flip_test")))


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


def confidence_metrics(codec, data: dict, frames, table: pd.DataFrame, scoring: dict, val_frames) -> dict:
    """Sections ``confidence`` and ``per_subject`` (confidence.evaluation_report) of the
    evaluated test frames; the threshold comes from ``val_frames`` (``validation_frames``)."""
    from fhbiometry.trust.confidence import evaluation_report, frame_confidence

    cfg, qc, val = scoring["confidence"], scoring["qc"], scoring.get("val")
    peak = float(codec.peak)
    conf = frame_confidence(frames, data["transform"], qc, cfg, peak)["confidence"].to_numpy()
    table["confidence"] = conf
    conf_val = None
    if val_frames is not None:
        conf_val = frame_confidence(val_frames, val["transform"], qc, cfg, peak)["confidence"].to_numpy()
    rows = table[table["evaluated"]]
    mm = {k: rows[[f"{k}_ofd_mm", f"{k}_bpd_mm"]].to_numpy() for k in ("pred", "true")}
    return evaluation_report(rows["confidence"].to_numpy(), conf_val, rows["subject_id"].to_numpy(),
                             mm["pred"], mm["true"], cfg)


def evaluate_model(model, codec, meta: dict, data: dict, thresholds_mm, batch_size: int = 32,
                   timing_frames: int = 0, label_source: str = "csv",
                   scoring: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """Predict the test arrays ``data`` (contract 5) with ``model`` and its ``codec`` (decoding
    as params ``decode``) and compute every metric.

    Besides the headline (against the training labels, on the frames ``accepted_rows`` keeps),
    each reference of ``reference_sections(label_source)`` present in ``data`` gets a section
    ``vs_<name>`` with the same metrics and its own mean-shape floor; the codec's alternative
    decodings get short metrics. ``scoring`` (params ``evaluate.confidence``, ``qc``,
    ``decode.flip_test``, the validation arrays ``val``) adds ``confidence`` and ``per_subject``;
    its ``size_calibration`` (params ``decode.size_calibration``) scales the test predictions'
    diameters by factors estimated on ``val`` (section ``size_calibration``).
    Returns (metrics for metrics/eval/<model>.json, predictions table).
    """
    from fhbiometry.models.networks import count_parameters

    images = np.asarray(data["image"])
    transform = np.asarray(data["transform"], np.float64)
    spacing = np.asarray(data["spacing_mm"], np.float64)
    points, outputs, frames = test_predictions(model, codec, images, batch_size, scoring)
    val_frames = validation_frames(model, codec, scoring)
    factors = size_factors((scoring or {}).get("size_calibration", "none"), val_frames, (scoring or {}).get("val"))
    pred_orig = apply_factors(to_original(points, transform), factors)
    mask = accepted_rows(data)
    true = np.asarray(data["points_orig"], np.float64)
    metrics = {"model_kind": str(meta.get("kind")), "arch": str(meta.get("arch")),
               "n_params": int(count_parameters(model)), "best_epoch": meta.get("best_epoch"),
               "n_test": int(len(images)), "n_evaluated": int(mask.sum()),
               "n_excluded": int(len(images) - mask.sum()), **codec.report()}
    if factors is not None:
        metrics["size_calibration"] = factors
    metrics.update(compute_metrics(pred_orig[mask], true[mask], spacing[mask], thresholds_mm))
    floor = mean_shape_points(meta["train_mean_points"], transform)
    metrics["floor"] = compute_metrics(floor[mask], true[mask], spacing[mask], thresholds_mm)
    metrics.update(variant_metrics(codec, outputs, data, thresholds_mm))
    metrics.update(report_sections(data, pred_orig, mask))  # hc, normalised_error, large_errors, bins
    metrics.update(reference_metrics(data, pred_orig, floor, label_source, thresholds_mm))
    if timing_frames > 0:
        metrics["timing"] = time_inference(model, codec, images, timing_frames)
    table = predictions_table(data, pred_orig)
    if scoring:
        metrics.update(confidence_metrics(codec, data, frames, table, scoring, val_frames))
    return metrics, table


def run(params: dict, name: str, root=".") -> dict:
    """Stage body: models/<name>.safetensors + data/prepared/test.npz -> results/<name>/predictions.csv
    and metrics/eval/<name>.json. Returns the metrics."""
    import torch

    from fhbiometry.inference.runner import load_model
    from fhbiometry.config.paths import Paths
    from fhbiometry.core.store import load_npz, write_csv, write_json

    paths = Paths(root)
    torch.set_num_threads(int(params["threads"]))
    data = load_npz(paths.prepared("test"))
    loaded = load_model(paths.checkpoint(name), fix=f"rerun `dvc repro train@{name}`")
    check_checkpoint(loaded.meta, params["models"][name], data, name, paths.checkpoint(name))
    codec = loaded.codec.with_decoding(params["decode"])
    print(f"evaluate@{name}: {len(data['frame_id'])} test frames, {loaded.meta['kind']} {loaded.meta['arch']}")
    val = load_npz(paths.prepared("val")) if paths.prepared("val").is_file() else None
    scoring = {"confidence": params["evaluate"]["confidence"], "qc": params["qc"], "val": val,
               "flip_test": bool(params["decode"].get("flip_test", False)),
               "size_calibration": params["decode"].get("size_calibration", "none")}
    with torch.no_grad():
        metrics, table = evaluate_model(loaded.model, codec, loaded.meta, data,
                                        [float(t) for t in params["evaluate"]["thresholds_mm"]],
                                        timing_frames=int(params["evaluate"]["timing_frames"]),
                                        label_source=str(params["data"]["label_source"]), scoring=scoring)
    metrics = {"model": name, **metrics}
    write_csv(table, paths.predictions(name))
    write_json(paths.eval_metrics(name), metrics)
    print(f"evaluate@{name}: MRE {metrics['mre_mm']:.2f} mm, BPD MAE {metrics['bpd']['mae_mm']:.2f} mm, "
          f"OFD MAE {metrics['ofd']['mae_mm']:.2f} mm on {metrics['n_evaluated']} frames "
          f"({metrics['n_excluded']} excluded); floor MRE {metrics['floor']['mre_mm']:.2f} mm")
    c = metrics["confidence"]
    print(f"evaluate@{name}: confidence AUC(error > {c['bad_error_mm']:g} mm) {c['auc_bad']:.3f}; at threshold "
          f"{c['threshold']:.3f} rejects {c['rejected_share']:.1%} of frames, {c['bad_removed_share']:.1%} of bad ones")
    return metrics

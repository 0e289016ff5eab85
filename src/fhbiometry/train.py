"""Training one model (stage `train@<model>`): data selection, losses, schedule, validation,
DVCLive logging and the best checkpoint by validation mean radial error (mm).

Params: ``seed``, ``threads``, ``codec`` (``Codec.from_params``; not ``decode`` and
``pair_decode``, which only the evaluation reads), ``train`` (shared defaults)
and ``models.<name>`` (any ``train`` key plus ``arch``, ``kind``, ``head_channels``, ``head_skips``), merged by
``model_config``: the model's keys override the defaults, ``augment`` key by key.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import augment as aug
from .codec import COORDINATE_MODES, Codec
from .geometry import BPD, LANDMARKS, OFD, diameters, pair_invariant_errors
from .inference import predict
from .models import (ARCHS, HEATMAP_ARCHS, KINDS, build_model, check_input_size, count_parameters,
                     init_head_at_mean_shape, to_tensor)
from .params import ParamError, get, seed_everything
from .store import load_npz

TRAIN_KEYS = ("epochs", "batch_size", "lr", "schedule", "warmup_epochs", "weight_decay", "optimizer",
              "loss", "pair_invariant_loss", "heatmap_loss_weight", "foreground_weight", "pretrained",
              "head_init", "coordinates", "augment")
MODEL_KEYS = ("arch", "kind", "head_channels", "head_skips")
REGRESSION_LOSSES = ("mse", "l1", "smooth_l1")
HEATMAP_LOSSES = ("mse",)
SCHEDULES = ("cosine", "step", "constant")
OPTIMIZERS = ("adamw", "sgd")
HEAD_INITS = ("mean_shape", "random")
# The best epoch is chosen with the best decoding (sub-pixel, pairs decoded jointly), whatever
# codec.decode / codec.pair_decode say: those only set how `evaluate` reports, so changing them
# never retrains a model.
VALIDATION_DECODE = {"decode": "quadratic", "pair_decode": True}
SMOOTH_L1_BETA = 0.02     # quadratic below 2% of the input (2.6 px at 128; x input_size for pixel targets)
STEP_MILESTONES = (0.5, 0.75)  # 'step' schedule: lr x 0.1 at these fractions of the post-warm-up steps
STEP_GAMMA = 0.1
GRAD_CLIP = 5.0
SGD_MOMENTUM = 0.9
FOREGROUND_LEVEL = 0.1    # heatmap target pixels above this fraction of the peak get foreground_weight
DEFAULT_HEAD_CHANNELS = 128


# ---- params ---------------------------------------------------------------------------------
def _number(cfg, key, where, positive=True, integer=False):
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
        kind = "an integer" if integer else "a number"
        raise ParamError(f"params.yaml: {where}.{key} = {value!r}; give {kind}")
    if positive and not value > 0:
        raise ParamError(f"params.yaml: {where}.{key} = {value!r}; must be > 0")
    if not positive and value < 0:
        raise ParamError(f"params.yaml: {where}.{key} = {value!r}; must be >= 0")
    return int(value) if integer else float(value)


def model_config(params: dict, name: str) -> dict:
    """The merged, validated settings of ``models.<name>`` (train defaults + overrides)."""
    models = get(params, "models")
    if not isinstance(models, dict) or name not in models:
        have = sorted(models) if isinstance(models, dict) else []
        raise ParamError(f"params.yaml: models has no entry {name!r} (choose one of {have})")
    defaults = get(params, "train")
    own = models[name] or {}
    where = f"models.{name}"
    unknown = sorted(set(own) - set(TRAIN_KEYS) - set(MODEL_KEYS))
    if unknown:
        raise ParamError(f"params.yaml: {where} has unknown keys {unknown}; allowed: "
                         f"{list(MODEL_KEYS) + list(TRAIN_KEYS)}")
    unknown = sorted(set(defaults) - set(TRAIN_KEYS))
    if unknown:
        raise ParamError(f"params.yaml: train has unknown keys {unknown}; allowed: {list(TRAIN_KEYS)}")
    for label, section in (("train.augment", defaults.get("augment")), (f"{where}.augment", own.get("augment"))):
        if section is not None and not isinstance(section, dict):
            raise ParamError(f"params.yaml: {label} must be a mapping of augmentation settings, got {section!r}")
    cfg = {**copy.deepcopy(defaults), **{k: copy.deepcopy(v) for k, v in own.items() if k != "augment"}}
    cfg["augment"] = {**(defaults.get("augment") or {}), **(own.get("augment") or {})}
    for key in ("arch", "kind"):
        if key not in own:
            raise ParamError(f"params.yaml: {where}.{key} is missing (arch: {list(ARCHS)}, kind: {list(KINDS)})")
    missing = [k for k in TRAIN_KEYS if k not in cfg]
    if missing:
        raise ParamError(f"params.yaml: train is missing {missing} (see README, section Parameters)")

    if cfg["arch"] not in ARCHS:
        raise ParamError(f"params.yaml: {where}.arch = {cfg['arch']!r}; choose one of {list(ARCHS)}")
    if cfg["kind"] not in KINDS:
        raise ParamError(f"params.yaml: {where}.kind = {cfg['kind']!r}; choose one of {list(KINDS)}")
    if cfg["kind"] == "heatmap" and cfg["arch"] not in HEATMAP_ARCHS:
        raise ParamError(f"params.yaml: {where}.arch = {cfg['arch']!r} with kind heatmap: the heatmap "
                         f"model is only implemented with arch {list(HEATMAP_ARCHS)}")
    losses = HEATMAP_LOSSES if cfg["kind"] == "heatmap" else REGRESSION_LOSSES
    if cfg["loss"] not in losses:
        raise ParamError(f"params.yaml: {where}.loss = {cfg['loss']!r} (from train.loss unless the model "
                         f"sets it); for kind {cfg['kind']} choose one of {list(losses)}")
    if cfg["schedule"] not in SCHEDULES:
        raise ParamError(f"params.yaml: {where}.schedule = {cfg['schedule']!r}; choose one of {list(SCHEDULES)}")
    if cfg["optimizer"] not in OPTIMIZERS:
        raise ParamError(f"params.yaml: {where}.optimizer = {cfg['optimizer']!r}; choose one of "
                         f"{list(OPTIMIZERS)}")
    if cfg["coordinates"] not in COORDINATE_MODES:
        raise ParamError(f"params.yaml: {where}.coordinates = {cfg['coordinates']!r}; choose one of "
                         f"{list(COORDINATE_MODES)}")
    if cfg["head_init"] not in HEAD_INITS:
        raise ParamError(f"params.yaml: {where}.head_init = {cfg['head_init']!r}; choose one of "
                         f"{list(HEAD_INITS)}")
    cfg["epochs"] = _number(cfg, "epochs", where, integer=True)
    cfg["batch_size"] = _number(cfg, "batch_size", where, integer=True)
    cfg["lr"] = _number(cfg, "lr", where)
    cfg["warmup_epochs"] = _number(cfg, "warmup_epochs", where, positive=False)
    cfg["weight_decay"] = _number(cfg, "weight_decay", where, positive=False)
    cfg["heatmap_loss_weight"] = _number(cfg, "heatmap_loss_weight", where)
    cfg["foreground_weight"] = _number(cfg, "foreground_weight", where)
    if cfg["foreground_weight"] < 1:
        raise ParamError(f"params.yaml: {where}.foreground_weight = {cfg['foreground_weight']}; must be >= 1 "
                         "(1 = plain MSE)")
    cfg.setdefault("head_channels", DEFAULT_HEAD_CHANNELS)
    cfg["head_channels"] = _number(cfg, "head_channels", where, integer=True)
    cfg.setdefault("head_skips", True)
    if not isinstance(cfg["head_skips"], bool):
        raise ParamError(f"params.yaml: {where}.head_skips = {cfg['head_skips']!r}; choose true or false")
    if not isinstance(cfg["pair_invariant_loss"], bool):
        raise ParamError(f"params.yaml: {where}.pair_invariant_loss = {cfg['pair_invariant_loss']!r}; "
                         "choose true or false")
    if cfg["pretrained"] is None:
        cfg["pretrained"] = ""
    if not isinstance(cfg["pretrained"], str):
        raise ParamError(f"params.yaml: {where}.pretrained = {cfg['pretrained']!r}; give a file path or ''")
    cfg["augment"] = aug.check_config(cfg["augment"], where=f"{where}.augment (merged with train.augment)")
    return cfg


def codec_from_params(params: dict) -> Codec:
    """The codec of params ``codec``; the networks also need an input size that is a multiple of 32."""
    try:
        codec = Codec.from_params(get(params, "codec"))
        check_input_size(codec.input_size)
    except ParamError:
        raise
    except ValueError as err:
        raise ParamError(f"params.yaml: {err}") from err
    return codec


# ---- losses ---------------------------------------------------------------------------------
def _elementwise(pred, target, loss, beta=SMOOTH_L1_BETA):
    if loss == "mse":
        return (pred - target) ** 2
    if loss == "l1":
        return (pred - target).abs()
    return F.smooth_l1_loss(pred, target, reduction="none", beta=beta)


def regression_loss(pred, target, loss="smooth_l1", pair_invariant=True, beta=SMOOTH_L1_BETA):
    """Mean loss over (B, 8) coordinates. With ``pair_invariant``, each pair (OFD, BPD) of each
    sample takes the better of its two end assignments. ``beta``: smooth L1's quadratic zone, in
    the units of the targets."""
    if loss not in REGRESSION_LOSSES:
        raise ValueError(f"loss {loss!r}: choose one of {list(REGRESSION_LOSSES)}")
    p = pred.reshape(len(pred), -1, 2)
    t = target.reshape(len(target), -1, 2)
    if not pair_invariant:
        return _elementwise(p, t, loss, beta).mean()
    total = 0.0
    for i, j in (OFD, BPD):
        same = _elementwise(p[:, [i, j]], t[:, [i, j]], loss, beta).sum(dim=(1, 2))
        swapped = _elementwise(p[:, [j, i]], t[:, [i, j]], loss, beta).sum(dim=(1, 2))
        total = total + torch.minimum(same, swapped)
    return (total / (p.shape[1] * 2)).mean()


def heatmap_loss(pred, target, peak=1.0, foreground_weight=10.0, weight=1.0):
    """Pixel-wise MSE with ``foreground_weight`` on target pixels above 0.1 * peak, times ``weight``."""
    w = torch.where(target > FOREGROUND_LEVEL * peak, float(foreground_weight), 1.0)
    return weight * (w * (pred - target) ** 2).mean()


# ---- schedule -------------------------------------------------------------------------------
def lr_factor(step: int, steps_per_epoch: int, epochs: int, schedule: str, warmup_epochs: float) -> float:
    """Learning-rate multiplier of optimisation step ``step`` (0-based): linear warm-up over
    ``warmup_epochs``, then cosine to 0, x0.1 steps at half and three quarters, or constant."""
    total = epochs * steps_per_epoch
    warm = min(total, int(round(warmup_epochs * steps_per_epoch)))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return STEP_GAMMA ** sum(progress >= m for m in STEP_MILESTONES)
    if schedule == "constant":
        return 1.0
    raise ValueError(f"schedule {schedule!r}: choose one of {list(SCHEDULES)}")


def make_optimizer(model, name: str, lr: float, weight_decay: float):
    # fused: one multi-threaded kernel per step; for AlexNet's 57 M parameters about 10x faster
    # on CPU than the default per-tensor loop (and deterministic)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=SGD_MOMENTUM, nesterov=True,
                               weight_decay=weight_decay, fused=True)
    raise ValueError(f"optimizer {name!r}: choose one of {list(OPTIMIZERS)}")


# ---- data -----------------------------------------------------------------------------------
def file_hash(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def select(data: dict, mask) -> dict:
    mask = np.asarray(mask, dtype=bool)
    return {k: np.asarray(v)[mask] for k, v in data.items()}


def training_rows(data: dict) -> np.ndarray:
    finite = np.isfinite(np.asarray(data["points"], np.float64)).all(axis=(1, 2))
    return np.asarray(data["use_for_training"], bool) & finite


def validation_rows(data: dict) -> np.ndarray:
    """Validation frames: those the QC policy accepts (``use_for_training``: every label that
    passed QC under ``exclude``, every finite label under ``keep``), as in ``evaluate``."""
    finite = np.isfinite(np.asarray(data["points_orig"], np.float64)).all(axis=(1, 2))
    return np.asarray(data["use_for_training"], bool) & finite


def check_data(data: dict, codec: Codec, path: str) -> None:
    """The prepared arrays must have been built with this codec."""
    needed = ("image", "points", "transform", "points_orig", "spacing_mm", "label_ok", "use_for_training")
    missing = [k for k in needed if k not in data]
    if missing:
        raise KeyError(f"{path}: missing arrays {missing}: rerun `dvc repro heatmaps`")
    size = np.asarray(data["image"]).shape[-1]
    if size != codec.input_size:
        raise ValueError(f"{path}: images are {size} px but codec.input_size is {codec.input_size}: "
                         "rerun `dvc repro heatmaps`")


def batch_targets(points, codec: Codec, kind: str) -> torch.Tensor:
    """Regression: (B, 8) coordinates (``codec.coordinates``); heatmap: (B, 4, h, h) Gaussian targets."""
    if kind == "heatmap":
        return torch.from_numpy(np.stack([codec.encode_heatmaps(p) for p in points]).astype(np.float32))
    return torch.from_numpy(codec.encode_coordinates(points).astype(np.float32))


# ---- validation -----------------------------------------------------------------------------
def validation_metrics(pred_in, val: dict) -> dict:
    """MRE (px, mm) and BPD/OFD absolute errors (mm) of input-pixel predictions on ``val``."""
    transform = np.asarray(val["transform"], np.float64)
    pred = Codec.to_original(pred_in, transform)
    true = np.asarray(val["points_orig"], np.float64)
    spacing = np.asarray(val["spacing_mm"], np.float64)
    err_px = pair_invariant_errors(pred, true)
    err_mm = Codec.to_mm(err_px, spacing)
    diam_err = Codec.to_mm(np.abs(diameters(pred) - diameters(true)), spacing)
    return {"mre_px": float(err_px.mean()), "mre_mm": float(err_mm.mean()),
            "ofd_mae_mm": float(diam_err[:, 0].mean()), "bpd_mae_mm": float(diam_err[:, 1].mean())}


# ---- training -------------------------------------------------------------------------------
def train_model(params: dict, name: str, train_data: dict, val_data: dict, live=None,
                data_hash: str = "", progress: bool = True) -> dict:
    """Train ``models.<name>`` on the contract-5 arrays; returns the checkpoint dict (contract 6)
    holding the weights of the epoch with the lowest validation MRE in mm (ties: earlier)."""
    cfg = model_config(params, name)
    codec = dataclasses.replace(codec_from_params(params), coordinates=cfg["coordinates"], **VALIDATION_DECODE)
    canonical = bool(params["codec"].get("canonical_order", True))
    seed = int(get(params, "seed"))
    train = select(train_data, training_rows(train_data))
    val = select(val_data, validation_rows(val_data))
    if len(train["image"]) == 0:
        raise ValueError("data/prepared/train.npz has no frame with use_for_training and finite points: "
                         "check qc.policy and split.fractions")
    if len(val["image"]) == 0:
        raise ValueError("data/prepared/val.npz has no frame the QC policy accepts: the best epoch cannot be "
                         "chosen; give the val split a share in split.fractions")
    kind = cfg["kind"]
    images = np.asarray(train["image"])
    points = np.asarray(train["points"], np.float64)
    n = len(images)
    n_batches = max(1, math.ceil(n / cfg["batch_size"]))

    torch.manual_seed(seed)
    model = build_model(cfg["arch"], kind, num_landmarks=len(LANDMARKS), head_channels=cfg["head_channels"],
                        stride=codec.stride, pretrained=cfg["pretrained"], skips=cfg["head_skips"])
    if kind == "regression" and cfg["head_init"] == "mean_shape":
        init_head_at_mean_shape(model, cfg["arch"], codec.encode_coordinates(points.mean(axis=0)))
    optimizer = make_optimizer(model, cfg["optimizer"], cfg["lr"], cfg["weight_decay"])
    beta = SMOOTH_L1_BETA * (codec.input_size if codec.coordinates == "pixels" else 1.0)
    batch_rng = np.random.default_rng([seed, 1])
    aug_rng = np.random.default_rng([seed, 2])
    info = {"kind": kind, "codec": codec.to_dict(), "input_size": codec.input_size}
    print(f"train@{name}: {cfg['arch']} {kind}, {count_parameters(model):,} parameters, {n} training "
          f"frames, {len(val['image'])} validation frames, {cfg['epochs']} epochs of {n_batches} batches",
          flush=True)

    best = {"epoch": -1, "mre_mm": math.inf, "state": None}
    step = 0
    for epoch in range(cfg["epochs"]):
        start = time.perf_counter()
        model.train()
        batches = np.array_split(batch_rng.permutation(n), n_batches)
        losses = []
        bar = tqdm(batches, desc=f"{name} epoch {epoch + 1}/{cfg['epochs']}", leave=False,
                   disable=not progress)
        for idx in bar:
            lr = cfg["lr"] * lr_factor(step, n_batches, cfg["epochs"], cfg["schedule"], cfg["warmup_epochs"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            x_img, x_pts = aug.augment_batch(images[idx], points[idx], aug_rng, cfg["augment"], canonical)
            out = model(to_tensor(x_img))
            target = batch_targets(x_pts, codec, kind)
            if kind == "heatmap":
                loss = heatmap_loss(out, target, codec.peak, cfg["foreground_weight"], cfg["heatmap_loss_weight"])
            else:
                loss = regression_loss(out, target, cfg["loss"], cfg["pair_invariant_loss"], beta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4g}")
            step += 1
        val_out = predict(model, info, val["image"])
        metrics = validation_metrics(val_out["points"], val)
        if kind == "heatmap":  # a mean peak near 0 means the model sits at an all-zero output
            metrics["peak"] = float(np.mean(val_out["peak"]))
        train_loss = float(np.mean(losses))
        if live is not None:
            live.log_metric("train/loss", train_loss)
            live.log_metric("train/lr", lr)
            for key in ("mre_mm", "mre_px", "bpd_mae_mm", "ofd_mae_mm", "peak"):
                if key in metrics:
                    live.log_metric(f"val/{key}", metrics[key])
            live.next_step()
        improved = metrics["mre_mm"] < best["mre_mm"]
        if improved:
            best = {"epoch": epoch, "mre_mm": metrics["mre_mm"],
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        print(f"train@{name}: epoch {epoch + 1}/{cfg['epochs']} loss {train_loss:.5g} lr {lr:.3g} "
              f"val MRE {metrics['mre_mm']:.3f} mm ({metrics['mre_px']:.2f} px) "
              f"BPD MAE {metrics['bpd_mae_mm']:.3f} mm OFD MAE {metrics['ofd_mae_mm']:.3f} mm "
              + (f"peak {metrics['peak']:.3f} " if "peak" in metrics else "")
              + f"{time.perf_counter() - start:.1f} s{' *' if improved else ''}", flush=True)
    if best["state"] is None:  # every validation MRE was NaN
        raise ValueError(f"train@{name}: the validation MRE was never finite; check data/prepared/val.npz")

    return {"arch": cfg["arch"], "kind": kind, "state_dict": best["state"], "codec": codec.to_dict(),
            "landmarks": list(LANDMARKS), "input_size": int(codec.input_size),
            "head_channels": int(cfg["head_channels"]), "head_skips": bool(cfg["head_skips"]),
            "stride": int(codec.stride), "data_hash": data_hash,
            "model_params": cfg, "best_epoch": int(best["epoch"]), "best_val_mre_mm": float(best["mre_mm"]),
            "train_mean_points": points.mean(axis=0)}


def open_live(live_dir):
    """A DVCLive logger that only writes files under ``live_dir``: no dvc.yaml, no experiment,
    no report. Files: metrics.json (last epoch + best_epoch, best_val_mre_mm) and
    plots/metrics/{train,val}/<name>.tsv (columns step, <name>; step = epoch - 1)."""
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        return Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
    except SCMError as err:  # DVCLive 3.49 fails in a git repository that has no commit yet
        raise RuntimeError(f"DVCLive could not start in {Path.cwd()} ({err}): it needs a git repository "
                           "with at least one commit; commit once (`git add -A && git commit -m init`) "
                           "and rerun") from err


def run(params: dict, name: str, root=".", progress: bool = True) -> dict:
    """Stage body: data/prepared/{train,val}.npz -> models/<name>.pt and metrics/train/<name>/."""
    root = Path(root)
    model_config(params, name)  # fail on bad params before reading data
    seed_everything(int(get(params, "seed")), int(params.get("threads", 1) or 1))
    train_path = root / "data/prepared/train.npz"
    val_path = root / "data/prepared/val.npz"
    codec = codec_from_params(params)
    train_data, val_data = load_npz(train_path), load_npz(val_path)
    check_data(train_data, codec, "data/prepared/train.npz")
    check_data(val_data, codec, "data/prepared/val.npz")
    live = open_live(root / "metrics" / "train" / name)
    try:
        started = time.perf_counter()
        ckpt = train_model(params, name, train_data, val_data, live=live, data_hash=file_hash(train_path),
                           progress=progress)
        live.summary["best_epoch"] = ckpt["best_epoch"]
        live.summary["best_val_mre_mm"] = ckpt["best_val_mre_mm"]
        # wall clock of the whole training (not in the checkpoint, which stays byte-identical)
        live.summary["train_seconds"] = round(time.perf_counter() - started, 1)
    finally:
        live.end()
    out = root / "models" / f"{name}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    print(f"train@{name}: best epoch {ckpt['best_epoch'] + 1}, val MRE {ckpt['best_val_mre_mm']:.3f} mm "
          f"-> {out}", flush=True)
    return ckpt

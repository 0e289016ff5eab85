"""Training one model (stage `train@<model>`): data selection, schedule, validation, DVCLive
logging and the best checkpoint by validation mean radial error (mm).

The model's codec (``codecs.make_codec``, chosen once from the model's ``kind``) encodes the
targets, owns the loss and decodes the outputs: the loop below never asks which kind it trains.
Params: ``seed``, ``threads``, ``input``, ``landmarks``, ``codec``, ``train`` (shared defaults) and
``models.<name>`` (any ``train`` key plus ``arch``, ``kind``, ``head_channels``, ``head_skips``),
merged by ``schema.model_config``.
"""
from __future__ import annotations

import hashlib
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import augment as aug
from .checkpoint import save_checkpoint, state_dict_copy
from .codecs import make_codec
from .geometry import LANDMARKS, diameters, pair_invariant_errors, to_mm
from .inference import predict
from .letterbox import Letterbox, to_original
from .models import build_model, count_parameters, init_head_at_mean_shape, to_tensor
from .paths import Paths
from .prepare import accepted_rows, check_prepared, select
from .schema import model_config
from .store import load_npz

# The best epoch is chosen with the best decoding (sub-pixel, pairs decoded jointly), whatever
# params `decode` says: that only sets how `evaluate` reports, so changing it never retrains.
VALIDATION_DECODE = {"method": "quadratic", "pairs": True}
SCHEDULES = ("cosine", "step", "constant")
STEP_MILESTONES = (0.5, 0.75)  # 'step' schedule: lr x 0.1 at these fractions of the post-warm-up steps
STEP_GAMMA = 0.1
GRAD_CLIP = 5.0
SGD_MOMENTUM = 0.9


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy and PyTorch, and make PyTorch deterministic on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if threads:
        torch.set_num_threads(int(threads))


# ---- schedule and optimiser -----------------------------------------------------------------
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
    """AdamW or Nesterov SGD; ``fused``: one multi-threaded kernel per step (deterministic)."""
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=SGD_MOMENTUM, nesterov=True,
                               weight_decay=weight_decay, fused=True)
    raise ValueError(f"optimizer {name!r}: choose one of ['adamw', 'sgd']")


def file_hash(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---- validation -----------------------------------------------------------------------------
def validation_metrics(pred_in, val: dict) -> dict:
    """MRE (px, mm) and BPD/OFD absolute errors (mm) of input-pixel predictions on ``val``."""
    pred = to_original(pred_in, np.asarray(val["transform"], np.float64))
    true = np.asarray(val["points_orig"], np.float64)
    spacing = np.asarray(val["spacing_mm"], np.float64)
    err_px = pair_invariant_errors(pred, true)
    err_mm = to_mm(err_px, spacing)
    diam_err = to_mm(np.abs(diameters(pred) - diameters(true)), spacing)
    return {"mre_px": float(err_px.mean()), "mre_mm": float(err_mm.mean()),
            "ofd_mae_mm": float(diam_err[:, 0].mean()), "bpd_mae_mm": float(diam_err[:, 1].mean())}


def validate(model, codec, val: dict) -> dict:
    decoded, _ = predict(model, codec, val["image"])
    metrics = validation_metrics(decoded.points, val)
    if decoded.peak is not None:  # a mean peak near 0 means the model sits at an all-zero output
        metrics["peak"] = float(np.mean(decoded.peak))
    return metrics


# ---- one training run -----------------------------------------------------------------------
@dataclass
class Run:
    """Everything one training run holds: settings, data, model, optimiser, random streams."""
    name: str
    cfg: dict
    codec: object
    canonical: bool
    images: np.ndarray
    points: np.ndarray
    val: dict
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: object
    batch_rng: np.random.Generator
    aug_rng: np.random.Generator
    n_batches: int
    step: int = 0


def training_frames(train_data: dict, val_data: dict) -> tuple[dict, dict]:
    train = select(train_data, accepted_rows(train_data))
    val = select(val_data, accepted_rows(val_data))
    if len(train["image"]) == 0:
        raise ValueError("data/prepared/train.npz has no frame with use_for_training and finite points: "
                         "check qc.policy and split.fractions")
    if len(val["image"]) == 0:
        raise ValueError("data/prepared/val.npz has no frame the QC policy accepts: the best epoch cannot be "
                         "chosen; give the val split a share in split.fractions")
    return train, val


def start_run(name: str, cfg: dict, codec, canonical: bool, seed: int, train: dict, val: dict) -> Run:
    """Seeded model, optimiser and random streams for ``cfg`` (``schema.model_config``)."""
    points = np.asarray(train["points"], np.float64)
    torch.manual_seed(seed)
    model = build_model(cfg["arch"], cfg["kind"], num_landmarks=len(LANDMARKS), head_channels=cfg["head_channels"],
                        stride=getattr(codec, "stride", 4), pretrained=cfg["pretrained"], skips=cfg["head_skips"])
    mean = codec.mean_output(points)
    if mean is not None and cfg["head_init"] == "mean_shape":
        init_head_at_mean_shape(model, cfg["arch"], mean)
    return Run(name=name, cfg=cfg, codec=codec, canonical=canonical, images=np.asarray(train["image"]),
               points=points, val=val, model=model,
               optimizer=make_optimizer(model, cfg["optimizer"], cfg["lr"], cfg["weight_decay"]),
               loss_fn=codec.make_loss(cfg), batch_rng=np.random.default_rng([seed, 1]),
               aug_rng=np.random.default_rng([seed, 2]),
               n_batches=max(1, math.ceil(len(points) / cfg["batch_size"])))


def train_step(run: Run, idx) -> float:
    cfg = run.cfg
    lr = cfg["lr"] * lr_factor(run.step, run.n_batches, cfg["epochs"], cfg["schedule"], cfg["warmup_epochs"])
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    x_img, x_pts = aug.augment_batch(run.images[idx], run.points[idx], run.aug_rng, cfg["augment"], run.canonical)
    out = run.model(to_tensor(x_img))
    loss = run.loss_fn(out, torch.from_numpy(run.codec.encode(x_pts)))
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), GRAD_CLIP)
    run.optimizer.step()
    run.step += 1
    return float(loss.detach())


def train_epoch(run: Run, epoch: int, progress: bool) -> tuple[float, float]:
    """One pass over the shuffled training frames; returns (mean loss, last learning rate)."""
    run.model.train()
    batches = np.array_split(run.batch_rng.permutation(len(run.points)), run.n_batches)
    losses = []
    bar = tqdm(batches, desc=f"{run.name} epoch {epoch + 1}/{run.cfg['epochs']}", leave=False, disable=not progress)
    for idx in bar:
        losses.append(train_step(run, idx))
        bar.set_postfix(loss=f"{losses[-1]:.4g}")
    return float(np.mean(losses)), run.optimizer.param_groups[0]["lr"]


def log_epoch(run: Run, live, epoch: int, loss: float, lr: float, metrics: dict, seconds: float,
              improved: bool) -> None:
    if live is not None:
        live.log_metric("train/loss", loss)
        live.log_metric("train/lr", lr)
        for key in ("mre_mm", "mre_px", "bpd_mae_mm", "ofd_mae_mm", "peak"):
            if key in metrics:
                live.log_metric(f"val/{key}", metrics[key])
        live.next_step()
    print(f"train@{run.name}: epoch {epoch + 1}/{run.cfg['epochs']} loss {loss:.5g} lr {lr:.3g} "
          f"val MRE {metrics['mre_mm']:.3f} mm ({metrics['mre_px']:.2f} px) "
          f"BPD MAE {metrics['bpd_mae_mm']:.3f} mm OFD MAE {metrics['ofd_mae_mm']:.3f} mm "
          + (f"peak {metrics['peak']:.3f} " if "peak" in metrics else "")
          + f"{seconds:.1f} s{' *' if improved else ''}", flush=True)


def fit(run: Run, live=None, progress: bool = True) -> dict:
    """Every epoch; returns the best epoch (lowest validation MRE in mm, ties: earlier) and its weights."""
    best = {"epoch": -1, "mre_mm": math.inf, "state": None}
    for epoch in range(run.cfg["epochs"]):
        start = time.perf_counter()
        loss, lr = train_epoch(run, epoch, progress)
        metrics = validate(run.model, run.codec, run.val)
        improved = metrics["mre_mm"] < best["mre_mm"]
        if improved:
            best = {"epoch": epoch, "mre_mm": metrics["mre_mm"], "state": state_dict_copy(run.model)}
        log_epoch(run, live, epoch, loss, lr, metrics, time.perf_counter() - start, improved)
    if best["state"] is None:  # every validation MRE was NaN
        raise ValueError(f"train@{run.name}: the validation MRE was never finite; check data/prepared/val.npz")
    return best


def train_model(params: dict, name: str, train_data: dict, val_data: dict, live=None,
                data_hash: str = "", progress: bool = True) -> tuple[dict, dict]:
    """Train ``models.<name>`` on the prepared arrays; returns (best state dict, checkpoint metadata)."""
    cfg = model_config(params, name)
    letterbox = Letterbox(**params["input"])
    codec = make_codec(cfg["kind"], letterbox.size, params["codec"], VALIDATION_DECODE)
    train, val = training_frames(train_data, val_data)
    run = start_run(name, cfg, codec, bool(params["landmarks"]["canonical_order"]), int(params["seed"]), train, val)
    print(f"train@{name}: {cfg['arch']} {cfg['kind']}, {count_parameters(run.model):,} parameters, "
          f"{len(run.points)} training frames, {len(val['image'])} validation frames, {cfg['epochs']} epochs "
          f"of {run.n_batches} batches", flush=True)
    best = fit(run, live, progress)
    meta = {"arch": cfg["arch"], "kind": cfg["kind"], "codec": codec.settings(), "input": letterbox.to_dict(),
            "landmarks": list(LANDMARKS), "head_channels": int(cfg["head_channels"]),
            "head_skips": bool(cfg["head_skips"]), "data_hash": data_hash, "model_params": cfg,
            "best_epoch": int(best["epoch"]), "best_val_mre_mm": float(best["mre_mm"]),
            "train_mean_points": run.points.mean(axis=0).tolist()}
    return best["state"], meta


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
    """Stage body: data/prepared/{train,val}.npz -> models/<name>.safetensors and metrics/train/<name>/."""
    paths = Paths(root)
    model_config(params, name)  # fail on bad params before reading data
    seed_everything(int(params["seed"]), int(params["threads"]))
    train_data, val_data = load_npz(paths.prepared("train")), load_npz(paths.prepared("val"))
    size = int(params["input"]["size"])
    check_prepared(train_data, size, paths.prepared("train"))
    check_prepared(val_data, size, paths.prepared("val"))
    live = open_live(paths.train_log(name))
    try:
        started = time.perf_counter()
        state, meta = train_model(params, name, train_data, val_data, live=live,
                                  data_hash=file_hash(paths.prepared("train")), progress=progress)
        live.summary["best_epoch"] = meta["best_epoch"]
        live.summary["best_val_mre_mm"] = meta["best_val_mre_mm"]
        # wall clock of the whole training (not in the checkpoint, which stays byte-identical)
        live.summary["train_seconds"] = round(time.perf_counter() - started, 1)
    finally:
        live.end()
    out = save_checkpoint(paths.checkpoint(name), state, meta)
    print(f"train@{name}: best epoch {meta['best_epoch'] + 1}, val MRE {meta['best_val_mre_mm']:.3f} mm "
          f"-> {out}", flush=True)
    return meta

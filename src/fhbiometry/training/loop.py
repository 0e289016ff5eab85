"""Training one model (stage `train@<model>`): data selection, schedule, validation, DVCLive
logging and the best checkpoint by validation mean radial error (mm).

The model's codec (``codecs.make_codec``, chosen once from the model's ``kind``) encodes the
targets, owns the loss and decodes the outputs: the loop below never asks which kind it trains.
Params: ``seed``, ``threads``, ``input``, ``landmarks``, ``codec``, ``train`` (shared defaults) and
``models.<name>`` (any ``train`` key plus ``arch``, ``kind``, ``head_channels``, ``head_skips``),
merged by ``schema.model_config``; ``device`` (``device.resolve``) says where it runs. Under
``torchrun`` each process trains on its shard of every global batch (``distributed``); after each
epoch rank 0 writes a resume state (``resume``) that a rerun after a crash continues from.
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

from fhbiometry.training import augment as aug
from fhbiometry.training import device as dev
from fhbiometry.training import distributed as dist
from fhbiometry.training import precise_bn, resume
from fhbiometry.training.schedules import lr_factor, make_optimizer
from fhbiometry.models.checkpoint import save_checkpoint, state_dict_copy
from fhbiometry.models.init_from import init_from_checkpoint
from fhbiometry.codecs import make_codec
from fhbiometry.core.geometry import LANDMARKS
from fhbiometry.core.letterbox import Letterbox
from fhbiometry.models.networks import build_model, count_parameters, init_head_at_mean_shape, to_tensor
from fhbiometry.config.paths import Paths
from fhbiometry.data.prepare import check_prepared
from fhbiometry.training.validation import training_frames, validate
from fhbiometry.config.schema import model_codec_params, model_config
from fhbiometry.core.store import load_npz

# The best epoch is chosen with the best decoding (sub-pixel, pairs decoded jointly), whatever
# params `decode` says: that only sets how `evaluate` reports, so changing it never retrains.
VALIDATION_DECODE = {"method": "quadratic", "pairs": True}
GRAD_CLIP = 5.0
# model settings a checkpoint's metadata names only when they are set: a checkpoint trained
# without them stays byte-identical to one trained before they existed
UNSET = {"seed": None, "precise_bn": False, "init_from": ""}


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy and PyTorch, and make PyTorch deterministic on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if threads:
        torch.set_num_threads(int(threads))


def file_hash(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
    hw: dev.Hardware = dev.Hardware(torch.device("cpu"))
    world: dist.World = dist.World()
    net: torch.nn.Module | None = None   # what the steps call: the model, compiled and/or in DDP
    scaler: object = None                # fp16 gradient scaler
    history: list = None                 # the metrics logged per epoch (replayed on resume)
    init: dict | None = None             # train.init_from: what was loaded (models.init_from)
    step: int = 0

    def __post_init__(self):
        self.net = self.model if self.net is None else self.net
        self.history = [] if self.history is None else self.history


def start_run(name: str, cfg: dict, codec, canonical: bool, seed: int, train: dict, val: dict,
              hw: dev.Hardware | None = None, world: dist.World | None = None, root=".") -> Run:
    """Seeded model (on ``hw``'s device), optimiser and random streams for ``cfg``
    (``schema.model_config``); ``cfg['init_from']`` (relative to ``root``) loaded over the fresh
    weights. ``start_steps`` then compiles / wraps the model for the steps."""
    hw, world = hw or dev.Hardware(torch.device("cpu")), world or dist.World()
    points = np.asarray(train["points"], np.float64)
    torch.manual_seed(seed)
    model = build_model(cfg["arch"], cfg["kind"], num_landmarks=len(LANDMARKS), head_channels=cfg["head_channels"],
                        stride=codec.stride, pretrained=cfg["pretrained"], skips=cfg["head_skips"])
    mean = codec.mean_output(points)
    if mean is not None and cfg["head_init"] == "mean_shape":
        init_head_at_mean_shape(model, cfg["arch"], mean)
    init = None
    if cfg.get("init_from"):
        init = init_from_checkpoint(model, cfg["arch"], cfg["kind"], Path(root) / cfg["init_from"],
                                    f"models.{name}.init_from", shown=cfg["init_from"])
        print(f"train@{name}: started from {cfg['init_from']} (a {init['kind']} model, sha256 {init['sha256'][:12]}): "
              f"{init['loaded']} tensors loaded, {len(init['fresh'])} freshly initialised", flush=True)
    model = dev.prepare_model(model, hw)
    n_batches = max(1, math.ceil(len(points) / cfg["batch_size"]))
    dist.check_batches(len(points), n_batches, world, name)
    return Run(name=name, cfg=cfg, codec=codec, canonical=canonical, images=np.asarray(train["image"]),
               points=points, val=val, model=model,
               optimizer=make_optimizer(model, cfg["optimizer"], cfg["lr"], cfg["weight_decay"]),
               loss_fn=codec.make_loss(cfg), batch_rng=np.random.default_rng([seed, 1]),
               aug_rng=np.random.default_rng([seed, 2]), n_batches=n_batches, hw=hw, world=world,
               scaler=dev.make_scaler(hw), init=init)


def start_steps(run: Run) -> None:
    """The module the steps call: the model, in DDP for world size > 1, compiled when asked."""
    run.net = dev.compiled(dist.wrap(run.model, run.world, run.hw.device), run.hw)


def train_step(run: Run, idx) -> float:
    """One optimisation step on the global batch ``idx``; returns its mean loss. Every rank
    augments the whole global batch (one random stream) and trains on its shard of it."""
    cfg = run.cfg
    lr = cfg["lr"] * lr_factor(run.step, run.n_batches, cfg["epochs"], cfg["schedule"], cfg["warmup_epochs"])
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    x_img, x_pts = aug.augment_batch(run.images[idx], run.points[idx], run.aug_rng, cfg["augment"], run.canonical)
    if run.world.distributed:
        mine = dist.shard(idx, run.world)
        x_img, x_pts = x_img[mine], x_pts[mine]
    x = dev.to_device(to_tensor(x_img), run.hw, image=True)
    target = dev.to_device(torch.from_numpy(run.codec.encode(x_pts)), run.hw)
    with dev.autocast(run.hw):
        out = run.net(x)
    loss = run.loss_fn(out.float(), target)
    run.optimizer.zero_grad(set_to_none=True)
    backward_and_step(run, loss, len(x_pts), len(idx))
    run.step += 1
    return dist.global_mean(float(loss.detach()), len(x_pts), len(idx), run.world, run.hw.device)


def backward_and_step(run: Run, loss, n_local: int, n_global: int) -> None:
    """Backward (weighted by the shard's share of the global batch under DDP; scaled for fp16),
    gradient clipping, optimiser step."""
    if run.world.distributed:
        loss = loss * dist.loss_weight(n_local, n_global, run.world)
    if run.scaler is None:
        loss.backward()
    else:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), GRAD_CLIP)
    if run.scaler is None:
        run.optimizer.step()
    else:
        run.scaler.step(run.optimizer)
        run.scaler.update()


def train_epoch(run: Run, epoch: int, progress: bool) -> tuple[float, float]:
    """One pass over the shuffled training frames; returns (mean loss, last learning rate)."""
    run.model.train()
    batches = np.array_split(run.batch_rng.permutation(len(run.points)), run.n_batches)
    losses = []
    bar = tqdm(batches, desc=f"{run.name} epoch {epoch + 1}/{run.cfg['epochs']}", leave=False,
               disable=not (progress and run.world.main))
    for idx in bar:
        losses.append(train_step(run, idx))
        bar.set_postfix(loss=f"{losses[-1]:.4g}")
    return float(np.mean(losses)), run.optimizer.param_groups[0]["lr"]


def log_record(live, record: dict) -> None:
    """One epoch's metrics into DVCLive (one step)."""
    if live is not None:
        for key, value in record.items():
            live.log_metric(key, value)
        live.next_step()


def log_epoch(run: Run, live, epoch: int, loss: float, lr: float, metrics: dict, seconds: float,
              improved: bool) -> None:
    record = {"train/loss": loss, "train/lr": lr}
    record.update({f"val/{key}": metrics[key] for key in ("mre_mm", "mre_px", "bpd_mae_mm", "ofd_mae_mm", "peak")
                   if key in metrics})
    run.history.append(record)
    log_record(live, record)
    print(f"train@{run.name}: epoch {epoch + 1}/{run.cfg['epochs']} loss {loss:.5g} lr {lr:.3g} "
          f"val MRE {metrics['mre_mm']:.3f} mm ({metrics['mre_px']:.2f} px) "
          f"BPD MAE {metrics['bpd_mae_mm']:.3f} mm OFD MAE {metrics['ofd_mae_mm']:.3f} mm "
          + (f"peak {metrics['peak']:.3f} " if "peak" in metrics else "")
          + f"{seconds:.1f} s{' *' if improved else ''}", flush=True)


def fit(run: Run, live=None, progress: bool = True, state_file=None, fingerprint: str = "") -> dict:
    """Every epoch; returns the best epoch (lowest validation MRE in mm, ties: earlier) and its weights
    (rank 0; other ranks only train). ``state_file``: resume from it when its fingerprint matches,
    write it after each epoch (rank 0), delete it at the end."""
    best = {"epoch": -1, "mre_mm": math.inf, "state": None}
    first = 0
    saved = resume.load(state_file, fingerprint) if state_file is not None else None
    if saved is not None:
        first, best = restore(run, live, *saved)
        print(f"train@{run.name}: resuming after epoch {first} from {state_file}", flush=True)
    start_steps(run)
    for epoch in range(first, run.cfg["epochs"]):
        start = time.perf_counter()
        loss, lr = train_epoch(run, epoch, progress)
        if not run.world.main:
            continue
        if run.cfg["precise_bn"]:
            precise_bn.recalibrate(run.model, run.images, run.cfg["batch_size"],
                                   lambda x: dev.to_device(x, run.hw, image=True))
        metrics = validate(run.model, run.codec, run.val)
        improved = metrics["mre_mm"] < best["mre_mm"]
        if improved:
            best = {"epoch": epoch, "mre_mm": metrics["mre_mm"], "state": state_dict_copy(run.model)}
        log_epoch(run, live, epoch, loss, lr, metrics, time.perf_counter() - start, improved)
        if state_file is not None:
            resume.save(state_file, *snapshot(run, epoch, best, fingerprint))
    if run.world.main and best["state"] is None:  # every validation MRE was NaN
        raise ValueError(f"train@{run.name}: the validation MRE was never finite; check data/prepared/val.npz")
    return best


# ---- resume state ---------------------------------------------------------------------------
def snapshot(run: Run, epoch: int, best: dict, fingerprint: str) -> tuple[dict, dict]:
    """(tensors, info) of the run after ``epoch``: what ``restore`` needs to go on from epoch + 1."""
    tensors = {f"model.{k}": v for k, v in run.model.state_dict().items()}
    optim_tensors, optim_rest = resume.flatten_optimizer(run.optimizer.state_dict())
    tensors.update({f"optim.{k}": v for k, v in optim_tensors.items()})
    best_is_model = best["epoch"] == epoch
    if not best_is_model and best["state"] is not None:
        tensors.update({f"best.{k}": v for k, v in best["state"].items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if run.hw.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(run.hw.device)
    info = {"fingerprint": fingerprint, "epoch": epoch, "step": run.step, "optimizer": optim_rest,
            "best_epoch": best["epoch"], "best_mre_mm": best["mre_mm"], "best_is_model": best_is_model,
            "batch_rng": run.batch_rng.bit_generator.state, "aug_rng": run.aug_rng.bit_generator.state,
            "scaler": run.scaler.state_dict() if run.scaler is not None else None, "history": run.history}
    return tensors, info


def restore(run: Run, live, tensors: dict, info: dict) -> tuple[int, dict]:
    """Load a ``snapshot`` into ``run`` and replay its logged epochs into ``live``; returns (the
    first epoch still to train, the best-so-far record)."""
    def part(prefix):
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    run.model.load_state_dict(part("model."))
    run.optimizer.load_state_dict(resume.unflatten_optimizer(part("optim."), info["optimizer"]))
    run.batch_rng.bit_generator.state = info["batch_rng"]
    run.aug_rng.bit_generator.state = info["aug_rng"]
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and run.hw.device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], run.hw.device)
    if run.scaler is not None and info["scaler"]:
        run.scaler.load_state_dict(info["scaler"])
    run.step = int(info["step"])
    run.history = list(info["history"])
    for record in run.history:
        log_record(live, record)
    best_state = state_dict_copy(run.model) if info["best_is_model"] else part("best.")
    best = {"epoch": int(info["best_epoch"]), "mre_mm": float(info["best_mre_mm"]),
            "state": {k: v.to(run.hw.device) for k, v in best_state.items()} or None}
    return int(info["epoch"]) + 1, best


def training_seed(params: dict, cfg: dict) -> int:
    """The seed of initialisation, batch order and augmentation: ``train.seed`` (or the model's
    override) when set, else the top-level ``seed`` (which also seeds the data)."""
    return int(params["seed"] if cfg.get("seed") is None else cfg["seed"])


def train_model(params: dict, name: str, train_data: dict, val_data: dict, live=None,
                data_hash: str = "", progress: bool = True, hw: dev.Hardware | None = None,
                world: dist.World | None = None, state_file=None, val_hash: str = "",
                root=".") -> tuple[dict, dict]:
    """Train ``models.<name>`` on the prepared arrays; returns (best state dict, checkpoint metadata);
    the state dict is None on ranks other than 0. ``hw``: where (default: params ``device``);
    ``state_file``: the resume state (``resume``; None: no resume); ``root``: the repository
    (``init_from`` is relative to it)."""
    cfg = model_config(params, name)
    world = world or dist.World()
    hw = hw or dev.resolve(params.get("device"), world.local_rank)
    letterbox = Letterbox(**params["input"])
    codec = make_codec(cfg["kind"], letterbox.size, model_codec_params(params, cfg), VALIDATION_DECODE)
    train, val = training_frames(train_data, val_data)
    run = start_run(name, cfg, codec, bool(params["landmarks"]["canonical_order"]), training_seed(params, cfg),
                    train, val, hw, world, root)
    if world.main:
        print(f"train@{name}: {cfg['arch']} {cfg['kind']}, {count_parameters(run.model):,} parameters, "
              f"{len(run.points)} training frames, {len(val['image'])} validation frames, {cfg['epochs']} epochs "
              f"of {run.n_batches} batches on {hw.device} (amp {hw.amp}, compile {hw.compile}, channels_last "
              f"{hw.channels_last}, {world.size} process{'es' if world.distributed else ''}); codec {codec.settings()}",
              flush=True)
    key = resume.fingerprint(params, cfg, (data_hash, val_hash), world.size) if state_file is not None else ""
    best = fit(run, live, progress, state_file, key)
    meta = {"arch": cfg["arch"], "kind": cfg["kind"], "codec": codec.settings(), "input": letterbox.to_dict(),
            "landmarks": list(LANDMARKS), "head_channels": int(cfg["head_channels"]),
            "head_skips": bool(cfg["head_skips"]), "data_hash": data_hash,
            "model_params": {k: v for k, v in cfg.items() if k not in UNSET or v != UNSET[k]},
            "best_epoch": int(best["epoch"]), "best_val_mre_mm": float(best["mre_mm"]),
            "train_mean_points": run.points.mean(axis=0).tolist()}
    if run.init is not None:
        meta["init_from"] = run.init
    return best["state"], meta


def open_live(live_dir):
    """A DVCLive logger that only writes files under ``live_dir``: no dvc.yaml, no experiment,
    no report. Files: metrics.json (last epoch + best_epoch, best_val_mre_mm) and
    plots/metrics/{train,val}/<name>.tsv (columns step, <name>; step = epoch - 1)."""
    from dvclive import Live  # lazy: dvclive only when a run logs live metrics
    from scmrepo.exceptions import SCMError  # lazy: scmrepo (dvclive's) only with dvclive

    try:
        return Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
    except SCMError as err:  # DVCLive 3.49 fails in a git repository that has no commit yet
        raise RuntimeError(f"DVCLive could not start in {Path.cwd()} ({err}): it needs a git repository "
                           "with at least one commit; commit once (`git add -A && git commit -m init`) "
                           "and rerun") from err


def run(params: dict, name: str, root=".", progress: bool = True, resumable: bool = True,
        data_dir=None, extra_meta: dict | None = None) -> dict:
    """Stage body: data/prepared/{train,val}.npz -> models/<name>.safetensors and metrics/train/<name>/
    (rank 0 writes; under torchrun the other ranks only train). ``resumable``: keep a resume state
    in .resume/<name>.safetensors after each epoch and continue from it after a crash. ``data_dir``:
    another folder of {train,val}.npz in the prepared form (a refinement's crops); ``extra_meta``:
    more fields for the checkpoint's metadata."""
    paths = Paths(root)
    train_path, val_path = ((paths.prepared("train"), paths.prepared("val")) if data_dir is None
                            else (Path(data_dir) / "train.npz", Path(data_dir) / "val.npz"))
    model_config(params, name)  # fail on bad params before reading data
    world = dist.from_env()
    seed_everything(training_seed(params, model_config(params, name)), int(params["threads"]))
    hw = dev.resolve(params.get("device"), world.local_rank)
    dev.deterministic(hw)
    train_data, val_data = load_npz(train_path), load_npz(val_path)
    size = int(params["input"]["size"])
    check_prepared(train_data, size, train_path)
    check_prepared(val_data, size, val_path)
    dist.init(world, hw.device)
    state_file = resume.state_path(root, name) if resumable else None
    live = open_live(paths.train_log(name)) if world.main else None
    try:
        started = time.perf_counter()
        state, meta = train_model(params, name, train_data, val_data, live=live,
                                  data_hash=file_hash(train_path), progress=progress, hw=hw,
                                  world=world, state_file=state_file, val_hash=file_hash(val_path),
                                  root=root)
        meta.update(extra_meta or {})
        if live is not None:
            record_summary(live, meta, hw, world, time.perf_counter() - started)
    finally:
        if live is not None:
            live.end()
    if world.main:
        out = save_checkpoint(paths.checkpoint(name), state, meta)
        if state_file is not None:
            resume.clear(state_file)
        print(f"train@{name}: best epoch {meta['best_epoch'] + 1}, val MRE {meta['best_val_mre_mm']:.3f} mm "
              f"-> {out}", flush=True)
    dist.finish(world)
    return meta


def record_summary(live, meta: dict, hw: dev.Hardware, world: dist.World, seconds: float) -> None:
    """The run's summary in metrics.json: best epoch, where it ran, wall clock (none of it in the
    checkpoint, which stays byte-identical whatever the device or the time)."""
    live.summary["best_epoch"] = meta["best_epoch"]
    live.summary["best_val_mre_mm"] = meta["best_val_mre_mm"]
    live.summary["device"] = hw.device.type
    live.summary["amp"] = hw.amp
    live.summary["world_size"] = world.size
    live.summary["train_seconds"] = round(seconds, 1)

"""Training on several processes with ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node N stages/train.py --model X`` starts N processes with RANK,
LOCAL_RANK and WORLD_SIZE set; a plain ``python stages/train.py`` is world size 1 and never
touches torch.distributed. Rule: every rank draws the same shuffled order and the same
augmentation for the whole global batch (``train.batch_size``), then trains on its shard
``batch[rank::world]``; gradients are averaged over ranks and each shard's loss is weighted by
its share of the global batch, so the step is that of the global batch on one process (up to
BatchNorm statistics, which are per process). The learning rate is not scaled. Rank 0 alone
validates and writes the checkpoint, the DVCLive logs and the resume state.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def from_env(env=None) -> World:
    """The process's place in a torchrun group (RANK, LOCAL_RANK, WORLD_SIZE); world size 1 outside."""
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(rank=int(env["RANK"]), local_rank=int(env.get("LOCAL_RANK", env["RANK"])), size=size)


def init(world: World, device: torch.device) -> None:
    """Join the process group (nccl on CUDA, gloo otherwise); nothing for world size 1."""
    if world.distributed and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, rank=world.rank, world_size=world.size)


def finish(world: World) -> None:
    if world.distributed and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel for world size > 1, else itself."""
    if not world.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def check_batches(n_frames: int, n_batches: int, world: World, name: str) -> None:
    """Every global batch must give every rank at least one frame."""
    smallest = n_frames // n_batches
    if world.distributed and smallest < world.size:
        raise ValueError(f"train@{name}: the smallest global batch has {smallest} frames for {world.size} "
                         "processes: raise train.batch_size (it is the global batch) or use fewer processes")


def shard(idx: np.ndarray, world: World) -> np.ndarray:
    """This rank's positions in a global batch (``range(len(idx))[rank::world]``)."""
    return np.arange(len(idx))[world.rank::world.size]


def loss_weight(n_local: int, n_global: int, world: World) -> float:
    """The factor that makes DDP's mean of the ranks' gradients the gradient of the global batch mean."""
    return n_local * world.size / n_global


def global_mean(value: float, n_local: int, n_global: int, world: World, device=None) -> float:
    """The global batch mean of a per-rank mean ``value`` (``value`` itself for world size 1)."""
    if not world.distributed:
        return value
    total = torch.tensor([value * n_local], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(total)
    return float(total.item()) / n_global


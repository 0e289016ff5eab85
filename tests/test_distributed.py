"""torchrun for real: 2 CPU processes (gloo) train one tiny model; exactly one checkpoint is written
(rank 0), and the result is the global-batch rule's: it equals, to float rounding, a one-process
run that applies the same rule (each half of every global batch through the network on its own,
gradients averaged), and it is close to a plain one-process run with the same global batch (not
equal: BatchNorm normalises each process's half batch by its own statistics)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fhbiometry.training import augment as aug
from fhbiometry.training import loop as train
from fhbiometry.models.networks import to_tensor
from conftest import REPO, tiny_params, write_workspace

pytestmark = pytest.mark.slow   # module fixtures (torchrun, an export, a server, a browser) over a second

WORLD = 2
N_TRAIN, BATCH, EPOCHS = 16, 8, 2
# Tolerances (measured differences in docs/scaling.md): the same rule on one process differs at most
# by float rounding in the gradient reduction; the plain one-process run differs by per-process
# BatchNorm statistics.
SAME_RULE_MAX_ABS = 1e-6          # largest weight difference, any tensor
SINGLE_PROCESS_MRE_MM = 0.1       # validation MRE (mm) of the best and of the last epoch


def emulated_step(run, idx) -> float:
    """``train.train_step`` as WORLD processes compute it, on one process: the global batch
    augmented once, each rank's shard forward on its own (its own BatchNorm statistics), the
    gradients of the shard losses weighted by their share; the BatchNorm running statistics are
    rank 0's (DDP broadcasts rank 0's buffers)."""
    cfg = run.cfg
    lr = cfg["lr"] * train.lr_factor(run.step, run.n_batches, cfg["epochs"], cfg["schedule"], cfg["warmup_epochs"])
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    x_img, x_pts = aug.augment_batch(run.images[idx], run.points[idx], run.aug_rng, cfg["augment"], run.canonical)
    run.optimizer.zero_grad(set_to_none=True)
    losses, rank0_buffers = [], None
    for rank in range(WORLD):
        mine = np.arange(len(idx))[rank::WORLD]
        loss = run.loss_fn(run.model(to_tensor(x_img[mine])), torch.from_numpy(run.codec.encode(x_pts[mine])))
        (loss * len(mine) / len(idx)).backward()
        losses.append(float(loss.detach()) * len(mine))
        if rank == 0:
            rank0_buffers = {k: v.clone() for k, v in run.model.named_buffers()}
    with torch.no_grad():
        for name, value in run.model.named_buffers():
            value.copy_(rank0_buffers[name])
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), train.GRAD_CLIP)
    run.optimizer.step()
    run.step += 1
    return sum(losses) / len(idx)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(torchrun output, {"ddp" | "rule" | "single": workspace})."""
    params = tiny_params(epochs=EPOCHS, batch_size=BATCH)
    base = tmp_path_factory.mktemp("ddp")
    roots = {k: write_workspace(base / k, params, n_train=N_TRAIN) for k in ("ddp", "rule", "single")}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={WORLD}", str(REPO / "stages/train.py"), "--model", "m"],
                          cwd=roots["ddp"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    torch.set_num_threads(1)
    old = os.getcwd()
    try:
        os.chdir(roots["single"])
        train.run(params, "m", root=roots["single"], progress=False, resumable=False)
        os.chdir(roots["rule"])
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(train, "train_step", emulated_step)
            train.run(params, "m", root=roots["rule"], progress=False, resumable=False)
    finally:
        os.chdir(old)
    return proc.stdout + proc.stderr, roots


def metrics(root) -> dict:
    return json.loads((root / "metrics/train/m/metrics.json").read_text())


def test_torchrun_writes_one_checkpoint_and_logs_once(runs):
    out, roots = runs
    ddp = roots["ddp"]
    assert [p.name for p in (ddp / "models").iterdir()] == ["m.safetensors"]
    assert not (ddp / ".resume").exists()
    assert out.count("train@m: epoch ") == EPOCHS  # rank 0 alone logs
    assert metrics(ddp)["world_size"] == WORLD
    assert metrics(ddp)["device"] == "cpu"
    tsv = (ddp / "metrics/train/m/plots/metrics/val/mre_mm.tsv").read_text().splitlines()
    assert len(tsv) == 1 + EPOCHS


def test_torchrun_equals_the_global_batch_rule_on_one_process(runs):
    _, roots = runs
    ddp, rule = load_file(roots["ddp"] / "models/m.safetensors"), load_file(roots["rule"] / "models/m.safetensors")
    assert ddp.keys() == rule.keys()
    worst = max(float((ddp[k].double() - rule[k].double()).abs().max()) for k in ddp)
    print(f"torchrun vs the same rule on one process: max |weight difference| {worst:.3g}")
    assert worst <= SAME_RULE_MAX_ABS
    assert metrics(roots["ddp"])["best_epoch"] == metrics(roots["rule"])["best_epoch"]


def test_torchrun_is_close_to_one_process_with_the_same_global_batch(runs):
    _, roots = runs
    ddp, single = metrics(roots["ddp"]), metrics(roots["single"])
    best = abs(ddp["best_val_mre_mm"] - single["best_val_mre_mm"])
    last = abs(ddp["val"]["mre_mm"] - single["val"]["mre_mm"])
    print(f"torchrun vs one process: |validation MRE difference| best {best:.3g} mm, last {last:.3g} mm")
    assert best <= SINGLE_PROCESS_MRE_MM
    assert last <= SINGLE_PROCESS_MRE_MM

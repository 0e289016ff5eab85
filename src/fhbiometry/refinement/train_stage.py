"""Stage body ``train_refine@<name>``: the training loop, unchanged, on a refinement's crops ->
models/<name>.safetensors and metrics/train/<name>/ (the checkpoint's metadata says what it
crops: ``refine``)."""
from __future__ import annotations

from fhbiometry.config.paths import Paths
from fhbiometry.refinement.settings import crop_settings, refine_params


def run_train(params: dict, name: str, root=".", progress: bool = True) -> dict:
    """Stage body ``train_refine@<name>``: the training loop on the refinement's crops."""
    from fhbiometry.training.loop import run  # lazy: torch only where a model trains

    return run(refine_params(params, name), name, root=root, progress=progress,
               data_dir=Paths(root).refine_dir(name), extra_meta={"refine": crop_settings(params, name)})

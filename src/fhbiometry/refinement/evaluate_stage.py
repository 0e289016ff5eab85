"""Stage body ``evaluate_refine@<name>``: the evaluation, unchanged, on a refinement's test crops
(with ``decode.refine_passes: 2`` cut once more around the refined heads, validation alike) ->
results/<name>/predictions.csv and metrics/eval/<name>.json, in original pixels and mm as every
model's."""
from __future__ import annotations

from fhbiometry.config.paths import Paths
from fhbiometry.core.store import load_npz
from fhbiometry.refinement.crops import cropped_split
from fhbiometry.refinement.heads import model_heads
from fhbiometry.refinement.settings import refine_params


def second_pass(loaded, arrays: dict, frames: dict, params: dict, name: str) -> dict:
    """The arrays cut once more, around the heads the refinement predicts on them."""
    cfg = params["refine"][name]
    heads = model_heads(loaded, arrays, params["decode"])
    out, _ = cropped_split(arrays, frames, heads, int(cfg["size"]), float(cfg["context"]))
    return out


def run_evaluate(params: dict, name: str, root=".") -> dict:
    """Stage body ``evaluate_refine@<name>``: the evaluation on the refinement's test crops."""
    import torch  # lazy: torch only where a model runs

    from fhbiometry.evaluation.evaluate import evaluate_and_write  # lazy: torch
    from fhbiometry.inference.runner import load_model  # lazy: torch

    paths = Paths(root)
    torch.set_num_threads(int(params["threads"]))
    loaded = load_model(paths.checkpoint(name), fix=f"rerun `dvc repro train_refine@{name}`")
    data, val = load_npz(paths.refine_data(name, "test")), load_npz(paths.refine_data(name, "val"))
    passes = int(params["decode"]["refine_passes"])
    if passes == 2:
        frames = load_npz(paths.frames)
        data, val = (second_pass(loaded, a, frames, params, name) for a in (data, val))
    print(f"evaluate_refine@{name}: {passes} pass{'es' if passes > 1 else ''} of the refinement")
    extra = {"refine": {**loaded.meta.get("refine", {}), "passes": passes}}
    return evaluate_and_write(refine_params(params, name), name, loaded, data, val, paths, extra)

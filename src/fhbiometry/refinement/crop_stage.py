"""Stage body ``refine_crops@<name>``: the coarse model (``models/<coarse>.safetensors``) on the
prepared validation and test inputs gives each frame's head; the crops (``crops``) ->
data/refine/<name>/{train,val,test}.npz and meta.json (the coarse model's measured errors, the
counts, the frames whose head was not finite and got the whole frame)."""
from __future__ import annotations

from fhbiometry.config.paths import Paths
from fhbiometry.core.store import load_npz, save_npz, write_json
from fhbiometry.refinement.crops import coarse_errors, cropped_split, training_crops
from fhbiometry.refinement.heads import model_heads
from fhbiometry.refinement.settings import crop_settings


def run_crops(params: dict, name: str, root=".") -> dict:
    """Stage body ``refine_crops@<name>``. Returns the meta written beside the crops."""
    import torch  # lazy: torch only where a model runs

    from fhbiometry.inference.runner import load_model  # lazy: torch

    paths, cfg = Paths(root), params["refine"][name]
    torch.set_num_threads(int(params["threads"]))
    coarse = load_model(paths.checkpoint(cfg["coarse"]), fix=f"rerun `dvc repro train@{cfg['coarse']}`")
    frames = load_npz(paths.frames)
    prepared = {s: load_npz(paths.prepared(s)) for s in ("train", "val", "test")}
    heads = {s: model_heads(coarse, prepared[s], params["decode"]) for s in ("val", "test")}
    errors = coarse_errors(prepared["val"], heads["val"])
    print(f"refine_crops@{name}: coarse model {cfg['coarse']} on validation: head centre off by "
          f"{errors['centre_sd']:.3f} x OFD (rms), length by {errors['scale_sd']:.3f} (rms of the log), "
          f"{errors['frames']} frames")
    out = {"train": training_crops(prepared["train"], frames, errors, cfg, int(params["seed"]))}
    whole = {}
    for split in ("val", "test"):
        out[split], whole[split] = cropped_split(prepared[split], frames, heads[split], int(cfg["size"]),
                                                 float(cfg["context"]))
    meta = {"coarse": cfg["coarse"], "crop": crop_settings(params, name), "coarse_errors": errors,
            "counts": {s: int(len(out[s]["frame_id"])) for s in out}, "whole_frame_crops": whole}
    for split, arrays in out.items():
        save_npz(paths.refine_data(name, split), arrays)
        print(f"refine_crops@{name}: {split}: {len(arrays['frame_id'])} crops of {cfg['size']} px "
              f"-> {paths.refine_data(name, split)}")
    write_json(paths.refine_dir(name) / "meta.json", meta)
    return meta

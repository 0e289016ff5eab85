"""Starting a model from a checkpoint of this project (``train.init_from``): fine-tuning.

The checkpoint (``models/<name>.safetensors`` of another run, copied under ``weights/``, the
folder every ``train@<model>`` stage depends on) must have the same ``arch``. Tensors are copied
by name and shape:

* same network (regressor from a regressor, heatmap / contour from a heatmap / contour model):
  every tensor whose name and shape match; a head that differs (the contour model's extra
  channel, another ``codec.stride`` or ``head_channels``) keeps its fresh initialisation;
* across networks (a ResNet-18 regressor from a heatmap model or back): the trunk only
  (``trunk.<key>`` of the heatmap network is ``<key>`` of the torchvision regressor).

Every trunk tensor must be loaded, or the load fails naming the file and what differs: a
fine-tuned model never runs on a half-initialised trunk. The report (tensors loaded, kept fresh,
the file's SHA-256) goes into the new checkpoint's metadata.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from fhbiometry.core.choices import ARCHS, KINDS
from fhbiometry.models.checkpoint import read_checkpoint

HEATMAP_TRUNK = "trunk."


def network_of(kind: str) -> str:
    return KINDS.meta(kind)["network"]


def trunk_name(key: str, arch: str, network: str) -> str | None:
    """The name a tensor of the shared trunk has in a torchvision regressor, or None for a head
    tensor (the heatmap head, the regressor's last layer)."""
    if network == "heatmap":
        return key[len(HEATMAP_TRUNK):] if key.startswith(HEATMAP_TRUNK) else None
    return None if key.startswith(ARCHS.meta(arch)["head"]) else key


def transfer(model: nn.Module, arch: str, kind: str, source: dict, source_kind: str) -> dict:
    """Copy ``source`` (a state dict of ``arch`` / ``source_kind``) into ``model`` (``arch`` /
    ``kind``) as the module docstring says; returns {loaded, fresh, trunk_missing}."""
    own = model.state_dict()
    mine, theirs = network_of(kind), network_of(source_kind)
    if mine == theirs:
        mapping = {k: k for k in own}
    else:
        by_trunk = {trunk_name(k, arch, theirs): k for k in source}
        mapping = {k: by_trunk.get(trunk_name(k, arch, mine)) for k in own if trunk_name(k, arch, mine)}
    loadable = {k: source[s] for k, s in mapping.items()
                if s in source and tuple(source[s].shape) == tuple(own[k].shape)}
    trunk_missing = sorted(k for k in own if trunk_name(k, arch, mine) is not None and k not in loadable
                           and not k.endswith("num_batches_tracked"))
    if not trunk_missing:
        model.load_state_dict(loadable, strict=False)
    return {"loaded": len(loadable), "fresh": sorted(k for k in own if k not in loadable),
            "trunk_missing": trunk_missing}


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def init_from_checkpoint(model: nn.Module, arch: str, kind: str, path, key: str, shown: str = "") -> dict:
    """Load the checkpoint at ``path`` into ``model`` (``key`` names the param for the errors);
    returns the record the new checkpoint keeps: path (``shown``, the param's value, when given),
    sha256, source kind, loaded, fresh."""
    fix = f"set {key} to a checkpoint of this project under weights/ (or '' to train from scratch)"
    state, meta = read_checkpoint(path, fix=fix)
    if meta["arch"] != arch:
        raise ValueError(f"{key}: {path} holds a {meta['arch']} ({meta['kind']}), this model is a {arch}: "
                         f"the trunks differ; {fix}")
    report = transfer(model, arch, kind, state, meta["kind"])
    if report["trunk_missing"]:
        shown = report["trunk_missing"][:4]
        raise ValueError(f"{key}: {path} lacks or reshapes {len(report['trunk_missing'])} trunk tensors of this "
                         f"{arch} {kind} model (e.g. {shown}); {fix}")
    return {"path": shown or str(path), "sha256": file_sha256(path), "kind": meta["kind"], "loaded": report["loaded"],
            "fresh": report["fresh"]}

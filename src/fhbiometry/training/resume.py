"""The resume state of a training run: after each epoch, everything needed to go on from the
next one as if never stopped, so a killed ``train@<model>`` resumes on the next ``dvc repro``.

One file, ``.resume/<model>.safetensors`` (ignored by git and DVC, outside the stage's outs, which
DVC deletes before it reruns a stage): the tensors (model, optimiser, best-so-far weights, torch
RNG) as safetensors, the rest (epoch, step, best epoch, NumPy bit-generator states, gradient
scaler, the logged metrics) as JSON in its header. It is written to a temporary file and renamed,
so a kill mid-write leaves the previous state whole. A state is used only when its fingerprint
(model settings, input, landmarks, codec, device, seed, threads, world size, data hashes and the
package's source code) matches the run's, so a changed param or code never resumes a stale run; it
is deleted when training completes.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

META_KEY = "fhbiometry_resume"
FORMAT = 1
FINGERPRINT_KEYS = ("seed", "threads", "input", "landmarks", "codec", "device")


def state_path(root, name: str) -> Path:
    return Path(root) / ".resume" / f"{name}.safetensors"


def code_hash() -> str:
    """The hash of every source file of this package (a code change never resumes a stale run)."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(params: dict, cfg: dict, data_hashes, world_size: int) -> str:
    """The hash of everything that shapes a run's epochs (``cfg``: ``schema.model_config``)."""
    parts = {k: params.get(k) for k in FINGERPRINT_KEYS}
    parts.update(model=cfg, data=list(data_hashes), world_size=int(world_size), code=code_hash(), format=FORMAT)
    text = json.dumps(parts, sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def flatten_optimizer(state: dict) -> tuple[dict, dict]:
    """An optimiser ``state_dict`` -> (tensors ``<param>.<key>``, the JSON-able rest)."""
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def unflatten_optimizer(tensors: dict, rest: dict) -> dict:
    state: dict = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for name, value in rest["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def save(path, tensors: dict, info: dict) -> Path:
    """Write ``tensors`` (name -> tensor) and JSON-able ``info`` atomically (temporary file, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(flat, str(tmp), metadata={META_KEY: json.dumps({"format": FORMAT, **info}, allow_nan=True)})
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(path, expected_fingerprint: str) -> tuple[dict, dict] | None:
    """(tensors, info) of the state at ``path`` when it exists, is readable and matches the
    fingerprint; None otherwise (a stale or broken state is deleted, with a message)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            info = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        print(f"{path}: unreadable resume state ({type(err).__name__}); starting afresh", flush=True)
        clear(path)
        return None
    if info.get("format") != FORMAT or info.get("fingerprint") != expected_fingerprint:
        print(f"{path}: resume state of other settings or data; starting afresh", flush=True)
        clear(path)
        return None
    return tensors, info


def clear(path) -> None:
    """Delete the state (and its folder when that is left empty)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:  # not empty (another model's state) or already gone
        pass

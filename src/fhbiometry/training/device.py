"""Where training runs: params ``device`` (type, amp, compile, channels_last) -> a ``Hardware``.

``type: auto`` picks CUDA, else Apple MPS, else the CPU. Mixed precision (``amp``) is CUDA only:
``bf16`` autocasts to bfloat16, ``fp16`` to float16 with a gradient scaler. With the defaults
(CPU, no amp, no compile, contiguous memory) every helper below is a no-op, so the CPU path is the
same computation as before these settings existed.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from fhbiometry.config.params import ParamError
from fhbiometry.core.choices import AMP_MODES, DEVICE_TYPES

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULTS = {"type": "auto", "amp": "none", "compile": False, "channels_last": False}
CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS needs it for deterministic algorithms


@dataclass(frozen=True)
class Hardware:
    device: torch.device
    amp: str = "none"
    compile: bool = False
    channels_last: bool = False

    @property
    def on_gpu(self) -> bool:
        return self.device.type in ("cuda", "mps")

    def describe(self) -> dict:
        return {"device": str(self.device), "amp": self.amp, "compile": self.compile,
                "channels_last": self.channels_last}


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_type(wanted: str) -> str:
    """``auto`` -> cuda, else mps, else cpu; a fixed choice must be available here."""
    if wanted not in DEVICE_TYPES:
        raise ParamError(f"params.yaml: device.type = {wanted!r}: choose one of {list(DEVICE_TYPES)}")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ParamError("params.yaml: device.type = 'cuda' but torch sees no CUDA device here: "
                         "set device.type to auto or cpu (or install a CUDA build of torch)")
    if wanted == "mps" and not mps_available():
        raise ParamError("params.yaml: device.type = 'mps' but torch sees no Apple MPS device here: "
                         "set device.type to auto or cpu")
    return wanted


def resolve(settings: dict | None, local_rank: int = 0) -> Hardware:
    """The ``Hardware`` of params ``device`` (missing keys: DEFAULTS); a CUDA process of a torchrun
    group takes GPU ``local_rank``."""
    cfg = {**DEFAULTS, **(settings or {})}
    kind = resolve_type(cfg["type"])
    if cfg["amp"] not in AMP_MODES:
        raise ParamError(f"params.yaml: device.amp = {cfg['amp']!r}: choose one of {list(AMP_MODES)}")
    if cfg["amp"] != "none" and kind != "cuda":
        raise ParamError(f"params.yaml: device.amp = {cfg['amp']!r} needs a CUDA device, but training runs "
                         f"on {kind}: set device.amp to none (mixed precision is CUDA only here)")
    device = torch.device(f"cuda:{local_rank}") if kind == "cuda" else torch.device(kind)
    if kind == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.cuda.set_device(device)
    return Hardware(device, cfg["amp"], bool(cfg["compile"]), bool(cfg["channels_last"]))


def autocast(hw: Hardware):
    """The forward pass's mixed-precision context (a no-op without amp)."""
    if hw.amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=hw.device.type, dtype=AMP_DTYPES[hw.amp])


def make_scaler(hw: Hardware):
    """A gradient scaler for fp16 (None otherwise: bf16 has float32's range)."""
    return torch.amp.GradScaler(hw.device.type) if hw.amp == "fp16" else None


def prepare_model(model: torch.nn.Module, hw: Hardware) -> torch.nn.Module:
    """Move ``model`` to the device (and channels-last memory); returns it."""
    model = model.to(hw.device)
    if hw.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def to_device(x: torch.Tensor, hw: Hardware, image: bool = False) -> torch.Tensor:
    """A CPU batch on the training device: pinned and copied without blocking on a GPU; an image
    batch in channels-last memory when asked. On the CPU the tensor itself."""
    if hw.on_gpu:
        if hw.device.type == "cuda":
            x = x.pin_memory()
        x = x.to(hw.device, non_blocking=True)
    if image and hw.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def compiled(model: torch.nn.Module, hw: Hardware):
    """``torch.compile(model)`` when asked (compiled on the first call), else the model itself."""
    return torch.compile(model) if hw.compile else model


def deterministic(hw: Hardware) -> None:
    """Deterministic algorithms: strict on the CPU (as ``seed_everything`` sets); on a GPU, warn on
    an op without a deterministic kernel instead of failing (GPU runs are not bit-reproducible)."""
    if hw.on_gpu:
        torch.use_deterministic_algorithms(True, warn_only=True)

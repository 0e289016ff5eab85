"""Where training runs: params ``device`` (type, amp, compile, channels_last) -> a ``Hardware``.

``type: auto`` picks CUDA, else Apple MPS, else the CPU. Mixed precision (``amp``): ``bf16``
autocasts the forward pass to bfloat16 on CUDA or the CPU (native on CPUs with AVX512-BF16 or AMX,
which oneDNN uses; emulated, and slower, elsewhere: the log says which), ``fp16`` to float16 with
a gradient scaler (CUDA only), ``auto`` is ``bf16`` where the device has native bfloat16 and
``none`` elsewhere (the resolved mode is what ``metrics/train/<model>/metrics.json`` records).
With the defaults (CPU, no amp, no compile, contiguous memory) every helper below is a no-op, so
the CPU path is the same computation as before these settings existed.
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
    amp = resolve_amp(cfg["amp"], kind)
    device = torch.device(f"cuda:{local_rank}") if kind == "cuda" else torch.device(kind)
    if kind == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.cuda.set_device(device)
    return Hardware(device, amp, bool(cfg["compile"]), bool(cfg["channels_last"]))


def native_bf16(kind: str) -> bool:
    """Whether the device computes bfloat16 natively: a CUDA GPU that supports it, or a CPU on
    which oneDNN has bfloat16 kernels (AVX512-BF16 or AMX)."""
    if kind == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_amp(wanted: str, kind: str) -> str:
    """params ``device.amp`` on a device of ``kind`` -> the mode training uses (``auto`` resolved)."""
    if wanted not in AMP_MODES:
        raise ParamError(f"params.yaml: device.amp = {wanted!r}: choose one of {list(AMP_MODES)}")
    if wanted == "auto":
        return "bf16" if native_bf16(kind) else "none"
    if wanted == "fp16" and kind != "cuda":
        raise ParamError(f"params.yaml: device.amp = 'fp16' needs a CUDA device, but training runs on {kind}: "
                         "set device.amp to none, or bf16 (CUDA and CPU)")
    if wanted == "bf16" and kind == "mps":
        raise ParamError("params.yaml: device.amp = 'bf16' is for CUDA and the CPU, but training runs on mps: "
                         "set device.amp to none")
    if wanted == "bf16" and not native_bf16(kind):
        print(f"device: bf16 on a {kind} without native bfloat16 (no AVX512-BF16 / AMX): emulated, slower "
              "than float32; device.amp auto uses bf16 only where it is native", flush=True)
    return wanted


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

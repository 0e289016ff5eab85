"""The registry of what runs the network: a backend name -> a factory
``(loaded checkpoint, checkpoint path, batch size) -> backend``.

Every backend has one method, ``outputs(images: (N, S, S) uint8) -> np.ndarray`` (the raw
network outputs, batching inside); ``inference.runner.predict_frames`` calls only that. Add a
backend with ``@register_backend("name")`` on its factory; ``fhbiometry predict --backend``
offers every registered name.

This module imports neither torch nor onnxruntime: each factory imports its backend's module
when that backend is asked for, so that ``fhbiometry predict --help``, the list of choices and
``import fhbiometry`` stay light (torch takes seconds to import; onnxruntime is needed only
for ``--backend onnx``).
"""
from __future__ import annotations

from typing import Callable

BACKENDS: dict[str, Callable] = {}
DEFAULT_BACKEND = "torch"


def register_backend(name: str):
    """Decorator: register ``factory(loaded, path, batch_size)`` as the backend ``name``."""
    def add(factory: Callable) -> Callable:
        if name in BACKENDS:
            raise ValueError(f"backend {name!r} is registered twice")
        BACKENDS[name] = factory
        return factory
    return add


def make_backend(name: str, loaded, path, batch_size: int = 32):
    """The backend ``name`` (a key of ``BACKENDS``) for a loaded checkpoint."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[name](loaded, path, batch_size)


@register_backend("torch")
def torch_backend(loaded, path, batch_size: int = 32):
    from fhbiometry.inference.runner import TorchBackend  # lazy: torch only when this backend is made

    return TorchBackend.from_checkpoint(loaded, path, batch_size)


@register_backend("onnx")
def onnx_backend(loaded, path, batch_size: int = 32):
    from fhbiometry.inference.onnx_backend import OnnxBackend  # lazy: onnxruntime only when asked for

    return OnnxBackend.from_checkpoint(loaded, path, batch_size)


@register_backend("onnx-int8")
def onnx_int8_backend(loaded, path, batch_size: int = 32):
    from fhbiometry.inference.onnx_backend import OnnxBackend  # lazy: onnxruntime only when asked for

    return OnnxBackend.int8_from_checkpoint(loaded, path, batch_size)

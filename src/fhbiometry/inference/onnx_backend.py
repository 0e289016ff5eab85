"""ONNX export of a trained model and an ONNX Runtime backend with the same ``outputs`` method as
``inference.TorchBackend`` (docs/speed.md).

The exported graph takes the letterboxed frames as they are, ``images``: (N, S, S) uint8, and
does the one normalisation of ``models.to_tensor`` inside the graph; its output ``outputs`` is the
network's raw output (heatmaps (N, K, H, W) or coordinates (N, 2K)). The batch axis is dynamic.
The checkpoint's metadata (arch, kind, codec settings, letterbox, landmarks, ...) is stored as JSON
in the ONNX ``metadata_props`` under ``fhbiometry``, so the ONNX file alone rebuilds the codec
(``codecs.codec_from_settings``) and the letterbox.

``quantize_int8`` writes a statically quantized (int8 weights and activations, QDQ) copy,
calibrated on real or synthetic frames; the node that writes the output stays float.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fhbiometry.codecs import codec_from_settings
from fhbiometry.core.letterbox import Letterbox, to_original
from fhbiometry.core.choices import DEFAULT_OPSET
from fhbiometry.models.networks import IMAGE_MEAN, IMAGE_STD, check_input_size

META_KEY = "fhbiometry"
INPUT_NAME = "images"
OUTPUT_NAME = "outputs"
DEFAULT_THREADS = 2
INPUT_LAYOUT = "uint8 (N, S, S), normalised inside the graph"


class OnnxError(ValueError):
    """An ONNX file is missing, unreadable or not one of ours; the message names the fix."""


class UInt8Input(nn.Module):
    """``model`` behind ``models.to_tensor``'s normalisation: (N, S, S) uint8 -> raw outputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images):
        x = images.to(torch.float32)[:, None]
        return self.model((x / 255.0 - IMAGE_MEAN) / IMAGE_STD)


def onnx_meta(meta: dict, opset: int) -> dict:
    """The checkpoint metadata plus what the ONNX file adds (opset, input layout)."""
    return {**meta, "onnx": {"opset": int(opset), "input": INPUT_LAYOUT, "input_name": INPUT_NAME,
                             "output_name": OUTPUT_NAME}}


def export_onnx(model: nn.Module, meta: dict, path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` (eval mode, float32) as ONNX with a dynamic batch axis and ``meta`` as
    JSON in its metadata_props. The example input has the size of ``meta['input']``."""
    import onnx  # lazy: onnx (1 s to import) only when a model is exported

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = int(meta["input"]["size"])
    check_input_size(size)
    wrapped = UInt8Input(model).eval()
    example = torch.zeros((2, size, size), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(wrapped, (example,), None, input_names=[INPUT_NAME],
                                output_names=[OUTPUT_NAME], opset_version=int(opset), dynamo=True,
                                dynamic_shapes={"images": {0: batch}}, verbose=False)
    proto = program.model_proto
    opset_made = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset_made != int(opset):
        raise OnnxError(f"{path}: the exporter could not convert the model to opset {opset} (it made "
                        f"{opset_made}): use --opset {DEFAULT_OPSET} (the exporter's native opset) or higher")
    props = {META_KEY: json.dumps(onnx_meta(meta, opset_made), sort_keys=True)}
    onnx.helper.set_model_props(proto, props)
    onnx.save_model(proto, str(path))
    return path


def read_onnx_meta(path) -> dict:
    """The ``fhbiometry`` metadata of an ONNX file written by ``export_onnx``."""
    import onnx  # lazy: onnx only when a file's metadata is read

    path = Path(path)
    fix = f"export it again: `fhbiometry export --model models/<name>.safetensors --out {path}`"
    if not path.is_file():
        raise OnnxError(f"{path} does not exist: {fix}")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError / ValueError / OSError
        raise OnnxError(f"{path} is not a readable ONNX model ({type(err).__name__}): {fix}") from err
    props = {p.key: p.value for p in proto.metadata_props}
    if META_KEY not in props:
        raise OnnxError(f"{path} has no '{META_KEY}' metadata: it was not written by fhbiometry: {fix}")
    return json.loads(props[META_KEY])


def session_options(threads: int = DEFAULT_THREADS, optimization: str = "all"):
    """ONNX Runtime options: graph optimisation level, ``threads`` intra-op threads, one inter-op
    thread, sequential execution."""
    import onnxruntime as ort  # lazy: onnxruntime only when a session is made

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise ValueError(f"optimization {optimization!r}: choose one of {list(levels)}")
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[optimization]
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def same_meta(onnx_meta_: dict, checkpoint_meta: dict) -> bool:
    """Whether an ONNX file's metadata is that of the checkpoint (JSON text compared, so NaN
    values compare equal; the ``format`` and ``onnx`` entries are left out)."""
    def text(meta):
        return json.dumps({k: v for k, v in meta.items() if k not in ("format", "onnx")}, sort_keys=True)
    return text(onnx_meta_) == text(checkpoint_meta)


class OnnxBackend:
    """Raw network outputs from an ONNX file written by ``export_onnx`` (or ``quantize_int8``).

    ``meta``, ``codec`` and ``letterbox`` come from the file itself."""

    name = "onnx"

    def __init__(self, path, threads: int = DEFAULT_THREADS, batch_size: int = 32,
                 optimization: str = "all"):
        import onnxruntime as ort  # lazy: onnxruntime only when a session is made

        self.path = Path(path)
        self.meta = read_onnx_meta(self.path)
        self.codec = codec_from_settings(self.meta["codec"])
        self.letterbox = Letterbox(**self.meta["input"])
        self.batch_size = int(batch_size)
        self.session = ort.InferenceSession(str(self.path), session_options(threads, optimization),
                                            providers=["CPUExecutionProvider"])

    @classmethod
    def from_checkpoint(cls, loaded, path, batch_size: int = 32, suffix: str = ".onnx") -> "OnnxBackend":
        """The backend "onnx" of ``inference.backends.BACKENDS``: the ONNX file beside the checkpoint ``path``
        (``models/heatmap.safetensors`` -> ``models/heatmap.onnx``), checked against it."""
        onnx_path = Path(path).with_suffix(suffix)
        fix = f"run `fhbiometry export --model {path} --out {Path(path).with_suffix('.onnx')}" + (
            " --quantize int8`" if suffix != ".onnx" else "`")
        if not onnx_path.is_file():
            raise OnnxError(f"{onnx_path} does not exist (the ONNX export of {path}): {fix}")
        backend = cls(onnx_path, batch_size=batch_size)
        if not same_meta(backend.meta, loaded.meta):
            raise OnnxError(f"{onnx_path} was exported from another checkpoint than {path}: {fix}")
        return backend

    @classmethod
    def int8_from_checkpoint(cls, loaded, path, batch_size: int = 32) -> "OnnxBackend":
        return cls.from_checkpoint(loaded, path, batch_size, suffix=".int8.onnx")

    def outputs(self, images) -> np.ndarray:
        """(N, S, S) uint8 letterboxed frames -> float32 raw outputs (N, ...)."""
        images = np.asarray(images)
        size = self.letterbox.size
        if images.ndim != 3 or images.shape[1:] != (size, size):
            raise ValueError(f"{self.path}: expected (N, {size}, {size}) images, got shape {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"{self.path}: expected uint8 images, got {images.dtype}")
        if len(images) == 0:
            shape = self._run(np.zeros((1, size, size), np.uint8)).shape[1:]
            return np.zeros((0,) + shape, np.float32)
        parts = [self._run(images[i:i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch)})[0]


class FrameReader:
    """ONNX Runtime calibration data: ``images`` (N, S, S) uint8 in batches of ``batch``."""

    def __init__(self, images, batch: int = 8):
        self.batches = [images[i:i + batch] for i in range(0, len(images), batch)]
        self.index = 0

    def get_next(self):
        if self.index >= len(self.batches):
            return None
        self.index += 1
        return {INPUT_NAME: np.ascontiguousarray(self.batches[self.index - 1])}

    def rewind(self):
        self.index = 0


def output_nodes(path) -> list[str]:
    """Names of the nodes that write a graph output (left float by ``quantize_int8``)."""
    import onnx  # lazy: onnx only when int8 is asked for

    proto = onnx.load_model(str(path))
    outputs = {o.name for o in proto.graph.output}
    return [n.name for n in proto.graph.node if outputs & set(n.output)]


def quantize_int8(src, dst, calibration) -> Path:
    """Static int8 quantization (QDQ, per-channel int8 weights, uint8 activations, min-max
    calibration on ``calibration``: (N, S, S) uint8 frames) of the float ONNX file ``src``.
    The metadata is copied, with ``onnx.quantized: int8``."""
    import onnx  # lazy: onnx only when int8 is asked for
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static  # lazy: onnxruntime's quantizer only when int8 is asked for
    from onnxruntime.quantization.shape_inference import quant_pre_process  # lazy: as above

    src, dst = Path(src), Path(dst)
    meta = read_onnx_meta(src)
    calibration = np.asarray(calibration, np.uint8)
    if calibration.ndim != 3 or len(calibration) == 0:
        raise ValueError(f"calibration frames must be a non-empty (N, S, S) uint8 array, got {calibration.shape}")
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), FrameReader(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=output_nodes(pre))
    proto = onnx.load_model(str(dst))
    meta["onnx"]["quantized"] = "int8"
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {META_KEY: json.dumps(meta, sort_keys=True)})
    onnx.save_model(proto, str(dst))
    return dst


def synthetic_frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, size, size) uint8 frames with a bright elliptical ring on speckle, for calibration
    when no prepared frames are at hand."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    frames = np.empty((n, size, size), np.uint8)
    for i in range(n):
        cx, cy = rng.uniform(0.4, 0.6, 2) * size
        a, b = rng.uniform(0.25, 0.4) * size, rng.uniform(0.18, 0.3) * size
        t = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)) / a
        v = (-(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)) / b
        ring = np.exp(-((np.sqrt(u ** 2 + v ** 2) - 1.0) * 12) ** 2)
        image = 40 + 180 * ring + rng.normal(0, 20, (size, size))
        frames[i] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


def calibration_frames(prepared, size: int, n: int = 32, seed: int = 0) -> tuple[np.ndarray, str]:
    """Up to ``n`` frames spread evenly over the prepared split ``prepared`` (an .npz with ``image``)
    when it exists and has ``size`` px frames, else synthetic frames; and a word saying which."""
    path = Path(prepared) if prepared else None
    if path is not None and path.is_file():
        with np.load(path) as data:
            images = data["image"]
        if images.ndim == 3 and images.shape[1:] == (size, size) and len(images):
            pick = np.unique(np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int))
            return np.asarray(images[pick], np.uint8), str(path)
    return synthetic_frames(n, size, seed), "synthetic"


def landmark_difference_mm(backend, reference, split) -> dict:
    """Distances (mm) between the landmarks ``backend`` and ``reference`` decode on the frames of
    the prepared split ``split`` (.npz with image, transform, spacing_mm): median, 95th percentile
    and maximum over every landmark of every frame."""
    with np.load(split) as data:
        images, transform, spacing = data["image"], data["transform"], data["spacing_mm"]
    points = [to_original(b.codec.decode(b.outputs(images)).points, transform) for b in (backend, reference)]
    mm = np.linalg.norm(points[0] - points[1], axis=-1) * spacing[:, None]
    return {"split": str(split), "frames": int(len(images)), "median_mm": float(np.median(mm)),
            "p95_mm": float(np.percentile(mm, 95)), "max_mm": float(mm.max())}

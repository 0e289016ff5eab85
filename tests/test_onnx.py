"""ONNX export (issue 11, Speed): PyTorch and ONNX Runtime agree (raw outputs, and decoded
landmarks within 0.01 pixel) at any batch size; the ONNX file alone carries the codec and
letterbox; the int8 copy runs; files that are not ours are refused with the fix."""
import json

import numpy as np
import pytest
import torch

from fhbiometry import cli
from fhbiometry.models.checkpoint import save_checkpoint
from fhbiometry.codecs import HeatmapCodec, RegressionCodec, codec_from_settings
from fhbiometry.core.geometry import LANDMARKS
from fhbiometry.inference.runner import load_model, network_outputs
from fhbiometry.core.letterbox import Letterbox
from fhbiometry.models.networks import build_model
from fhbiometry.inference.onnx_backend import (DEFAULT_OPSET, INPUT_LAYOUT, OnnxBackend, OnnxError, export_onnx,
                                     read_onnx_meta, synthetic_frames)

pytestmark = pytest.mark.slow   # module fixtures (torchrun, an export, a server, a browser) over a second

SIZE = 64


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def meta_of(kind: str, arch: str = "resnet18") -> dict:
    codec = HeatmapCodec(input_size=SIZE) if kind == "heatmap" else RegressionCodec(input_size=SIZE)
    return {"arch": arch, "kind": kind, "codec": codec.settings(), "input": Letterbox(size=SIZE).to_dict(),
            "landmarks": list(LANDMARKS), "head_channels": 128, "head_skips": True, "best_val_mre_mm": float("nan")}


def heatmap_model():
    """An untrained heatmap model whose heatmaps are positive and varied (a bias lifts them above
    the decoder's log floor, larger weights spread them), so decoding compares real peaks."""
    torch.manual_seed(0)
    model = build_model("resnet18", "heatmap").eval()
    with torch.no_grad():
        model.final.weight.mul_(300.0)
        model.final.bias.fill_(1.0)
    return model


@pytest.fixture(scope="module")
def heatmap_files(tmp_path_factory):
    """A heatmap checkpoint, exported by the `export` command with an int8 copy."""
    root = tmp_path_factory.mktemp("heatmap")
    ckpt = save_checkpoint(root / "heatmap.safetensors", heatmap_model().state_dict(), meta_of("heatmap"))
    code = cli.main(["export", "--model", str(ckpt), "--out", str(root / "heatmap.onnx"), "--quantize", "int8",
                     "--calibration", str(root / "absent.npz"), "--calibration-frames", "8"])
    assert code == 0
    return ckpt, root / "heatmap.onnx", root / "heatmap.int8.onnx"


@pytest.fixture(scope="module")
def regression_files(tmp_path_factory):
    torch.manual_seed(1)
    model = build_model("resnet18", "regression").eval()
    path = export_onnx(model, meta_of("regression"), tmp_path_factory.mktemp("regression") / "r.onnx")
    return model, path


def agreement(model, onnx_path, images):
    """(max raw output difference, max decoded landmark difference in pixels, output scale)."""
    backend = OnnxBackend(onnx_path, threads=1)
    ours = backend.outputs(images)
    theirs = network_outputs(model, images)
    points = backend.codec.decode(ours).points - backend.codec.decode(theirs).points
    return np.abs(ours - theirs).max(), np.abs(points).max(), np.abs(theirs).max()


@pytest.mark.parametrize("batch", [1, 5])
def test_heatmap_onnx_agrees_with_torch(heatmap_files, batch):
    ckpt, onnx_path, _ = heatmap_files
    model = load_model(ckpt).model
    raw, pixels, scale = agreement(model, onnx_path, synthetic_frames(batch, SIZE, seed=batch))
    assert raw <= 1e-4 * max(scale, 1.0)
    assert pixels <= 0.01


@pytest.mark.parametrize("batch", [1, 5])
def test_regression_onnx_agrees_with_torch(regression_files, batch):
    model, onnx_path = regression_files
    raw, pixels, scale = agreement(model, onnx_path, synthetic_frames(batch, SIZE, seed=batch))
    assert raw <= 1e-4 * max(scale, 1.0)
    assert pixels <= 0.01


def test_onnx_file_alone_gives_codec_letterbox_and_metadata(heatmap_files):
    ckpt, onnx_path, _ = heatmap_files
    meta = read_onnx_meta(onnx_path)
    assert meta["onnx"]["opset"] == DEFAULT_OPSET
    assert meta["onnx"]["input"] == INPUT_LAYOUT
    assert {k: meta[k] for k in ("arch", "kind", "codec", "input", "landmarks")} == \
        {k: meta_of("heatmap")[k] for k in ("arch", "kind", "codec", "input", "landmarks")}
    backend = OnnxBackend(onnx_path)
    assert backend.codec == codec_from_settings(meta_of("heatmap")["codec"])
    assert backend.letterbox == Letterbox(size=SIZE)
    assert backend.outputs(np.zeros((0, SIZE, SIZE), np.uint8)).shape == (0, 4, SIZE // 4, SIZE // 4)


def test_backend_from_checkpoint_finds_and_checks_the_export(heatmap_files, tmp_path):
    ckpt, onnx_path, int8_path = heatmap_files
    loaded = load_model(ckpt)
    assert OnnxBackend.from_checkpoint(loaded, ckpt).path == onnx_path
    assert OnnxBackend.int8_from_checkpoint(loaded, ckpt).path == int8_path
    with pytest.raises(OnnxError, match="fhbiometry export --model"):
        OnnxBackend.from_checkpoint(loaded, tmp_path / "other.safetensors")
    other = save_checkpoint(tmp_path / "heatmap.safetensors", heatmap_model().state_dict(),
                            {**meta_of("heatmap"), "best_epoch": 3})
    (tmp_path / "heatmap.onnx").write_bytes(onnx_path.read_bytes())
    with pytest.raises(OnnxError, match="another checkpoint"):
        OnnxBackend.from_checkpoint(load_model(other), other)


def test_the_backend_registry_makes_every_backend(heatmap_files):
    """``inference.backends``: one registry; a name gives its backend, a new name registers, an
    unknown name is refused with the choices."""
    from fhbiometry.inference import backends

    ckpt, onnx_path, int8_path = heatmap_files
    loaded = load_model(ckpt)
    assert sorted(backends.BACKENDS) == ["onnx", "onnx-int8", "torch"]
    assert backends.make_backend("onnx", loaded, ckpt).path == onnx_path
    assert backends.make_backend("onnx-int8", loaded, ckpt).path == int8_path
    assert backends.make_backend("torch", loaded, ckpt).name == "torch"
    with pytest.raises(ValueError, match="choose one of"):
        backends.make_backend("tensorrt", loaded, ckpt)
    try:
        backends.register_backend("test-echo")(lambda loaded, path, batch_size: ("echo", batch_size))
        assert backends.make_backend("test-echo", loaded, ckpt, 7) == ("echo", 7)
        with pytest.raises(ValueError, match="registered twice"):
            backends.register_backend("test-echo")(lambda *a: None)
    finally:
        backends.BACKENDS.pop("test-echo", None)


def test_int8_copy_runs_and_says_so(heatmap_files):
    ckpt, onnx_path, int8_path = heatmap_files
    meta = read_onnx_meta(int8_path)
    assert meta["onnx"]["quantized"] == "int8"
    assert meta["codec"] == meta_of("heatmap")["codec"]
    images = synthetic_frames(3, SIZE, seed=7)
    float_out, int8_out = OnnxBackend(onnx_path).outputs(images), OnnxBackend(int8_path).outputs(images)
    assert int8_out.shape == float_out.shape
    assert np.isfinite(int8_out).all()
    assert not np.array_equal(int8_out, float_out)  # it is a different (quantized) graph


def test_wrong_inputs_and_foreign_files_are_refused(heatmap_files, tmp_path):
    _, onnx_path, _ = heatmap_files
    backend = OnnxBackend(onnx_path)
    with pytest.raises(ValueError, match=f"expected \\(N, {SIZE}, {SIZE}\\) images"):
        backend.outputs(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="expected uint8"):
        backend.outputs(np.zeros((2, SIZE, SIZE), np.float32))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(OnnxError, match="not a readable ONNX model.*fhbiometry export"):
        read_onnx_meta(junk)
    with pytest.raises(OnnxError, match="does not exist"):
        OnnxBackend(tmp_path / "absent.onnx")


def test_metadata_is_json_in_metadata_props(heatmap_files):
    import onnx

    proto = onnx.load_model(str(heatmap_files[1]))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["fhbiometry"])["kind"] == "heatmap"
    assert [o.version for o in proto.opset_import if o.domain == ""] == [DEFAULT_OPSET]
    tensor = proto.graph.input[0].type.tensor_type
    assert tensor.elem_type == onnx.TensorProto.UINT8
    assert tensor.shape.dim[0].dim_param
    assert [d.dim_value for d in tensor.shape.dim[1:]] == [SIZE, SIZE]


def test_export_is_byte_identical(heatmap_files, tmp_path):
    ckpt, onnx_path, _ = heatmap_files
    loaded = load_model(ckpt)
    again = export_onnx(loaded.model, loaded.meta, tmp_path / "again.onnx")
    assert again.read_bytes() == onnx_path.read_bytes()

import numpy as np
import pytest
import torch
from torchvision import models as tvm

from fhbiometry.models import networks as models


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize("arch,size", [("alexnet", 64), ("resnet18", 32), ("resnet34", 32)])
def test_regression_models_output_eight_values_from_one_channel(arch, size):
    model = models.build_model(arch, "regression").eval()
    first = model.features[0] if arch == "alexnet" else model.conv1
    assert first.in_channels == 1
    with torch.no_grad():
        out = model(models.to_tensor(np.zeros((2, size, size), np.uint8)))
    assert out.shape == (2, 8)


@pytest.mark.parametrize("skips", [True, False])
@pytest.mark.parametrize("stride,cells", [(4, 16), (8, 8)])
def test_heatmap_model_output_stride(stride, cells, skips):
    model = models.build_model("resnet18", "heatmap", head_channels=16, stride=stride, skips=skips).eval()
    n_deconv = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.deconvs.modules())
    assert n_deconv == {4: 3, 8: 2}[stride]
    assert len(model.laterals) == (n_deconv if skips else 0)
    with torch.no_grad():
        out = model(models.to_tensor(np.zeros((1, 64, 64), np.uint8)))
    assert out.shape == (1, 4, cells, cells)


def test_heatmap_skips_carry_fine_features_to_the_output():
    """With skips, a change confined to one 4x4 input patch changes the output only near that
    patch more strongly than without: the layer1 lateral reaches the head directly."""
    torch.manual_seed(0)
    model = models.build_model("resnet18", "heatmap", head_channels=8, skips=True).eval()
    for lateral in model.laterals:
        torch.nn.init.constant_(lateral[1].weight, 1.0)
    for block in model.deconvs:
        torch.nn.init.zeros_(block[0].weight)  # the deep path carries nothing
    torch.nn.init.constant_(model.final.weight, 1.0)
    x = np.zeros((1, 64, 64), np.uint8)
    y = x.copy()
    y[0, 40:44, 8:12] = 255
    with torch.no_grad():
        diff = (model(models.to_tensor(y)) - model(models.to_tensor(x))).abs()[0].sum(0)
    iy, ix = np.unravel_index(int(diff.argmax()), diff.shape)
    assert diff.max() > 0
    assert abs(iy - 10) <= 2
    assert abs(ix - 2) <= 2  # the patch is at heatmap cell (10, 2)


def test_regression_resnets_start_with_identity_residual_blocks():
    net = models.build_model("resnet34", "regression")
    assert all(float(block.bn2.weight.detach().abs().max()) == 0.0 for layer in (net.layer1, net.layer4) for block in layer)
    hm = models.build_model("resnet18", "heatmap", head_channels=8)
    assert float(hm.trunk.layer1[0].bn2.weight.detach().abs().max()) > 0  # the heatmap trunk keeps the default


@pytest.mark.parametrize("arch", ["alexnet", "resnet18"])
def test_mean_shape_head_init_predicts_the_mean_for_any_image(arch):
    model = models.build_model(arch, "regression").eval()
    mean = np.linspace(0.2, 0.8, 8)
    models.init_head_at_mean_shape(model, arch, mean)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        out = model(models.to_tensor(rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)))
    assert np.allclose(out.numpy(), mean[None], atol=1e-6)
    with pytest.raises(ValueError, match="outputs"):
        models.init_head_at_mean_shape(model, arch, np.zeros(6))


def test_heatmap_model_rejects_input_not_multiple_of_32():
    model = models.build_model("resnet18", "heatmap", head_channels=8).eval()
    with pytest.raises(ValueError, match="multiple of 32"):
        model(models.to_tensor(np.zeros((1, 48, 48), np.uint8)))
    with pytest.raises(ValueError, match="multiple of 32"):
        models.check_input_size(100)


def test_bad_arch_kind_and_heatmap_arch():
    with pytest.raises(ValueError, match="alexnet"):
        models.build_model("vgg16", "regression")
    with pytest.raises(ValueError, match="regression"):
        models.build_model("resnet18", "segmentation")
    with pytest.raises(ValueError, match=r"only implemented with arch \['resnet18'\]"):
        models.build_model("resnet34", "heatmap")
    with pytest.raises(ValueError, match="stride"):
        models.build_model("resnet18", "heatmap", stride=3)


def test_count_parameters_resnet18_regression():
    # torchvision resnet18: 11,689,512; conv1 3->1 channel: -2*64*49; fc 1000 -> 8 outputs
    expected = 11_689_512 - 2 * 64 * 49 - (512 * 1000 + 1000) + (512 * 8 + 8)
    assert models.count_parameters(models.build_model("resnet18", "regression")) == expected


def test_to_tensor_normalisation():
    x = models.to_tensor(np.array([[[0, 255]]], np.uint8))
    assert x.shape == (1, 1, 1, 2)
    assert x.dtype == torch.float32
    assert np.allclose(x.numpy().ravel(), [(0 - 0.449) / 0.226, (1 - 0.449) / 0.226], atol=1e-6)


def test_seeded_initialisation_is_repeatable():
    torch.manual_seed(3)
    a = models.build_model("resnet18", "heatmap", head_channels=8).state_dict()
    torch.manual_seed(3)
    b = models.build_model("resnet18", "heatmap", head_channels=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _imagenet_resnet18(tmp_path):
    net = tvm.resnet18(weights=None)
    with torch.no_grad():
        w = torch.zeros_like(net.conv1.weight)
        w[:, 0] = 3.0
        w[:, 1] = 6.0
        w[:, 2] = 9.0  # mean 6
        net.conv1.weight.copy_(w)
    state = net.state_dict()
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("kind", ["regression", "heatmap"])
def test_pretrained_loads_trunk_and_averages_rgb_filters(tmp_path, kind, capsys):
    path, state = _imagenet_resnet18(tmp_path)
    model = models.build_model("resnet18", kind, head_channels=8, pretrained=str(path))
    own = model.state_dict()
    prefix = "trunk." if kind == "heatmap" else ""
    assert own[prefix + "conv1.weight"].shape == (64, 1, 7, 7)
    assert torch.all(own[prefix + "conv1.weight"] == 6.0)
    for key in ("layer1.0.conv1.weight", "layer4.1.bn2.running_var", "bn1.bias"):
        assert torch.equal(own[prefix + key], state[key])
    report = model.pretrained_report
    assert report["skipped_head"] == ["fc.bias", "fc.weight"]
    assert "replaced head" in capsys.readouterr().out


def test_pretrained_accepts_missing_num_batches_tracked(tmp_path):
    path, state = _imagenet_resnet18(tmp_path)
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    model = models.build_model("resnet18", "regression", pretrained=str(path))
    assert all(k.endswith("num_batches_tracked") for k in model.pretrained_report["missing"])
    assert model.pretrained_report["missing"]


def test_pretrained_missing_file_and_wrong_arch(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        models.build_model("resnet18", "regression", pretrained=str(tmp_path / "nowhere.pth"))
    path, _ = _imagenet_resnet18(tmp_path)
    with pytest.raises(ValueError, match=r"resnet18_imagenet.pth does not match a torchvision resnet34"):
        models.build_model("resnet34", "regression", pretrained=str(path))
    junk = tmp_path / "junk.pth"
    torch.save({"a": 1}, junk)
    with pytest.raises(ValueError, match="junk.pth is not a state dict"):
        models.build_model("resnet18", "regression", pretrained=str(junk))

"""The four networks: AlexNet / ResNet-18 / ResNet-34 coordinate regressors and the
ResNet-18 heatmap model (SimpleBaseline-style deconvolution head).

All models take one-channel images, normalised by ``to_tensor``:
``(x / 255 - IMAGE_MEAN) / IMAGE_STD`` with the mean of ImageNet's channel statistics.

* Regression: the torchvision network with its last layer replaced by a ``Linear`` to
  ``2 * num_landmarks`` outputs, the landmarks in normalised input coordinates
  (``codecs.RegressionCodec``), flattened ``(x1, y1, x2, y2, ...)``.
* Heatmap: the ResNet-18 trunk up to ``layer4`` (output stride 32), then
  ``ConvTranspose2d(k4, s2, p1) + BN + ReLU`` blocks until the output stride is ``stride``,
  then a 1x1 convolution to ``num_landmarks`` heatmaps.

The first convolution is replaced by a one-channel convolution of the same shape. With
``pretrained`` (a local torchvision ImageNet state dict) the weights are loaded into the
three-channel network first and the one-channel filter is the mean of the RGB filters.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision import models as tvm

from fhbiometry.core.choices import ARCHS, DEFAULT_HEAD_CHANNELS, HEATMAP_STRIDES, KINDS, TRUNK_STRIDE

IMAGE_MEAN = 0.449  # mean of ImageNet's channel means (0.485, 0.456, 0.406)
IMAGE_STD = 0.226   # mean of ImageNet's channel sds (0.229, 0.224, 0.225)



def to_tensor(images) -> torch.Tensor:
    """(N, S, S) uint8 images -> (N, 1, S, S) float32 network input (the one normalisation)."""
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"expected (N, S, S) images, got shape {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[:, None]
    return (x / 255.0 - IMAGE_MEAN) / IMAGE_STD


def check_input_size(size: int) -> None:
    """The networks need an input size that is a positive multiple of 32."""
    if int(size) <= 0 or int(size) % TRUNK_STRIDE:
        raise ValueError(f"input size {size} must be a positive multiple of {TRUNK_STRIDE} "
                         "(set input.size in params.yaml)")


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def deconv_blocks(stride: int) -> int:
    """Number of stride-2 deconvolutions that take the trunk's stride 32 down to ``stride``."""
    if int(stride) not in HEATMAP_STRIDES:
        raise ValueError(f"heatmap stride {stride} must be one of {list(HEATMAP_STRIDES)} (codec.stride)")
    return (TRUNK_STRIDE // int(stride)).bit_length() - 1


class HeatmapNet(nn.Module):
    """ResNet trunk (stride 32) + deconvolution head + 1x1 convolution to K heatmaps.

    Each ``ConvTranspose2d(k4, s2, p1) + BN`` block halves the stride. With ``skips`` (default),
    the trunk's feature map of the same stride (``layer3`` at 16, ``layer2`` at 8, ``layer1`` at 4)
    is added through a 1x1 convolution + BN before the ReLU, as in FPN / U-Net: the head then
    localises with the trunk's fine features instead of recovering position from the 1/32 map
    alone (SimpleBaseline, ``skips: false``).
    """

    def __init__(self, trunk: tvm.ResNet, num_landmarks: int, head_channels: int, stride: int,
                 skips: bool = True):
        super().__init__()
        in_ch = trunk.fc.in_features  # channels out of layer4 (512 for ResNet-18)
        trunk.fc = nn.Identity()
        trunk.avgpool = nn.Identity()
        self.trunk = trunk
        self.stride = int(stride)
        self.skips = bool(skips)
        # channels of layer3, layer2, layer1 (the maps at strides 16, 8, 4)
        skip_channels = [layer[-1].conv2.out_channels for layer in (trunk.layer3, trunk.layer2, trunk.layer1)]
        self.deconvs = nn.ModuleList()
        self.laterals = nn.ModuleList()
        for i in range(deconv_blocks(stride)):
            deconv = nn.ConvTranspose2d(in_ch, head_channels, kernel_size=4, stride=2, padding=1,
                                        bias=False)
            nn.init.normal_(deconv.weight, std=0.001)
            self.deconvs.append(nn.Sequential(deconv, nn.BatchNorm2d(head_channels)))
            if self.skips and i < len(skip_channels):
                self.laterals.append(nn.Sequential(
                    nn.Conv2d(skip_channels[i], head_channels, kernel_size=1, bias=False),
                    nn.BatchNorm2d(head_channels)))
            in_ch = head_channels
        self.final = nn.Conv2d(in_ch, num_landmarks, kernel_size=1)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, x):
        if x.shape[-1] % TRUNK_STRIDE or x.shape[-2] % TRUNK_STRIDE:
            raise ValueError(f"input size {tuple(x.shape[-2:])} must be a multiple of {TRUNK_STRIDE}")
        t = self.trunk
        x = t.maxpool(t.relu(t.bn1(t.conv1(x))))
        c1 = t.layer1(x)
        c2 = t.layer2(c1)
        c3 = t.layer3(c2)
        x = t.layer4(c3)
        fine = (c3, c2, c1)
        for i, block in enumerate(self.deconvs):
            x = block(x)
            if i < len(self.laterals):
                x = x + self.laterals[i](fine[i])
            x = torch.relu(x)
        return self.final(x)


def _first_conv(net: nn.Module, arch: str) -> nn.Conv2d:
    return net.features[0] if arch == "alexnet" else net.conv1


def _set_first_conv(net: nn.Module, arch: str, conv: nn.Conv2d) -> None:
    if arch == "alexnet":
        net.features[0] = conv
    else:
        net.conv1 = conv


def _one_channel_conv(old: nn.Conv2d, arch: str, from_rgb: bool) -> nn.Conv2d:
    """A 1-channel copy of ``old``'s shape: the mean of its RGB filters when they are pretrained,
    otherwise freshly initialised the way the architecture initialises it."""
    new = nn.Conv2d(1, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                    padding=old.padding, bias=old.bias is not None)
    with torch.no_grad():
        if from_rgb:
            new.weight.copy_(old.weight.mean(dim=1, keepdim=True))
            if old.bias is not None:
                new.bias.copy_(old.bias)
        elif arch.startswith("resnet"):
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        # alexnet: torchvision keeps PyTorch's default Conv2d initialisation (done above)
    return new


def load_imagenet_weights(net: nn.Module, arch: str, path) -> dict:
    """Load a torchvision ImageNet state dict (3-channel, 1000 classes) into ``net``.

    Strict for the trunk (every key present with the right shape); the classification layer
    is skipped (it is replaced). Returns a report: loaded, skipped_head, missing (optional
    buffers such as num_batches_tracked), unexpected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights {path} not found: set train.pretrained (or "
                                f"models.<name>.pretrained) to a local torchvision {arch} ImageNet "
                                "state dict, or '' to train from scratch")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    own = net.state_dict()
    head = ARCHS.meta(arch)["head"]
    trunk_keys = [k for k in own if not k.startswith(head)]
    missing = [k for k in trunk_keys if k not in state]
    required_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    wrong_shape = [k for k in trunk_keys if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    unexpected = sorted(k for k in state if k not in own)
    if required_missing or wrong_shape or unexpected:
        detail = "; ".join(f"{label}: {keys[:4]}{' ...' if len(keys) > 4 else ''}" for label, keys in
                           (("missing", required_missing), ("wrong shape", wrong_shape),
                            ("unexpected", unexpected)) if keys)
        raise ValueError(f"{path} does not match a torchvision {arch} ({detail}): give the ImageNet "
                         f"state dict of {arch}")
    loadable = {k: v for k, v in state.items() if not k.startswith(head)}
    net.load_state_dict(loadable, strict=False)
    return {"loaded": len(loadable), "skipped_head": sorted(k for k in state if k.startswith(head)),
            "missing": missing, "unexpected": unexpected}


def regression_head(model: nn.Module, arch: str) -> nn.Linear:
    """The final ``Linear`` of a regression model (its outputs are the coordinates)."""
    return model.classifier[6] if arch == "alexnet" else model.fc


def init_head_at_mean_shape(model: nn.Module, arch: str, mean_normalised) -> None:
    """Start a regressor at the mean-shape predictor: zero weights, bias = the training mean of
    the encoded coordinates (``RegressionCodec.mean_output``). Training then learns the deviation from
    the mean shape instead of first travelling from a random output to it."""
    head = regression_head(model, arch)
    mean = torch.as_tensor(np.asarray(mean_normalised, np.float32).reshape(-1))
    if mean.shape != head.bias.shape:
        raise ValueError(f"mean shape has {mean.numel()} values, the head has {head.bias.numel()} outputs")
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(mean)


def build_model(arch: str, kind: str, num_landmarks: int = 4, head_channels: int = DEFAULT_HEAD_CHANNELS,
                stride: int | None = 4, pretrained: str = "", skips: bool = True) -> nn.Module:
    """Build one of the four models (see the module docstring): ``arch`` a name of
    ``core.choices.ARCHS`` whose meta ``kinds`` has ``kind``; ``stride``: the heatmap head's output
    stride (``codec.stride``; unused by regressors). Uses torch's global RNG for initialisation:
    seed it first."""
    KINDS.check(kind)
    if kind not in ARCHS.meta(arch)["kinds"]:
        raise ValueError(f"kind {kind!r} is only implemented with arch {list(ARCHS.names(kinds=kind))}, "
                         f"got {arch!r}")
    if int(head_channels) <= 0:
        raise ValueError(f"head_channels must be positive, got {head_channels}")
    # ResNet regressors start with every residual branch's last BN at zero (torchvision's
    # zero_init_residual): each block is the identity at first; the heatmap trunk keeps the default
    # (measured effect of both: docs/architecture.md, "Measured design choices").
    network = KINDS.meta(kind)["network"]   # coordinates | heatmap (core.choices.KINDS)
    extra = {"zero_init_residual": True} if network == "coordinates" and arch.startswith("resnet") else {}
    net = ARCHS.get(arch)(weights=None, **extra)
    report = None
    if pretrained:
        report = load_imagenet_weights(net, arch, pretrained)
        print(f"models: {arch}: loaded {report['loaded']} tensors from {pretrained}; replaced head "
              f"{report['skipped_head']}; missing {report['missing']}")
    conv = _one_channel_conv(_first_conv(net, arch), arch, from_rgb=bool(pretrained))
    _set_first_conv(net, arch, conv)
    if network == "heatmap":
        channels = num_landmarks + int(KINDS.meta(kind).get("extra_channels", 0))
        model = HeatmapNet(net, channels, int(head_channels), stride, skips=skips)
    elif arch == "alexnet":
        net.classifier[6] = nn.Linear(net.classifier[6].in_features, 2 * num_landmarks)
        model = net
    else:
        net.fc = nn.Linear(net.fc.in_features, 2 * num_landmarks)
        model = net
    model.pretrained_report = report
    return model

"""Precise BatchNorm statistics (``training.precise_bn``, ``train.precise_bn``)."""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import fake_prepared, tiny_params
from fhbiometry.config import schema
from fhbiometry.models.networks import to_tensor
from fhbiometry.training import loop as train
from fhbiometry.training import precise_bn


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2))


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 12, 12), dtype=np.uint8)


def test_running_statistics_become_the_average_of_the_batch_statistics():
    net, x = small_net(), images(10)
    net[1].running_mean.fill_(50.0)                          # stale statistics from training
    assert precise_bn.recalibrate(net, x, batch_size=4) == 2
    conv = net[0]
    batches = np.array_split(np.arange(10), 3)               # 4, 3, 3 frames
    with torch.no_grad():
        outs = [conv(to_tensor(x[b])) for b in batches]
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in outs]).mean(0)
    var = torch.stack([o.var(dim=(0, 2, 3), unbiased=True) for o in outs]).mean(0)
    torch.testing.assert_close(net[1].running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net[1].running_var, var, rtol=1e-5, atol=1e-6)


def test_momentum_and_mode_are_restored_and_the_weights_untouched():
    net = small_net().eval()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    precise_bn.recalibrate(net, images(6), batch_size=3)
    assert not net.training
    assert [m.momentum for m in precise_bn.batchnorm_layers(net)] == [0.1, 0.1]
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())


def test_the_result_does_not_depend_on_the_statistics_before():
    a, b, x = small_net(), small_net(), images(8)
    b[1].running_var.fill_(9.0)
    b[4].running_mean.fill_(-3.0)
    precise_bn.recalibrate(a, x, 4)
    precise_bn.recalibrate(b, x, 4)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_a_model_without_batchnorm_is_left_alone_and_no_frame_is_an_error():
    net = nn.Sequential(nn.Conv2d(1, 2, 3))
    assert precise_bn.recalibrate(net, images(2), 2) == 0
    with pytest.raises(ValueError, match="at least one training frame"):
        precise_bn.recalibrate(small_net(), images(0), 2)


def test_training_follows_the_same_trajectory_and_saves_recalibrated_statistics(capsys):
    """Only the running statistics change: every epoch's training loss is the same with and without
    it; the saved model's statistics are those of the training frames (recalibrating again is a
    no-op); the checkpoint names the setting only when it is on."""
    data = fake_prepared(8, seed=1), fake_prepared(4, seed=2)
    off = tiny_params(epochs=2, augment={"enabled": False})
    on = schema.validate_params({**off, "train": {**off["train"], "precise_bn": True}})
    state_off, meta_off = train.train_model(off, "m", *data, progress=False)
    log_off = capsys.readouterr().out
    state_on, meta_on = train.train_model(on, "m", *data, progress=False)
    log_on = capsys.readouterr().out
    losses = [[line.split(" loss ")[1].split()[0] for line in log.splitlines() if " loss " in line]
              for log in (log_off, log_on)]
    assert len(losses[0]) == 2
    assert losses[0] == losses[1]
    weights = [k for k in state_on if "running" not in k and "num_batches" not in k]
    if meta_on["best_epoch"] == meta_off["best_epoch"]:      # the same epoch saved: the same weights
        assert all(torch.equal(state_on[k], state_off[k]) for k in weights)
    assert not all(torch.equal(state_on[k], state_off[k]) for k in state_on if "running_mean" in k)
    assert "precise_bn" not in meta_off["model_params"]
    assert meta_on["model_params"]["precise_bn"] is True

    from fhbiometry.models.networks import build_model
    net = build_model("resnet18", "regression")
    net.load_state_dict(state_on)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    precise_bn.recalibrate(net, data[0]["image"], off["train"]["batch_size"])
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=1e-5, atol=1e-6, msg=k)

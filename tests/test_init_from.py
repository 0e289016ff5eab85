"""Fine-tuning from a checkpoint of this project (``train.init_from``, ``models.init_from``)."""
import subprocess

import pytest
import torch
import yaml

from conftest import REPO, fake_prepared, tiny_params, untrained_checkpoint
from fhbiometry.config import schema
from fhbiometry.config.params import ParamError
from fhbiometry.models.checkpoint import read_checkpoint, save_checkpoint
from fhbiometry.models.init_from import init_from_checkpoint, transfer
from fhbiometry.models.networks import build_model
from fhbiometry.training import loop as train


def fresh(kind: str, arch: str = "resnet18", seed: int = 1, head_channels: int = 16):
    torch.manual_seed(seed)
    return build_model(arch, kind, num_landmarks=4, head_channels=head_channels, stride=4)


def trained_like(tmp_path, kind="heatmap", arch="resnet18", head_channels=16):
    """A checkpoint whose every tensor differs from a fresh model's (so a copy is visible)."""
    path = untrained_checkpoint(tmp_path / "weights" / f"{kind}.safetensors", kind, arch, head_channels=head_channels)
    state, meta = read_checkpoint(path)
    state = {k: (v + 0.25 if v.is_floating_point() else v + 3) for k, v in state.items()}
    return save_checkpoint(path, state, meta), state


def test_same_network_loads_every_tensor(tmp_path):
    path, source = trained_like(tmp_path)
    model = fresh("heatmap")
    record = init_from_checkpoint(model, "resnet18", "heatmap", path, "train.init_from", shown="weights/h.safetensors")
    assert record["fresh"] == []
    assert record["loaded"] == len(source)
    assert record["kind"] == "heatmap"
    assert record["path"] == "weights/h.safetensors"
    assert len(record["sha256"]) == 64
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.items())


def test_a_head_that_differs_stays_fresh_the_trunk_is_loaded(tmp_path):
    """A heatmap checkpoint into the contour model: its final layer has one more channel."""
    path, source = trained_like(tmp_path)
    model = fresh("contour")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = init_from_checkpoint(model, "resnet18", "contour", path, "models.c.init_from")
    assert record["fresh"] == ["final.bias", "final.weight"]
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in record["fresh"])
    assert all(torch.equal(after[k], source[k]) for k in after if k not in record["fresh"])


def test_across_networks_only_the_trunk_moves(tmp_path):
    """A heatmap model's ResNet-18 trunk into a ResNet-18 regressor (``trunk.<key>`` is ``<key>``);
    the regressor's last layer and the heatmap head are left out."""
    path, source = trained_like(tmp_path)
    model = fresh("regression")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = init_from_checkpoint(model, "resnet18", "regression", path, "models.r.init_from")
    assert record["fresh"] == ["fc.bias", "fc.weight"]
    after = model.state_dict()
    assert torch.equal(after["layer4.1.conv2.weight"], source["trunk.layer4.1.conv2.weight"])
    assert torch.equal(after["conv1.weight"], source["trunk.conv1.weight"])
    assert torch.equal(after["fc.weight"], before["fc.weight"])
    back = fresh("heatmap", seed=3)
    head_before = back.state_dict()["final.weight"].clone()
    regressor = save_checkpoint(tmp_path / "weights/r.safetensors", after,
                                {**read_checkpoint(path)[1], "kind": "regression",
                                 "codec": {**read_checkpoint(path)[1]["codec"], "kind": "regression"}})
    init_from_checkpoint(back, "resnet18", "heatmap", regressor, "models.h.init_from")
    assert torch.equal(back.state_dict()["trunk.layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])
    assert torch.equal(back.state_dict()["final.weight"], head_before)


def test_another_arch_or_a_reshaped_trunk_is_refused(tmp_path):
    path, _ = trained_like(tmp_path)
    with pytest.raises(ValueError, match=r"models\.a\.init_from: .*holds a resnet18 \(heatmap\), this model is a resnet34"):
        init_from_checkpoint(fresh("regression", "resnet34"), "resnet34", "regression", path, "models.a.init_from")
    source = {k: v for k, v in read_checkpoint(path)[0].items() if k != "trunk.layer2.0.conv1.weight"}
    model = fresh("heatmap")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = transfer(model, "resnet18", "heatmap", source, "heatmap")
    assert report["trunk_missing"] == ["trunk.layer2.0.conv1.weight"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())   # nothing half-loaded
    with pytest.raises(Exception, match="does not exist"):
        init_from_checkpoint(model, "resnet18", "heatmap", tmp_path / "weights/none.safetensors", "train.init_from")


@pytest.mark.parametrize("value", ["models/heatmap.safetensors", "/abs/weights/x.safetensors",
                                   "weights/../models/x.safetensors", "weights/x.pt", "weights"])
def test_schema_wants_a_checkpoint_under_weights(value):
    p = tiny_params()
    with pytest.raises(ParamError, match=r"train\.init_from.*under weights/"):
        schema.validate_params({**p, "train": {**p["train"], "init_from": value}})
    with pytest.raises(ParamError, match=r"models\.m\.init_from.*under weights/"):
        schema.validate_params({**p, "models": {"m": {**p["models"]["m"], "init_from": value}}})


def test_training_starts_from_the_checkpoint_and_records_it(tmp_path, capsys):
    """The first epoch's loss differs from scratch's, the checkpoint names the file and its hash;
    from scratch the metadata has no init_from (checkpoints stay byte-identical to older ones)."""
    data = fake_prepared(8, seed=1), fake_prepared(4, seed=2)
    p = tiny_params(epochs=1, kind="heatmap", loss="mse", augment={"enabled": False})
    state0, meta0 = train.train_model(p, "m", *data, progress=False)
    scratch = capsys.readouterr().out
    assert "init_from" not in meta0
    assert "init_from" not in meta0["model_params"]
    save_checkpoint(tmp_path / "weights/first.safetensors", state0, meta0)
    q = schema.validate_params({**p, "models": {"m": {**p["models"]["m"], "init_from": "weights/first.safetensors"}}})
    _, meta1 = train.train_model(q, "m", *data, progress=False, root=tmp_path)
    tuned = capsys.readouterr().out
    assert "started from weights/first.safetensors (a heatmap model" in tuned
    assert meta1["init_from"]["path"] == "weights/first.safetensors"
    assert meta1["init_from"]["fresh"] == []
    assert meta1["model_params"]["init_from"] == "weights/first.safetensors"

    def loss(log):
        return [line.split(" loss ")[1].split()[0] for line in log.splitlines() if " loss " in line]
    assert loss(scratch) != loss(tuned)


def test_every_train_stage_depends_on_the_weights_folder():
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["do"]
    assert "weights" in stage["deps"]
    tracked = subprocess.run(["git", "ls-files", "weights"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert "weights/README.md" in tracked            # the folder exists in every clone
    ignored = subprocess.run(["git", "check-ignore", "-q", "weights/x.safetensors"], cwd=REPO)
    assert ignored.returncode == 0                   # its checkpoints never go into git

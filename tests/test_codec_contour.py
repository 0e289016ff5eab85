"""The contour codec (kind ``contour``): four landmark heatmaps plus a Gaussian band along the
skull ellipse, decoded by a robust weighted ellipse fit to the band (codecs/contour.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import fake_prepared, tiny_params, write_workspace
from fhbiometry.codecs import codec_from_settings, make_codec
from fhbiometry.codecs.base import KeypointCodec
from fhbiometry.codecs.contour import ContourCodec, landmark_ellipse
from fhbiometry.codecs.ellipse_fit import conic_ellipse, fit_conic, robust_fit
from fhbiometry.core.choices import KINDS
from fhbiometry.core.geometry import ellipse_landmarks, pair_invariant_errors
from fhbiometry.core.store import save_npz

SRC = Path(__file__).resolve().parents[1] / "src/fhbiometry"
CODEC = {"stride": 4, "sigma": 2.0, "peak": 1.0}


def heads(n, size, rotate: bool, seed=0):
    """(n, 4, 2) landmarks of exact ellipses well inside a ``size`` px input."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = rng.uniform(0.28, 0.38) * size
        b = a * rng.uniform(0.7, 0.92)
        angle = rng.uniform(-np.pi, np.pi) if rotate else 0.0
        cx, cy = size / 2 + rng.uniform(-0.05, 0.05, 2) * size
        out.append(ellipse_landmarks(cx, cy, a, b, angle))
    return np.stack(out)


def cut_sector(targets, points, codec, share=0.3, seed=0):
    """Zero ``share`` of each band's turn (a sector seen from the ellipse centre): shadowing or
    the ultrasound sector's edge."""
    rng = np.random.default_rng(seed)
    out = targets.copy()
    n = codec.heatmap_size
    yy, xx = np.mgrid[:n, :n]
    for i, p in enumerate(points):
        centre, *_ = landmark_ellipse(codec.to_cells(p))
        phi = np.arctan2(yy - centre[1], xx - centre[0])
        start = rng.uniform(-np.pi, np.pi)
        out[i, 4][np.mod(phi - start, 2 * np.pi) < share * 2 * np.pi] = 0.0
    return out


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("rotate", [False, True])
@pytest.mark.parametrize("gap", [False, True])
def test_round_trip_on_exact_ellipses_recovers_the_landmarks(size, rotate, gap):
    codec = make_codec("contour", size, CODEC if size > 64 else {**CODEC, "sigma": 1.5})
    pts = heads(12, size, rotate)
    targets = codec.encode(pts)
    assert targets.shape == (12, 5, size // 4, size // 4)
    assert targets.dtype == np.float32
    assert np.isclose(targets[:, 4].max(), 1.0, atol=0.05)
    if gap:
        targets = cut_sector(targets, pts, codec)
    # a 30 % gap in a 64 px input's band (radius about 5 cells, sigma 1.5) leaves too little
    # contour alone (errors up to 2 px); the landmarks then carry the fit
    for source in ("both",) if gap and size == 64 else ("both", "contour"):
        err = pair_invariant_errors(codec.decode(targets, source=source).points, pts)
        assert err.max() < 0.5, (source, err.max())


def test_the_band_follows_the_ellipse_of_the_four_landmarks():
    codec = ContourCodec(input_size=128, stride=4, sigma=2.0)
    pts = ellipse_landmarks(60.0, 66.0, 40.0, 30.0, 0.4)
    band = codec.encode_one(pts)[4]
    cells = codec.to_cells(pts)
    for p in cells:           # on the ellipse: the band's peak value (to the grid's resolution)
        i, j = np.round(p[::-1]).astype(int)
        assert band[i, j] > 0.8
    centre = np.round(cells[:2].mean(0)[::-1]).astype(int)
    assert band[centre[0], centre[1]] < 1e-3
    nan = pts.copy()
    nan[1] = np.nan
    assert not codec.encode_one(nan)[4].any()


def test_the_fit_is_robust_to_a_few_spurious_bright_pixels():
    codec = ContourCodec(input_size=128, stride=4, sigma=2.0)
    pts = heads(6, 128, rotate=True, seed=3)
    targets = codec.encode(pts)
    rng = np.random.default_rng(1)
    n = codec.heatmap_size
    for t, p in zip(targets, pts):
        centre, a, b, _ = landmark_ellipse(codec.to_cells(p))
        for phi, r in zip(rng.uniform(-np.pi, np.pi, 4), rng.choice([0.7, 1.3], 4)):
            # bright specks 30 % inside or outside the skull, brighter than the band
            x, y = np.round(centre + r * b * np.array([np.cos(phi), np.sin(phi)])).astype(int)
            t[4, min(max(y, 0), n - 1), min(max(x, 0), n - 1)] = 1.5
    err = pair_invariant_errors(codec.decode(targets, source="contour").points, pts)
    assert err.max() < 0.5, err.max()


def test_the_reweighting_pass_discounts_outliers():
    theta = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    pts = np.stack([20 + 12 * np.cos(theta), 18 + 8 * np.sin(theta)], 1)
    bad = pts.copy()
    bad[::15] += 4.0                           # six scattered points far off the ellipse
    w = np.ones(len(pts))
    exact = conic_ellipse(fit_conic(pts, w))
    assert np.allclose(exact.centre, [20, 18], atol=1e-8)
    assert np.allclose(exact.semi, [12, 8], atol=1e-8)
    plain = conic_ellipse(fit_conic(bad, w))
    robust = robust_fit(bad, w)
    plain_err = np.abs(plain.semi - [12, 8]).max() + np.hypot(*(plain.centre - [20, 18]))
    robust_err = np.abs(robust.semi - [12, 8]).max() + np.hypot(*(robust.centre - [20, 18]))
    assert robust_err < 0.3 * plain_err, (robust_err, plain_err)
    assert fit_conic(pts[:5], w[:5]) is None                     # too few points
    assert fit_conic(np.stack([theta, 2 * theta], 1), w) is None  # collinear: no ellipse


def test_a_failed_fit_falls_back_to_the_landmark_decoding():
    codec = ContourCodec(input_size=64, stride=4, sigma=1.5)
    pts = heads(2, 64, rotate=True)
    targets = codec.encode(pts)
    targets[:, 4] = 0.0                        # no contour evidence at all
    assert np.allclose(codec.decode(targets).points, codec.decode(targets, source="landmarks").points)


def test_the_codec_satisfies_the_interface_through_the_registry():
    cls = KINDS.get("contour")
    assert cls is ContourCodec
    assert issubclass(cls, KeypointCodec)
    codec = make_codec("contour", 64, {**CODEC, "coordinates": "normalised"}, {"method": "ellipse"})
    assert codec.kind == "contour"
    assert codec.method == "ellipse"
    assert codec.stride == 4
    assert codec_from_settings(codec.settings()).with_decoding({"method": "ellipse"}) == codec
    assert codec.report() == {"decode_method": "ellipse", "decode_pairs": True, "decode_contour": "both",
                              "contour_weight": 1.0}
    assert codec.mean_output(heads(2, 64, False)) is None
    targets = codec.encode(heads(2, 64, True))
    v = codec.variants(targets)
    assert set(v) == {"decode", "pairs", "contour"}
    assert set(v["contour"]) == {"both", "contour", "landmarks"}
    assert KINDS.meta("contour")["network"] == "heatmap"
    assert KINDS.meta("contour")["extra_channels"] == 1
    with pytest.raises(ValueError, match="source"):
        ContourCodec(source="pixels")


def test_the_loss_covers_all_five_channels():
    import torch

    codec = ContourCodec(input_size=64, stride=4, sigma=1.5)
    loss = codec.make_loss({"foreground_weight": 10.0, "heatmap_loss_weight": 1.0})
    target = torch.from_numpy(codec.encode(heads(2, 64, True)))
    pred = target.clone()
    assert float(loss(pred, target)) == 0.0
    pred[:, 4] = 0.0
    assert float(loss(pred, target)) > 0.0


def test_a_tiny_contour_model_trains_and_evaluates_through_the_real_stages(tmp_path, monkeypatch):
    import torch

    from fhbiometry.evaluation import evaluate as ev
    from fhbiometry.inference.runner import load_model
    from fhbiometry.training import loop as train

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    params = tiny_params(kind="contour", loss="mse", head_channels=16, epochs=1)
    params["models"]["m"]["contour_weight"] = 2.0     # on, though the tiny set's labels are a table
    write_workspace(tmp_path, params, n_train=8, n_val=3)
    save_npz(tmp_path / "data/prepared/test.npz", fake_prepared(3, seed=3))
    train.run(params, "m", root=tmp_path, progress=False)
    loaded = load_model(tmp_path / "models/m.safetensors", kind="contour")
    assert isinstance(loaded.codec, ContourCodec)
    assert loaded.model.final.out_channels == 5
    assert loaded.codec.contour_weight == 2.0          # the checkpoint carries the band's weight
    metrics = ev.run(params, "m", root=tmp_path)
    assert metrics["decode_contour"] == "both"
    assert set(metrics["contour"]) == {"both", "contour", "landmarks"}
    assert metrics["mre_mm"] > 0
    assert metrics["n_test"] == 3
    assert (tmp_path / "results/m/predictions.csv").is_file()
    # the loop, inference and evaluation hold no branch on the kind
    for module in ("training/loop.py", "inference/runner.py", "evaluation/evaluate.py", "models/networks.py"):
        text = (SRC / module).read_text()
        assert "kind ==" not in text, module
        assert "kind !=" not in text, module
        assert "contour" not in text or module == "models/networks.py", module


def test_the_documented_round_trip_command_prints_the_figures():
    """docs/landmarks.md, "The contour codec": the round-trip table's command."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "tests/contour_compare.py", "--round-trip"], cwd=SRC.parents[1],
                         capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(out.stdout)
    assert len(figures) == 24
    assert figures["128px rotated 30% gap both"] < 0.5
    assert max(v for k, v in figures.items() if "gap contour" not in k or k.startswith("128")) < 0.5


@pytest.mark.slow
def test_the_documented_comparison_command_runs_on_a_tiny_split(tmp_path):
    """docs/landmarks.md, "The contour codec": the heatmap-vs-contour command, on 64 px frames."""
    import json
    import subprocess
    import sys

    for split, n, seed in (("train", 8, 1), ("val", 3, 2), ("test", 3, 3)):
        save_npz(tmp_path / f"prepared/{split}.npz", fake_prepared(n, seed=seed))
    subprocess.run([sys.executable, "tests/contour_compare.py", "--prepared", str(tmp_path / "prepared"),
                    "--out", str(tmp_path / "out"), "--epochs", "1", "--threads", "1"],
                   cwd=SRC.parents[1], capture_output=True, text=True, timeout=600, check=True)
    rows = json.loads((tmp_path / "out/compare.json").read_text())
    assert set(rows) == {"heatmap", "contour"}
    assert rows["contour"]["mre_mm"] > 0
    assert set(k for k in rows["contour"] if k.startswith("contour_")) == {
        "contour_both_mre_mm", "contour_contour_mre_mm", "contour_landmarks_mre_mm"}


# ---- the contour term's weight (models.<name>.contour_weight) and decode.contour ---------------
def test_the_contour_weight_scales_the_band_channel_alone():
    import torch

    cfg = {"foreground_weight": 10.0, "heatmap_loss_weight": 1.0}
    target = torch.from_numpy(ContourCodec(input_size=64, stride=4, sigma=1.5).encode(heads(2, 64, True)))
    only_band, only_marks = target.clone(), target.clone()
    only_band[:, 4] = 0.0          # an error on the band channel alone
    only_marks[:, 0] = 0.0         # an error on one landmark channel alone
    losses = {w: ContourCodec(input_size=64, stride=4, sigma=1.5, contour_weight=w).make_loss(cfg)
              for w in (0.0, 1.0, 3.0)}
    assert float(losses[0.0](only_band, target)) == 0.0
    assert float(losses[3.0](only_band, target)) == pytest.approx(3 * float(losses[1.0](only_band, target)))
    assert float(losses[0.0](only_marks, target)) == float(losses[3.0](only_marks, target)) > 0
    pred = only_band.clone().requires_grad_(True)
    losses[0.0](pred, target).backward()
    assert not pred.grad[:, 4].any()
    assert pred.grad[:, :4].abs().sum() == 0   # the band gets no gradient


def test_weight_one_is_the_plain_heatmap_loss_on_five_channels():
    """contour_weight 1 (the default) trains exactly as before it existed: the same loss, bit for bit."""
    import torch

    from fhbiometry.codecs.losses import heatmap_loss

    codec = ContourCodec(input_size=64, stride=4, sigma=1.5)
    target = torch.from_numpy(codec.encode(heads(3, 64, True)))
    pred = target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    loss = codec.make_loss({"foreground_weight": 10.0, "heatmap_loss_weight": 2.0})
    assert torch.equal(loss(pred, target), heatmap_loss(pred, target, 1.0, 10.0, 2.0))


def test_an_untrained_band_is_never_fitted():
    """contour_weight 0: the band channel was not trained, so the default decoding is the landmarks'."""
    off = ContourCodec(input_size=64, stride=4, sigma=1.5, contour_weight=0.0)
    targets = off.encode(heads(2, 64, True))
    targets[:, 4] = np.random.default_rng(0).uniform(0, 1, targets[:, 4].shape)   # what an untrained channel holds
    assert np.array_equal(off.decode(targets).points, off.decode(targets, source="landmarks").points)
    assert off.report()["decode_contour"] == "landmarks"
    assert off.report()["contour_weight"] == 0.0
    assert codec_from_settings(off.settings()).contour_weight == 0.0
    with pytest.raises(ValueError, match="band weight"):
        ContourCodec(contour_weight=-1.0)


@pytest.mark.parametrize("source,own,expected", [("ellipse", None, 1.0), ("csv", None, 0.0),
                                                  ("csv", 0.5, 0.5), ("ellipse", 0.0, 0.0)])
def test_the_contour_weight_follows_the_label_source_unless_set(source, own, expected):
    from fhbiometry.config.schema import model_codec_params

    params = {"codec": dict(CODEC), "data": {"label_source": source}}
    cfg = {} if own is None else {"contour_weight": own}
    assert model_codec_params(params, cfg) == {**CODEC, "contour_weight": expected}
    codec = make_codec("contour", 64, model_codec_params(params, cfg), {"contour": "contour"})
    assert codec.contour_weight == expected
    assert codec.source == "contour"


def test_without_the_label_source_the_weight_is_refused_by_name():
    from fhbiometry.config.messages import ParamError
    from fhbiometry.config.schema import model_codec_params

    with pytest.raises(ParamError, match="data.label_source"):
        model_codec_params({"codec": dict(CODEC)}, {})


def test_the_schema_holds_contour_weight_to_the_contour_kind_and_decode_contour_to_its_sources():
    import yaml

    from fhbiometry.config.messages import ParamError
    from fhbiometry.config.params import validate_params

    params = yaml.safe_load((SRC.parents[1] / "params.yaml").read_text())
    ok = {**params, "models": {**params["models"], "c": {"arch": "resnet18", "kind": "contour", "loss": "mse",
                                                        "contour_weight": 0.5}}}
    assert validate_params(ok)["models"]["c"]["contour_weight"] == 0.5
    wrong = {**params, "models": {**params["models"], "heatmap": {**params["models"]["heatmap"], "contour_weight": 1}}}
    with pytest.raises(ParamError, match="contour_weight"):
        validate_params(wrong)
    with pytest.raises(ParamError, match="decode.contour"):
        validate_params({**params, "decode": {**params["decode"], "contour": "band"}})
    negative = {**ok, "models": {**ok["models"], "c": {**ok["models"]["c"], "contour_weight": -1}}}
    with pytest.raises(ParamError, match="contour_weight"):
        validate_params(negative)

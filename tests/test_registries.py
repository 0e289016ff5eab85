"""The registries of core.choices are the one source of every implemented choice: the params
schema takes its allowed values from them, so a decoder registered by a test module is a valid
``decode.method`` without touching the schema, and an unknown one is refused with a message that
lists the registered ones. Every entry resolves to its implementation."""
import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from fhbiometry.config import schema
from fhbiometry.config.params import ParamError
from fhbiometry.core import choices
from fhbiometry.core.registry import Registry

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())
REGISTRIES = [choices.ARCHS, choices.KINDS, choices.DECODERS, choices.COORDINATES, choices.LOSSES,
              choices.SCHEDULES, choices.OPTIMIZERS]


def with_decode_method(method: str) -> dict:
    raw = copy.deepcopy(RAW)
    raw["decode"]["method"] = method
    return raw


@pytest.fixture
def centre_of_cell():
    """A decoder added here, as a plug-in would add one: the cell centre of the peak, moved by a
    quarter cell (so its result is told apart from argmax)."""
    @choices.DECODERS.register("quarter_cell")
    def quarter_cell(hm, ix, iy, peak):
        return np.stack([ix + 0.25, iy + 0.25], -1).astype(np.float64)
    yield "quarter_cell"
    choices.DECODERS.unregister("quarter_cell")


def test_a_decoder_registered_in_a_test_module_is_a_valid_decode_method(centre_of_cell):
    params = schema.validate_params(with_decode_method(centre_of_cell))
    assert params["decode"]["method"] == centre_of_cell
    from fhbiometry.codecs import make_codec

    codec = make_codec("heatmap", 64, params["codec"], params["decode"])
    hm = np.zeros((1, 4, 16, 16))
    hm[0, :, 5, 7] = 1.0
    cells = (codec.decode(hm, pairs=()).points[0] - (codec.stride - 1) / 2) / codec.stride
    assert np.allclose(cells, [7.25, 5.25]), cells
    assert centre_of_cell in codec.variants(hm)["decode"]


def test_an_unknown_decoder_is_refused_listing_the_registered_ones(centre_of_cell):
    with pytest.raises(ParamError) as info:
        schema.validate_params(with_decode_method("centroid"))
    listed = str(list(choices.DECODERS.names()))
    assert f"params.yaml: decode.method = 'centroid': choose one of {listed}" in str(info.value)
    assert "'quarter_cell'" in listed


def test_a_removed_registration_is_no_longer_valid():
    with pytest.raises(ParamError, match="decode.method = 'quarter_cell'"):
        schema.validate_params(with_decode_method("quarter_cell"))


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.key)
def test_every_entry_resolves_to_its_implementation(registry):
    for name in registry:
        assert callable(registry.get(name)), f"{registry.key}: {name!r} does not resolve to code"


def test_every_codec_declares_the_interface():
    from fhbiometry.codecs.base import KeypointCodec

    for kind in choices.KINDS:
        codec = choices.KINDS.get(kind)()
        assert isinstance(codec, KeypointCodec)
        assert codec.kind == kind
        assert codec.stride is None or codec.stride in choices.HEATMAP_STRIDES
        assert codec.peak > 0


def test_a_codec_missing_part_of_the_interface_cannot_be_built():
    from fhbiometry.codecs.base import KeypointCodec

    class Half(KeypointCodec):
        def encode(self, points_in):
            return points_in

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_registry_rules():
    reg = Registry("test.key")
    reg.register("a", "math:sqrt", kinds=("x",))
    reg.register("b", len, kinds=("x", "y"))
    assert reg.names() == ("a", "b")
    assert reg.names(kinds="y") == ("b",)
    assert reg.get("a")(4.0) == 2.0
    assert "a" in reg
    assert 3 not in reg
    with pytest.raises(ValueError, match="registered already"):
        reg.register("a", len)
    with pytest.raises(ValueError, match=r"test.key = 'c': choose one of \['a', 'b'\]"):
        reg.get("c")


def test_the_schema_choices_are_the_registries():
    """The allowed values the schema reports are the registries' names, key by key."""
    keys = {"codec.coordinates": choices.COORDINATES, "train.schedule": choices.SCHEDULES,
            "train.optimizer": choices.OPTIMIZERS, "decode.method": choices.DECODERS}
    for key, registry in keys.items():
        section, name = key.split(".")
        raw = copy.deepcopy(RAW)
        raw[section][name] = "no-such-choice"
        with pytest.raises(ParamError) as info:
            schema.validate_params(raw)
        assert f"{key} = 'no-such-choice': choose one of {list(registry.names())}" in str(info.value)

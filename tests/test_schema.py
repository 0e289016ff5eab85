"""The params schema: the committed params.yaml and configurations validate; every bad value is
reported with its key path, its value and what is allowed, all at once."""
import copy
from pathlib import Path

import pytest
import yaml

from fhbiometry.config import schema
from fhbiometry.config.params import ParamError, load_params

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def params_with(change) -> dict:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


def error_of(raw) -> str:
    with pytest.raises(ParamError) as info:
        schema.validate_params(raw)
    return str(info.value)


def test_committed_params_validate_in_file_order():
    params = load_params(REPO / "params.yaml")
    assert list(params) == list(RAW)
    assert list(params["train"]) == list(RAW["train"])
    assert params["codec"]["sigma"] == RAW["codec"]["sigma"]
    assert params["models"]["alexnet"] == RAW["models"]["alexnet"]   # overrides only, no defaults added


def test_defaults_fill_only_omitted_optional_keys():
    raw = params_with(lambda r: (r["data"].pop("on_unmatched_subject"), r["split"].pop("near_duplicates")))
    params = schema.validate_params(raw)
    assert params["data"]["on_unmatched_subject"] == "fail"
    assert params["split"]["near_duplicates"] == {"max_distance": 4, "on_leak": "report"}
    omitted_column = params_with(lambda r: r["data"]["columns"].pop("ofd_2_x"))
    assert schema.validate_params(omitted_column)["data"]["columns"]["ofd_2_x"] == "ofd_2_x"
    assert "head_channels" not in params["models"]["resnet18"]


def test_predict_params_default_when_omitted():
    raw = params_with(lambda r: (r["decode"].pop("flip_test"), r["evaluate"].pop("confidence")))
    params = schema.validate_params(raw)
    assert params["decode"]["flip_test"] is False
    assert params["evaluate"]["confidence"] == {"flip_scale": 0.02, "geometry_weight": 1.0, "peak_weight": 1.0,
                                                "reject_share": 0.1, "bad_error_mm": 4.0}


def test_committed_configs_validate():
    hc18 = schema.validate_config(REPO / "configs/hc18.yaml", REPO / "params.yaml")["hc18"]
    assert hc18["data"]["label_source"] == "ellipse"
    assert hc18["data"]["columns"]["frame"] == ""
    rows = schema.validate_config(REPO / "configs/hc18_ablation.yaml", REPO / "params.yaml")
    assert list(rows)[0] == "seed"
    assert (len(rows) == len(yaml.safe_load(
        (REPO / "configs/hc18_ablation.yaml").read_text())["rows"]))
    assert rows["seed"]["decode"]["method"] == "argmax"
    assert rows["seed"]["codec"]["coordinates"] == "pixels"
    assert rows["skips"]["decode"] == {"method": "quadratic", "pairs": True, "flip_test": False,
                                       "size_calibration": "none", "contour": "both", "refine_passes": 1}
    assert rows["seed"]["models"]["heatmap"]["epochs"] == 8          # the budget applies to every row


def _set(path: str, value):
    def change(raw):
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    return change


def _drop(section):
    return lambda raw: raw.pop(section)


CASES = [
    ("unknown key", _set("codec.sgima", 2.0), ["codec.sgima", "unknown key", "did you mean 'sigma'?"]),
    ("unknown qc key", _set("qc.polcy", "keep"), ["qc.polcy", "did you mean 'policy'?"]),
    ("string for a bool", _set("split.grouped", "false"), ["split.grouped = 'false'", "true or false"]),
    ("string for sigma", _set("codec.sigma", "two"), ["codec.sigma = 'two'", "must be a number > 0"]),
    ("string for a range", _set("qc.ratio_range", "0.6-0.95"),
     ["qc.ratio_range = '0.6-0.95'", "0 < low < high <= 1"]),
    ("empty train split", _set("split.fractions", {"train": 0, "val": 0.5, "test": 0.5}),
     ["split.fractions.train = 0", "> 0"]),
    ("fractions not summing to 1", _set("split.fractions", {"train": 0.7, "val": 0.2, "test": 0.2}),
     ["split.fractions = {", "sum to 1"]),
    ("input size", _set("input.size", 100), ["input.size = 100", "multiple of 32"]),
    ("unknown arch", _set("models.alexnet.arch", "vgg16"),
     ["models.alexnet.arch = 'vgg16'", "['alexnet', 'resnet18', 'resnet34']"]),
    ("heatmap with alexnet", _set("models.heatmap.arch", "alexnet"),
     ["models.heatmap.arch = 'alexnet'", "kind heatmap", "resnet18"]),
    ("negative epochs", _set("train.epochs", -3), ["train.epochs = -3", "whole number > 0"]),
    ("float epochs in a model", _set("models.resnet18.epochs", 2.5), ["models.resnet18.epochs = 2.5"]),
    ("missing section", _drop("decode"), ["decode: missing section", "method", "pairs"]),
    ("stride", _set("codec.stride", 3), ["codec.stride = 3", "[1, 2, 4, 8, 16, 32]"]),
    ("augment override", _set("models.resnet34.augment", {"hflip": 1.5}),
     ["models.resnet34.augment.hflip = 1.5", ">= 0 and <= 1"]),
    ("string number", _set("train.lr", "1e-3"), ["train.lr = '1e-3'", "must be a number > 0"]),
    ("augment probability", _set("train.augment.hflip", 1.5), ["train.augment.hflip = 1.5", ">= 0 and <= 1"]),
    ("augment scale order", _set("train.augment.scale", [1.2, 0.8]),
     ["train.augment.scale = [1.2, 0.8]", "0 < low <= high"]),
    ("augment enabled string", _set("train.augment.enabled", "yes"),
     ["train.augment.enabled = 'yes'", "true or false"]),
    ("augment shift", _set("train.augment.shift", 0.7), ["train.augment.shift = 0.7", "< 0.5"]),
    ("augment rotation string", _set("train.augment.rotation_deg", "20"),
     ["train.augment.rotation_deg = '20'", "must be a number"]),
    ("augment unknown key", _set("train.augment.zoom", 1), ["train.augment.zoom", "unknown key"]),
    ("augment missing key", lambda raw: raw["train"]["augment"].pop("blur"),
     ["train.augment.blur: missing key", "must be a number"]),
    # model sections (formerly train.model_config's own checks)
    ("model kind", _set("models.resnet18.kind", "points"),
     ["models.resnet18.kind = 'points'", "['regression', 'heatmap', 'contour']"]),
    ("model loss", _set("models.resnet18.loss", "huber"),
     ["models.resnet18.loss = 'huber'", "['mse', 'l1', 'smooth_l1']"]),
    ("model schedule", _set("models.resnet18.schedule", "linear"),
     ["models.resnet18.schedule = 'linear'", "['cosine', 'step', 'constant']"]),
    ("model optimizer", _set("models.resnet18.optimizer", "adam"),
     ["models.resnet18.optimizer = 'adam'", "['adamw', 'sgd']"]),
    ("zero epochs in a model", _set("models.resnet18.epochs", 0), ["models.resnet18.epochs = 0", "> 0"]),
    ("float batch size", _set("models.resnet18.batch_size", 2.5),
     ["models.resnet18.batch_size = 2.5", "whole number"]),
    ("negative lr", _set("models.resnet18.lr", -1), ["models.resnet18.lr = -1", "must be a number > 0"]),
    ("foreground weight", _set("models.resnet18.foreground_weight", 0.5),
     ["models.resnet18.foreground_weight = 0.5", ">= 1"]),
    ("string bool in a model", _set("models.resnet18.pair_invariant_loss", "yes"),
     ["models.resnet18.pair_invariant_loss = 'yes'", "true or false"]),
    ("head init", _set("models.resnet18.head_init", "zeros"),
     ["models.resnet18.head_init = 'zeros'", "['mean_shape', 'random']"]),
    ("head skips", _set("models.heatmap.head_skips", "yes"), ["models.heatmap.head_skips = 'yes'", "true or false"]),
    ("unknown model key", _set("models.resnet18.epoch", 3),
     ["models.resnet18.epoch: unknown key", "did you mean 'epochs'?"]),
    ("missing arch", lambda raw: raw["models"]["resnet18"].pop("arch"),
     ["models.resnet18.arch: missing key", "['alexnet', 'resnet18', 'resnet34']"]),
    ("decode method", _set("decode.method", "centroid"),
     ["decode.method = 'centroid'", "['argmax', 'quadratic', 'soft_argmax', 'ellipse']"]),
    ("split method", _set("split.method", "size"), ["split.method = 'size'", "['hash', 'head_size']"]),
    ("head-size quantile", _set("split.head_size.test_quantile", 1.0),
     ["split.head_size.test_quantile = 1.0", "< 1"]),
    ("head-size threshold", _set("split.head_size.test_above_hc_mm", -5), ["test_above_hc_mm = -5", ">= 0"]),
    ("head-size statistic", _set("split.head_size.subject_stat", "mean"), ["subject_stat = 'mean'", "['max', 'median']"]),
    ("edge cut", _set("train.augment.edge_cut", 1.5), ["train.augment.edge_cut = 1.5", "<= 1"]),
    ("reference HC column", _set("data.pixel_size_columns.hc", 3), ["data.pixel_size_columns.hc = 3", "string"]),
    ("training seed", _set("train.seed", -2), ["train.seed = -2", "or null (the top-level seed)"]),
    ("flip test", _set("decode.flip_test", "no"), ["decode.flip_test = 'no'", "true or false"]),
    ("reject share", _set("evaluate.confidence.reject_share", 1.0), ["evaluate.confidence.reject_share = 1.0", "< 1"]),
    ("flip scale", _set("evaluate.confidence.flip_scale", 0), ["evaluate.confidence.flip_scale = 0"]),
    ("confidence key", _set("evaluate.confidence.threshold", 0.5), ["evaluate.confidence.threshold: unknown key"]),
    ("old layout key", _set("models.resnet18.coordinates", "pixels"),
     ["models.resnet18.coordinates: unknown key; moved to 'codec.coordinates'"]),
    # synthesize and seed (formerly synth.check_config and synth's seed check)
    ("negative seed", _set("seed", -1), ["seed = -1", "whole number >= 0"]),
    ("odd width", _set("synthesize.width", 161), ["synthesize.width = 161", "even whole number"]),
    ("tiny height", _set("synthesize.height", 30), ["synthesize.height = 30", "from 32 to 4096"]),
    ("unknown format", _set("synthesize.formats", {"tiff": 1.0}),
     ["synthesize.formats.tiff: unknown key", "['dicom', 'video', 'png']"]),
    ("all shares 0", _set("synthesize.formats", {"dicom": 0, "png": 0}),
     ["synthesize.formats = {'dicom': 0, 'png': 0}", "at least one format a share > 0"]),
    ("negative share", _set("synthesize.formats", {"dicom": -1, "png": 1}),
     ["synthesize.formats.dicom = -1", ">= 0"]),
    ("reversed ratio", _set("synthesize.ratio", [0.9, 0.7]),
     ["synthesize.ratio = [0.9, 0.7]", "0.5 <= low <= high <= 1.0"]),
    ("float frames", _set("synthesize.frames_per_subject", [2.5, 3]),
     ["synthesize.frames_per_subject = [2.5, 3]", "two whole numbers"]),
    ("no frames", _set("synthesize.frames_per_subject", [0, 3]),
     ["synthesize.frames_per_subject = [0, 3]", "1 <= low <= high <= 1000"]),
    ("too many subjects", _set("synthesize.subjects", 1000), ["synthesize.subjects = 1000", "<= 999"]),
    ("head fraction", _set("synthesize.head_fraction", [0.1, 0.9]),
     ["synthesize.head_fraction = [0.1, 0.9]", "<= 0.8"]),
    ("video crf", _set("synthesize.video_crf", 18.5), ["synthesize.video_crf = 18.5", "whole number"]),
    ("missing synthesize key", lambda raw: raw["synthesize"].pop("video_crf"),
     ["synthesize.video_crf: missing key"]),
    # data (formerly extract.DataConfig.from_params, labels.table_headers,
    # readers.compile_subject_pattern)
    ("bad input mode", _set("data.on_bad_input", "skip"),
     ["data.on_bad_input = 'skip'", "['fail', 'exclude']"]),
    ("label source", _set("data.label_source", "json"), ["data.label_source = 'json'", "['csv', 'ellipse']"]),
    ("unmatched subject mode", _set("data.on_unmatched_subject", "guess"),
     ["data.on_unmatched_subject = 'guess'", "['fail', 'accept']"]),
    *[(f"max pixels {bad!r}", _set("data.max_image_pixels", bad),
       [f"data.max_image_pixels = {bad!r}", "whole number > 0"]) for bad in (0, -5, 1.5, "big", True)],
    ("default spacing", _set("data.default_spacing_mm", "x"), ["data.default_spacing_mm = 'x'", ">= 0"]),
    ("annotation pattern", _set("data.annotation_pattern", "annotations/a.png"),
     ["data.annotation_pattern = 'annotations/a.png'", "must contain {stem}"]),
    ("ellipse without pattern", lambda raw: raw["data"].update(label_source="ellipse", annotation_pattern=""),
     ["data.annotation_pattern = ''", "data.label_source is 'ellipse'"]),
    ("subject pattern group", _set("data.subject_pattern", r"^\d+"),
     ["data.subject_pattern = '^\\\\d+'", "named group (?P<subject>...)"]),
    ("subject pattern regex", _set("data.subject_pattern", "^(?P<subject>[a-z"),
     ["data.subject_pattern = '^(?P<subject>[a-z'", "valid regular expression"]),
    ("empty column", _set("data.columns.ofd_2_x", ""), ["data.columns.ofd_2_x = ''", "non-empty string"]),
]


@pytest.mark.parametrize("change, expected", [(c, e) for _, c, e in CASES], ids=[name for name, _, _ in CASES])
def test_each_bad_value_names_key_value_and_fix(change, expected):
    message = error_of(params_with(change))
    assert message.startswith("params.yaml: ")
    for part in expected:
        assert part in message, message


def test_loss_from_train_is_checked_per_model_kind():
    message = error_of(params_with(lambda r: (r["train"].update(loss="l1"), r["models"]["heatmap"].pop("loss"))))
    assert "models.heatmap.loss = 'l1': for kind heatmap choose one of ['mse'] (from train.loss" in message
    assert "alexnet" not in message


def test_all_errors_are_reported_at_once():
    def change(raw):
        for c in (_set("codec.sgima", 1), _set("codec.sigma", "two"), _set("qc.ratio_range", "0.6-0.95"),
                  _set("split.grouped", "false"), _set("input.size", 100), _drop("plots")):
            c(raw)
    lines = error_of(params_with(change)).splitlines()
    assert len(lines) == 6, lines
    assert "params.yaml: codec.sigma = 'two': must be a number > 0" in lines
    assert "params.yaml: codec.sgima: unknown key; did you mean 'sigma'?" in lines


def test_model_config_merges_train_and_overrides():
    cfg = schema.model_config(RAW, "heatmap")
    assert cfg["epochs"] == RAW["models"]["heatmap"]["epochs"]
    assert cfg["lr"] == RAW["train"]["lr"]
    assert cfg["kind"] == "heatmap"
    assert cfg["head_channels"] == 128
    assert "coordinates" not in cfg
    raw = params_with(_set("models.alexnet.augment", {"hflip": 0.0}))
    cfg = schema.model_config(raw, "alexnet")
    assert cfg["augment"]["hflip"] == 0.0
    assert cfg["augment"]["rotation_deg"] == RAW["train"]["augment"]["rotation_deg"]
    assert cfg["head_skips"] is True
    with pytest.raises(ParamError, match="models.vgg: no such model"):
        schema.model_config(RAW, "vgg")


def test_bad_ablation_row_is_named(tmp_path):
    ladder = yaml.safe_load((REPO / "configs/hc18_ablation.yaml").read_text())
    ladder["base"] = str(REPO / "configs/hc18.yaml")
    ladder["rows"][1]["set"]["codec.decode"] = "argmax"           # the old layout
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(ladder))
    with pytest.raises(ParamError) as info:
        schema.validate_config(path, REPO / "params.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 1
    assert "row 'grouped'" in lines[0]
    assert "codec.decode: unknown key; moved to" in lines[0]


def test_bad_partial_config_is_named(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("codec:\n  decode: argmax\ntrain:\n  coordinates: pixels\n")
    with pytest.raises(ParamError) as info:
        schema.validate_config(path, REPO / "params.yaml")
    assert str(info.value).splitlines() == [
        f"{path} (on params.yaml): codec.decode: unknown key; moved to 'decode.method' (the params layout changed)",
        f"{path} (on params.yaml): train.coordinates: unknown key; moved to 'codec.coordinates' "
        "(the params layout changed)"]


def test_accuracy_keys_default_to_todays_behaviour():
    """split.method, split.head_size, train.augment.edge_cut and data.pixel_size_columns.hc are
    optional; their defaults are today's hash split, no edge cut and no reference HC column."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["split"].pop("method", None)
    raw["split"].pop("head_size", None)
    raw["train"]["augment"].pop("edge_cut", None)
    raw["data"]["pixel_size_columns"].pop("hc", None)
    params = schema.validate_params(raw)
    assert params["split"]["method"] == "hash"
    assert params["split"]["head_size"] == {"test_above_hc_mm": 0.0, "test_quantile": 0.8, "subject_stat": "max",
                                            "fit_up_to_hc_mm": 0.0}
    assert params["train"]["augment"]["edge_cut"] == 0.0
    assert params["data"]["pixel_size_columns"]["hc"] == ""
    params = schema.validate_params({**raw, "decode": {"method": "ellipse", "pairs": True}})
    assert params["decode"]["method"] == "ellipse"


def test_a_row_name_yaml_reads_as_a_boolean_is_refused_with_the_fix(tmp_path):
    """`- name: off` is false in YAML 1.1; the ablation would crash at the end of the row's run."""
    path = tmp_path / "ladder.yaml"
    path.write_text(f"base: {REPO / 'configs/contour.yaml'}\nrows:\n  - name: off\n    label: x\n"
                    "    set: {models.contour.contour_weight: 0.0}\n")
    with pytest.raises(ParamError) as info:
        schema.validate_config(path, REPO / "params.yaml")
    assert "rows[0].name = False" in str(info.value)
    assert "quote it" in str(info.value)

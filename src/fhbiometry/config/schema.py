"""The one schema of params.yaml (pydantic v2): every key, its type and its allowed values.

``validate_params(raw)`` checks a whole params mapping at once and raises one ``ParamError``
listing every problem on its own line, each naming the key path, the value and what is allowed;
unknown keys get a "did you mean" suggestion. Types are strict: no string -> bool or
string -> number coercion (an int is accepted where a number is asked for). The result is a
plain dict in the file's nesting and key order, with defaults only where the file omits an
optional key. ``model_config`` merges ``train`` with one ``models.<name>`` section;
``validate_config`` checks a configuration under configs/ (a partial override or an ablation
ladder) merged onto params.yaml. The choice tuples below are the one source of allowed values.
"""
from __future__ import annotations

import copy
import difflib
import re
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from fhbiometry.config.params import ParamError

# ---- allowed values (modules import these from here) ------------------------------------------
FORMATS = ("dicom", "video", "png")
LABEL_SOURCES = ("csv", "ellipse")
BAD_INPUT_MODES = ("fail", "exclude")
UNMATCHED_SUBJECT_MODES = ("fail", "accept")
QC_POLICIES = ("keep", "exclude", "fail")
QC_NAMINGS = ("anatomical", "as_labelled")
QC_REFERENCES = ("", "ellipse")
SPLITS = ("train", "val", "test")
LEAK_MODES = ("report", "fail")
RESIZE_MODES = ("letterbox", "stretch")
COORDINATE_MODES = ("normalised", "pixels")
DECODE_MODES = ("argmax", "quadratic", "soft_argmax", "ellipse")
SIZE_CALIBRATIONS = ("none", "validation")        # calibration.METHODS
SPLIT_METHODS = ("hash", "head_size")
SUBJECT_STATS = ("max", "median")
HEATMAP_STRIDES = (1, 2, 4, 8, 16, 32)   # the deconvolution head halves the trunk's stride 32
TRUNK_STRIDE = 32                        # the input size must be a multiple of it
ARCHS = ("alexnet", "resnet18", "resnet34")
KINDS = ("regression", "heatmap")
HEATMAP_ARCHS = ("resnet18",)
REGRESSION_LOSSES = ("mse", "l1", "smooth_l1")
HEATMAP_LOSSES = ("mse",)
LOSSES = REGRESSION_LOSSES
SCHEDULES = ("cosine", "step", "constant")
OPTIMIZERS = ("adamw", "sgd")
HEAD_INITS = ("mean_shape", "random")
DEVICE_TYPES = ("auto", "cpu", "cuda", "mps")
AMP_MODES = ("none", "bf16", "fp16")
INTERVAL_SCORES = ("none", "flip", "geometry", "peak", "fitted")   # trust.intervals.SCORES (a test keeps them equal)
INTERVAL_SCALES = ("mm", "relative")                            # trust.intervals.SCALES
DEFAULT_HEAD_CHANNELS = 128
DEFAULT_HEAD_SKIPS = True
FRACTION_TOLERANCE = 1e-6
# keys of the previous layout -> where they live now (named in the unknown-key error)
MOVED_KEYS = {"codec.input_size": "input.size", "codec.resize": "input.resize",
              "codec.canonical_order": "landmarks.canonical_order", "codec.decode": "decode.method",
              "codec.pair_decode": "decode.pairs", "train.coordinates": "codec.coordinates"}
COLUMN_KEYS = ("image", "frame", "ofd_1_x", "ofd_1_y", "ofd_2_x", "ofd_2_y",
               "bpd_1_x", "bpd_1_y", "bpd_2_x", "bpd_2_y")


# ---- field types: a type, its constraints and a Hint (the text of the error) -----------------
class Hint:
    """What a key allows, in words; the error message of every problem with that key."""

    def __init__(self, text: str):
        self.text = text


def _problems(*items):
    """The error of a rule: items ``(key, value, hint)``; key '' is the key being validated (its value
    as written is shown; hint '' = that key's Hint), else a dotted key below it with ``value``."""
    summary = "; ".join(hint for _, _, hint in items)
    return PydanticCustomError("param", "{summary}", {"problems": list(items), "summary": summary})


def _check(test, hint: str = ""):
    """An AfterValidator that keeps the value when ``test(value)`` holds ('' = the key's Hint)."""
    def run(value):
        if not test(value):
            raise _problems(("", None, hint))
        return value
    return AfterValidator(run)


def number(lo=None, hi=None, lo_open=True, hi_open=False):
    """A number (int or float) in the given range; ``lo_open``: lo itself excluded."""
    parts = ([f"{'>' if lo_open else '>='} {lo}"] if lo is not None else []) + \
            ([f"{'<' if hi_open else '<='} {hi}"] if hi is not None else [])
    hint = "must be a number" + (" " + " and ".join(parts) if parts else "")
    bounds = {}
    if lo is not None:
        bounds["gt" if lo_open else "ge"] = lo
    if hi is not None:
        bounds["lt" if hi_open else "le"] = hi
    return Annotated[float, Field(**bounds), Hint(hint)]


def whole(lo=None, hi=None, lo_open=False, multiple_of=None, hint=None):
    """A whole number (not a float, not a bool) in the given range."""
    bounds = {}
    parts = []
    if lo is not None:
        bounds["gt" if lo_open else "ge"] = lo
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        bounds["le"] = hi
        parts.append(f"<= {hi}")
    if multiple_of:
        bounds["multiple_of"] = multiple_of
    hint = hint or "must be a whole number" + (" " + " and ".join(parts) if parts else "")
    return Annotated[int, Field(**bounds), Hint(hint)]


def choice(values):
    return Annotated[Literal[values], Hint(f"choose one of {list(values)}")]


def pair(lo_ok, hi_ok, strict_order=False, integer=False, lo_open=False):
    """[low, high] with lo_ok <= low <= high <= hi_ok (``strict_order``: low < high;
    ``lo_open``: 0 < low instead of lo_ok <= low)."""
    item = int if integer else float
    kind = "whole numbers" if integer else "numbers"
    first = f"{lo_ok} {'<' if lo_open else '<='} low"
    hint = f"must be two {kind} [low, high] with {first} {'<' if strict_order else '<='} high <= {hi_ok}"

    def ok(v):
        lo, hi = v
        above = lo > lo_ok if lo_open else lo >= lo_ok
        return above and (lo < hi if strict_order else lo <= hi) and hi <= hi_ok
    return Annotated[list[item], Field(min_length=2, max_length=2), _check(ok, hint), Hint(hint)]


def _valid_regex(pattern: str) -> bool:
    try:
        return "subject" in re.compile(pattern).groupindex
    except re.error:
        return False


Bool = Annotated[bool, Hint("must be true or false (unquoted)")]
Text = Annotated[str, Hint("must be a string ('' for none)")]
NonEmptyText = Annotated[str, _check(lambda s: s.strip() != ""), Hint("must be a non-empty string")]
Probability = number(0, 1, lo_open=False)
PositiveNumber = number(0)
NonNegative = number(0, lo_open=False)
PositiveWhole = whole(0, lo_open=True)
NonNegativeWhole = whole(0)
SubjectPattern = Annotated[str, _check(_valid_regex, "must be a valid regular expression with a named "
                                                    "group (?P<subject>...)"),
                           Hint("must be a regular expression with a named group (?P<subject>...)")]
AnnotationPattern = Annotated[str, _check(lambda s: not s or "{stem}" in s, "must contain {stem} (or be '')"),
                              Hint("must be a string containing {stem} (or '')")]
Stride = Annotated[int, _check(lambda v: v in HEATMAP_STRIDES, f"choose one of {list(HEATMAP_STRIDES)}"),
                   Hint(f"choose one of {list(HEATMAP_STRIDES)}")]
InputSize = whole(0, lo_open=True, multiple_of=TRUNK_STRIDE,
                  hint=f"must be a positive multiple of {TRUNK_STRIDE} (the networks) and of codec.stride")
Thresholds = Annotated[list[float], Field(min_length=1), _check(lambda v: all(t > 0 for t in v)),
                       Hint("must be a non-empty list of numbers > 0 (mm)")]


class Section(BaseModel):
    """A params section: strict types, unknown keys are errors, no inf or nan."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    overrides_only: ClassVar[bool] = False   # True: a key the file omits stays omitted (no default filled in)


# ---- sections ---------------------------------------------------------------------------------
class Formats(Section):
    overrides_only: ClassVar[bool] = True
    dicom: NonNegative = 0.0
    video: NonNegative = 0.0
    png: NonNegative = 0.0

    @model_validator(mode="after")
    def _some_share(self):
        if not any(getattr(self, k) > 0 for k in FORMATS):
            raise _problems(("", None, "give at least one format a share > 0"))
        return self


class Synthesize(Section):
    subjects: whole(1, 999)
    frames_per_subject: pair(1, 1000, integer=True)
    width: Annotated[whole(32, 4096), _check(lambda v: v % 2 == 0), Hint("must be an even whole number "
                     "from 32 to 4096 (H.264 video needs even frame sizes)")]
    height: Annotated[whole(32, 4096), _check(lambda v: v % 2 == 0), Hint("must be an even whole number "
                      "from 32 to 4096 (H.264 video needs even frame sizes)")]
    formats: Formats
    ga_weeks: pair(12, 42)
    ratio: pair(0.5, 1.0)
    head_fraction: pair(0.1, 0.8)
    motion_px: number(0, 50, lo_open=False)
    motion_deg: number(0, 45, lo_open=False)
    poor_frame_rate: Probability
    label_faults: Probability
    video_crf: whole(0, 51)


class Columns(Section):
    image: NonEmptyText = "image"
    frame: Annotated[str, Hint("must be a string ('' = no frame column)")] = "frame"
    ofd_1_x: NonEmptyText = "ofd_1_x"
    ofd_1_y: NonEmptyText = "ofd_1_y"
    ofd_2_x: NonEmptyText = "ofd_2_x"
    ofd_2_y: NonEmptyText = "ofd_2_y"
    bpd_1_x: NonEmptyText = "bpd_1_x"
    bpd_1_y: NonEmptyText = "bpd_1_y"
    bpd_2_x: NonEmptyText = "bpd_2_x"
    bpd_2_y: NonEmptyText = "bpd_2_y"


class PixelSizeColumns(Section):
    image: NonEmptyText = "filename"
    spacing: NonEmptyText = "pixel size(mm)"
    hc: Text = ""                    # reference head circumference (mm) column; '' = none


class Data(Section):
    raw_dir: NonEmptyText
    label_source: choice(LABEL_SOURCES) = "csv"
    landmarks_csv: Text = "landmarks.csv"
    columns: Columns = Field(default_factory=Columns)
    annotation_pattern: AnnotationPattern = "annotations/{stem}_Annotation.png"
    pixel_size_csv: Text = ""
    pixel_size_columns: PixelSizeColumns = Field(default_factory=PixelSizeColumns)
    default_spacing_mm: NonNegative = 0.0
    subject_pattern: SubjectPattern = r"^(?P<subject>[A-Za-z]*\d+)"
    on_bad_input: choice(BAD_INPUT_MODES) = "fail"
    on_unmatched_subject: choice(UNMATCHED_SUBJECT_MODES) = "fail"
    max_image_pixels: PositiveWhole = 50_000_000

    @model_validator(mode="after")
    def _ellipse_needs_pattern(self):
        if self.label_source == "ellipse" and not self.annotation_pattern:
            raise _problems(("annotation_pattern", "", "must not be '' when data.label_source is 'ellipse'"))
        return self


class QC(Section):
    policy: choice(QC_POLICIES)
    naming: choice(QC_NAMINGS)
    max_midpoint_offset: PositiveNumber
    max_perpendicular_deviation_deg: number(0, 90)
    ratio_range: pair(0, 1, strict_order=True, lo_open=True)
    reference: choice(QC_REFERENCES)
    reference_tolerance_mm: PositiveNumber
    overlay_limit: NonNegativeWhole


class Fractions(Section):
    train: Annotated[PositiveNumber, Hint("must be a number > 0 (train, val and test sum to 1)")]
    val: Annotated[PositiveNumber, Hint("must be a number > 0 (train, val and test sum to 1)")]
    test: Annotated[PositiveNumber, Hint("must be a number > 0 (train, val and test sum to 1)")]

    @model_validator(mode="after")
    def _sum_to_one(self):
        total = self.train + self.val + self.test
        if abs(total - 1.0) > FRACTION_TOLERANCE:
            raise _problems(("", None, f"train, val and test must sum to 1 (they sum to {total:g})"))
        return self


HashDistance = whole(0, 63, hint="must be a whole number of bits from 0 to 63 (a 64-bit hash)")


class NearDuplicates(Section):
    max_distance: HashDistance = 4
    on_leak: choice(LEAK_MODES) = "report"


class HeadSize(Section):
    test_above_hc_mm: NonNegative = 0.0   # subjects with a larger head go to test; 0 = use test_quantile
    test_quantile: number(0, 1, hi_open=True) = 0.8   # used when test_above_hc_mm is 0
    subject_stat: choice(SUBJECT_STATS) = "max"
    fit_up_to_hc_mm: NonNegative = 0.0   # > 0: only subjects up to this train/validate; the gap is left out


class Split(Section):
    fractions: Fractions
    grouped: Bool
    near_duplicates: NearDuplicates = Field(default_factory=NearDuplicates)
    method: choice(SPLIT_METHODS) = "hash"
    head_size: HeadSize = Field(default_factory=HeadSize)


class Input(Section):
    size: InputSize
    resize: choice(RESIZE_MODES)


class Landmarks(Section):
    canonical_order: Bool


class Codec(Section):
    coordinates: choice(COORDINATE_MODES)
    stride: Stride
    sigma: PositiveNumber
    peak: PositiveNumber


class Decode(Section):
    method: choice(DECODE_MODES)
    pairs: Bool
    flip_test: Bool = False
    size_calibration: choice(SIZE_CALIBRATIONS) = "none"


class Confidence(Section):
    flip_scale: PositiveNumber = 0.02
    geometry_weight: NonNegative = 1.0
    peak_weight: NonNegative = 1.0
    reject_share: Annotated[number(0, 1, hi_open=True), Hint("must be a number > 0 and < 1 "
                                                             "(a share of the validation frames)")] = 0.1
    bad_error_mm: PositiveNumber = 4.0


class Augment(Section):
    enabled: Bool
    rotation_deg: number(0, 180, lo_open=False)
    scale: Annotated[list[float], Field(min_length=2, max_length=2),
                     _check(lambda v: 0 < v[0] <= v[1]),
                     Hint("must be two numbers [low, high] with 0 < low <= high")]
    shift: Annotated[number(0, 0.5, lo_open=False, hi_open=True), Hint("must be a number >= 0 and < 0.5 "
                                                                        "(a fraction of the input size)")]
    hflip: Probability
    vflip: Probability
    contrast: number(0, 1, lo_open=False, hi_open=True)
    blur: Probability
    speckle: Probability
    edge_cut: Probability = 0.0      # probability of a shift that pushes one landmark to or past the edge


class Train(Section):
    epochs: PositiveWhole
    batch_size: PositiveWhole
    lr: PositiveNumber
    schedule: choice(SCHEDULES)
    warmup_epochs: NonNegative
    weight_decay: NonNegative
    optimizer: choice(OPTIMIZERS)
    loss: Annotated[choice(LOSSES), Hint(f"choose one of {list(LOSSES)} (kind heatmap: {list(HEATMAP_LOSSES)})")]
    pair_invariant_loss: Bool
    heatmap_loss_weight: PositiveNumber
    foreground_weight: Annotated[number(1, lo_open=False), Hint("must be a number >= 1 (1 = plain MSE)")]
    pretrained: Annotated[str, Hint("must be a file path or '' (from scratch)")]
    head_init: choice(HEAD_INITS)
    augment: Augment
    seed: Annotated[NonNegativeWhole | None, Hint("must be a whole number >= 0, or null (the top-level seed)")] = None


def _overrides(model: type[Section], name: str, extra: dict) -> type[Section]:
    """A section with every key of ``model`` optional (an override) plus the ``extra`` fields."""
    fields = {k: (f.rebuild_annotation(), None) for k, f in model.model_fields.items()}
    fields.update(extra)
    out = create_model(name, __base__=Section, **fields)
    out.overrides_only = True
    return out


AugmentOverrides = _overrides(Augment, "AugmentOverrides", {})
ModelSection = _overrides(Train, "ModelSection", {
    "arch": (choice(ARCHS), ...),
    "kind": (choice(KINDS), ...),
    "head_channels": (PositiveWhole, None),
    "head_skips": (Bool, None),
    "augment": (AugmentOverrides, None),
})


class Device(Section):
    """Where training runs (docs/scaling.md); the defaults are the CPU path."""
    type: choice(DEVICE_TYPES) = "auto"
    amp: Annotated[choice(AMP_MODES), Hint(f"choose one of {list(AMP_MODES)} (bf16 and fp16 need CUDA)")] = "none"
    compile: Bool = False
    channels_last: Bool = False


class Evaluate(Section):
    thresholds_mm: Thresholds
    timing_frames: NonNegativeWhole
    confidence: Confidence = Field(default_factory=Confidence)


class Plots(Section):
    examples: NonNegativeWhole


class Intervals(Section):
    """Calibrated intervals (trust/intervals.py): level, difficulty score, scale, rejection."""
    level: Annotated[number(0, 1, hi_open=True), Hint("must be a number > 0 and < 1 (e.g. 0.9 for 90 %)")] = 0.9
    score: choice(INTERVAL_SCORES) = "flip"
    scale: choice(INTERVAL_SCALES) = "mm"
    reject_half_width_mm: PositiveNumber = 3.0   # frames whose BPD half-width exceeds it are rejected


Models = Annotated[dict[str, ModelSection], Field(min_length=1),
                   Hint("must be a mapping of model name -> model section (at least one)")]


class Params(Section):
    seed: NonNegativeWhole
    threads: PositiveWhole
    launcher: Annotated[NonEmptyText, Hint("must be the command that starts a stage's Python entry point, "
                                           "e.g. 'python' or 'torchrun --nproc_per_node 2'")] = "python"
    device: Device = Field(default_factory=Device)
    synthesize: Synthesize
    data: Data
    qc: QC
    split: Split
    input: Input
    landmarks: Landmarks
    codec: Codec
    decode: Decode
    train: Train
    models: Models
    evaluate: Evaluate
    plots: Plots
    intervals: Intervals = Field(default_factory=Intervals)

    @field_validator("models", mode="after")
    @classmethod
    def _model_rules(cls, models, info):
        train = info.data.get("train")
        if train is None:          # train itself is invalid: reported there
            return models
        problems = []
        for name, own in models.items():
            problems += [(f"{name}.{key}", value, hint) for key, value, hint in _rules(train, own)]
        if problems:
            raise _problems(*problems)
        return models

    @model_validator(mode="after")
    def _size_and_stride(self):
        if self.input.size % self.codec.stride:
            raise _problems(("input.size", self.input.size,
                             f"must be a multiple of codec.stride ({self.codec.stride})"))
        return self


def _rules(train: Train, own) -> list[tuple[str, Any, str]]:
    """The cross-key rules of one model section (merged with train): (key, value, hint)."""
    out = []
    loss = own.loss if "loss" in own.model_fields_set else train.loss
    if own.kind == "heatmap" and own.arch not in HEATMAP_ARCHS:
        out.append(("arch", own.arch, f"with kind heatmap choose one of {list(HEATMAP_ARCHS)} "
                                      "(the heatmap model is only implemented for those)"))
    losses = HEATMAP_LOSSES if own.kind == "heatmap" else REGRESSION_LOSSES
    if loss not in losses:
        source = "" if "loss" in own.model_fields_set else " (from train.loss: set loss in the model)"
        out.append(("loss", loss, f"for kind {own.kind} choose one of {list(losses)}{source}"))
    return out


# ---- errors -----------------------------------------------------------------------------------
_MISSING = object()


def _unwrap(annotation):
    """(the class or container behind an annotation, its Hint text or None)."""
    hint = None
    while typing.get_origin(annotation) is Annotated:
        hints = [m.text for m in annotation.__metadata__ if isinstance(m, Hint)]
        hint = hints[-1] if hints else hint
        annotation = typing.get_args(annotation)[0]
    return annotation, hint


def _walk(loc) -> tuple[list, Any, str | None]:
    """Follow ``loc`` through the schema: (the key path of the deepest key the schema names,
    the type at that key, its Hint text)."""
    node, hint, path = Params, None, []
    for key in loc:
        if isinstance(node, type) and issubclass(node, BaseModel) and key in node.model_fields:
            node, hint = _unwrap(node.model_fields[key].rebuild_annotation())
        elif typing.get_origin(node) is dict and isinstance(key, str):
            node, hint = _unwrap(typing.get_args(node)[1])
        else:
            break
        path.append(key)
    return path, node, hint


def _raw_at(raw, path):
    for key in path:
        if not isinstance(raw, dict) or key not in raw:
            return _MISSING
        raw = raw[key]
    return raw


def _allowed_keys(node) -> list[str]:
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _line(source: str, path, value, hint: str) -> str:
    name = ".".join(str(p) for p in path)
    shown = "" if value is _MISSING else f" = {value!r}"
    return f"{source}: {name}{shown}: {hint}"


def _error_lines(err: dict, raw: dict, source: str) -> list[str]:
    """One pydantic error -> the lines of the ParamError message."""
    kind, loc = err["type"], tuple(err["loc"])
    if kind == "extra_forbidden":
        allowed = _allowed_keys(_walk(loc[:-1])[1])
        name = ".".join(map(str, loc))
        moved = MOVED_KEYS.get(name) or MOVED_KEYS.get(f"train.{loc[-1]}" if loc[0] == "models" else "")
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        fix = (f"moved to {moved!r} (the params layout changed)" if moved
               else f"did you mean {close[0]!r}?" if close else f"allowed keys: {allowed}")
        return [f"{source}: {name}: unknown key; {fix}"]
    path, node, hint = _walk(loc)
    if kind == "missing":
        keys = _allowed_keys(node)
        what = f"missing section (keys: {keys})" if keys else f"missing key ({hint})" if hint else "missing key"
        return [f"{source}: {'.'.join(map(str, loc))}: {what}"]
    if kind == "param":
        out = []
        for key, value, text in err["ctx"]["problems"]:
            if key:
                out.append(_line(source, path + key.split("."), value, text))
            else:
                out.append(_line(source, path, _raw_at(raw, path), text or hint or err["msg"]))
        return out
    if kind in ("model_type", "dict_type") and _allowed_keys(node):
        hint = f"must be a mapping with keys {_allowed_keys(node)}"
    return [_line(source, path, _raw_at(raw, path), hint or err["msg"])]


def _message(lines: list[str]) -> str:
    return "\n".join(dict.fromkeys(lines))


# ---- public API -------------------------------------------------------------------------------
def _plain(value, raw):
    """A validated value as plain dicts / lists, keys in the file's order, then defaults."""
    if isinstance(value, BaseModel):
        raw = raw if isinstance(raw, dict) else {}
        fields = type(value).model_fields
        keys = [k for k in raw if k in fields]
        if not value.overrides_only:
            keys += [k for k in fields if k not in raw]
        return {k: _plain(getattr(value, k), raw.get(k)) for k in keys}
    if isinstance(value, dict):
        raw = raw if isinstance(raw, dict) else {}
        return {k: _plain(v, raw.get(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, None) for v in value]
    return value


def _validate_lines(raw, source: str) -> tuple[dict | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"{source}: must hold a mapping of sections {list(Params.model_fields)}, got {raw!r}"]
    try:
        return _plain(Params.model_validate(raw), raw), []
    except ValidationError as exc:
        return None, [line for err in exc.errors() for line in _error_lines(err, raw, source)]


def validate_params(raw: dict, source: str = "params.yaml") -> dict:
    """The validated params as a plain dict; raises one ParamError listing every problem."""
    params, lines = _validate_lines(raw, source)
    if lines:
        raise ParamError(_message(lines))
    return params


def read_yaml(path, what: str = "parameter file"):
    path = Path(path)
    if not path.exists():
        raise ParamError(f"{path}: {what} not found (run from the repository root)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML: {err}") from None


def model_config(params: dict, name: str) -> dict:
    """The merged, validated settings of ``models.<name>``: every ``train`` key, overridden by the
    model's own keys (``augment`` key by key), plus arch, kind, head_channels and head_skips.
    ``params`` is validated already (``params.load_params``; it may hold only the stage's keys)."""
    if name not in params["models"]:
        raise ParamError(f"params.yaml: models.{name}: no such model; choose one of {list(params['models'])}")
    own = params["models"][name]
    cfg = copy.deepcopy(params["train"])
    cfg.update({k: copy.deepcopy(v) for k, v in own.items() if k != "augment"})
    cfg["augment"] = {**params["train"]["augment"], **own.get("augment", {})}
    cfg.setdefault("head_channels", DEFAULT_HEAD_CHANNELS)
    cfg.setdefault("head_skips", DEFAULT_HEAD_SKIPS)
    return cfg


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``: mappings merged key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def unflatten(dotted: dict) -> dict:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = str(key).split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


LADDER_KEYS = ("base", "budget", "rows")
ROW_KEYS = ("name", "label", "set")


def _ladder_lines(path: Path, ladder: dict) -> list[str]:
    """Problems in the shape of an ablation ladder (not in the params it sets)."""
    out = [f"{path}: {k}: unknown key; allowed keys: {list(LADDER_KEYS)}" for k in ladder if k not in LADDER_KEYS]
    if not isinstance(ladder.get("base"), str):
        out.append(f"{path}: base = {ladder.get('base')!r}: must be the path of a configuration file")
    if not isinstance(ladder.get("budget", {}), dict):
        out.append(f"{path}: budget = {ladder['budget']!r}: must be a mapping of dotted keys")
    rows = ladder.get("rows")
    if not isinstance(rows, list) or not rows:
        return out + [f"{path}: rows = {rows!r}: must be a non-empty list of rows {list(ROW_KEYS)}"]
    names = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != set(ROW_KEYS) or not isinstance(row.get("set"), dict):
            out.append(f"{path}: rows[{i}] = {row!r}: must have exactly the keys {list(ROW_KEYS)}, "
                       "set a mapping of dotted keys")
            continue
        names.append(row["name"])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        out.append(f"{path}: rows: names must be unique; repeated: {dup}")
    return out


def _ladder_params(path: Path, ladder: dict, params: dict, root: Path) -> tuple[dict, list[str]]:
    """Every row of a ladder validated: ({row name: params}, problem lines)."""
    base_path = root / ladder["base"]
    merged = deep_merge(params, read_yaml(base_path, "ladder base configuration") or {})
    out, lines, seen = {}, [], set()
    for row in ladder["rows"]:
        merged = deep_merge(merged, unflatten(row["set"]))
        with_budget = deep_merge(merged, unflatten(ladder.get("budget") or {}))
        result, problems = _validate_lines(with_budget, f"{path} row {row['name']!r}")
        for line in problems:
            problem = line.split(": ", 1)[1]
            if problem not in seen:
                seen.add(problem)
                lines.append(line)
        out[row["name"]] = result
    return out, lines


def validate_config(path, params_path="params.yaml") -> dict:
    """Validate a configuration under configs/ merged onto params.yaml: a partial params file
    (deep merge), or an ablation ladder (``base``, ``budget``, ``rows`` of dotted ``set:``
    overrides; each row on top of every row above it, plus the budget). Returns {name: params}
    (the file's stem, or each row's name); raises one ParamError listing every problem."""
    path, params_path = Path(path), Path(params_path)
    params = read_yaml(params_path)
    if not isinstance(params, dict):
        validate_params(params, str(params_path))
    config = read_yaml(path, "configuration") or {}
    if not isinstance(config, dict):
        raise ParamError(f"{path}: must hold a mapping, got {config!r}")
    if "rows" not in config:
        result, lines = _validate_lines(deep_merge(params, config), f"{path} (on {params_path.name})")
        if lines:
            raise ParamError(_message(lines))
        return {path.stem: result}
    lines = _ladder_lines(path, config)
    if lines:
        raise ParamError(_message(lines))
    out, lines = _ladder_params(path, config, params, params_path.parent)
    if lines:
        raise ParamError(_message(lines))
    return out

"""The params sections of the model stages: input, landmarks, codec, decode, train, models,
device, evaluate, plots, intervals; and the cross-key rules of one model section."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, create_model

from fhbiometry.config.fields import (Bool, InputSize, NonNegative, NonNegativeWhole, PositiveNumber,
                                      PositiveWhole, Probability, Section, Stride, Thresholds, TtaRotations,
                                      TtaScales, check, choice, number)
from fhbiometry.config.messages import Hint
from fhbiometry.core.choices import (AMP_MODES, ARCHS, CONTOUR_SOURCES, COORDINATES, DECODERS, DEVICE_TYPES,
                                     INTERVAL_SCALES, INTERVAL_SCORES, KINDS, LOSSES, OPTIMIZERS, SCHEDULES, SIZE_CALIBRATIONS)
from fhbiometry.core.letterbox import RESIZE_MODES

HEAD_INITS = ("mean_shape", "random")
INIT_DIR = "weights"   # train.init_from checkpoints live here: every train@<model> stage depends on it


def init_path_ok(value: str) -> bool:
    """'' or a relative ``weights/<...>.safetensors`` path (no '..'): a file the stages depend on."""
    parts = Path(value).parts
    return value == "" or (len(parts) >= 2 and parts[0] == INIT_DIR and ".." not in parts
                           and value.endswith(".safetensors") and not Path(value).is_absolute())


class Input(Section):
    size: InputSize
    resize: choice(RESIZE_MODES)


class Landmarks(Section):
    canonical_order: Bool


class Codec(Section):
    coordinates: choice(COORDINATES)
    stride: Stride
    sigma: PositiveNumber
    peak: PositiveNumber


class Decode(Section):
    method: choice(DECODERS)
    pairs: Bool
    flip_test: Bool = False
    size_calibration: choice(SIZE_CALIBRATIONS) = "none"
    contour: choice(CONTOUR_SOURCES, " (kind contour: the ellipse fitted to both the band and the "
                                     "landmarks, the band alone, or no fit)") = "both"
    refine_passes: Annotated[int, check(lambda v: v in (1, 2)),
                             Hint("must be 1 or 2 (a refinement's crops: around the coarse model's head, "
                                  "or once more around the refined one)")] = 1


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
                     check(lambda v: 0 < v[0] <= v[1]),
                     Hint("must be two numbers [low, high] with 0 < low <= high")]
    shift: Annotated[number(0, 0.5, lo_open=False, hi_open=True), Hint("must be a number >= 0 and < 0.5 "
                                                                        "(a fraction of the input size)")]
    hflip: Probability
    vflip: Probability
    contrast: number(0, 1, lo_open=False, hi_open=True)
    blur: Probability
    speckle: Probability
    edge_cut: Probability = 0.0      # probability of a shift that pushes one landmark to or past the edge


def loss_note() -> str:
    return f" (kind heatmap: {list(LOSSES.names(kinds='heatmap'))})"


class Train(Section):
    epochs: PositiveWhole
    batch_size: PositiveWhole
    lr: PositiveNumber
    schedule: choice(SCHEDULES)
    warmup_epochs: NonNegative
    weight_decay: NonNegative
    optimizer: choice(OPTIMIZERS)
    loss: Annotated[choice(LOSSES), Hint(lambda: f"choose one of {list(LOSSES.names())}{loss_note()}")]
    pair_invariant_loss: Bool
    heatmap_loss_weight: PositiveNumber
    foreground_weight: Annotated[number(1, lo_open=False), Hint("must be a number >= 1 (1 = plain MSE)")]
    pretrained: Annotated[str, Hint("must be a file path or '' (from scratch)")]
    head_init: choice(HEAD_INITS)
    precise_bn: Bool = False         # recompute BatchNorm statistics on the training frames before each validation
    init_from: Annotated[str, check(init_path_ok),
                         Hint(f"must be '' (from scratch) or a checkpoint of this project under {INIT_DIR}/, "
                              f"e.g. {INIT_DIR}/heatmap_synthetic.safetensors (the folder every train stage "
                              "depends on, so a new file there retrains)")] = ""
    augment: Augment
    seed: Annotated[NonNegativeWhole | None, Hint("must be a whole number >= 0, or null (the top-level seed)")] = None


def overrides(model: type[Section], name: str, extra: dict) -> type[Section]:
    """A section with every key of ``model`` optional (an override) plus the ``extra`` fields."""
    fields = {k: (f.rebuild_annotation(), None) for k, f in model.model_fields.items()}
    fields.update(extra)
    out = create_model(name, __base__=Section, **fields)
    out.overrides_only = True
    return out


AugmentOverrides = overrides(Augment, "AugmentOverrides", {})
ModelSection = overrides(Train, "ModelSection", {
    "arch": (choice(ARCHS), ...),
    "kind": (choice(KINDS), ...),
    "head_channels": (PositiveWhole, None),
    "head_skips": (Bool, None),
    "augment": (AugmentOverrides, None),
    "contour_weight": (NonNegative | None, None),
})


def model_rules(train: Train, own) -> list[tuple[str, Any, str]]:
    """The cross-key rules of one model section (merged with train): (key, value, hint)."""
    out = []
    loss = own.loss if "loss" in own.model_fields_set else train.loss
    if own.kind not in ARCHS.meta(own.arch).get("kinds", ()):
        out.append(("arch", own.arch, f"with kind {own.kind} choose one of {list(ARCHS.names(kinds=own.kind))} "
                                      f"(the {own.kind} model is only implemented for those)"))
    if own.contour_weight is not None and own.kind != "contour":
        out.append(("contour_weight", own.contour_weight, f"is for kind contour (the skull band's weight "
                                                          f"in the loss); remove it from this {own.kind} model"))
    losses = LOSSES.names(kinds=own.kind)
    if loss not in losses:
        source = "" if "loss" in own.model_fields_set else " (from train.loss: set loss in the model)"
        out.append(("loss", loss, f"for kind {own.kind} choose one of {list(losses)}{source}"))
    return out


class Device(Section):
    """Where training runs (docs/scaling.md); the defaults are the CPU path."""
    type: choice(DEVICE_TYPES) = "auto"
    amp: choice(AMP_MODES, " (fp16 needs CUDA; bf16 runs on CUDA and the CPU; auto: bf16 where native)") = "none"
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
    tta_rotations_deg: TtaRotations = Field(default_factory=lambda: [-8.0, 8.0])   # score tta: rotated passes
    tta_scales: TtaScales = Field(default_factory=lambda: [0.9, 1.1])              # score tta: zoomed passes

"""Constants, random streams and the check of the ``synthesize`` params section."""
from __future__ import annotations

import math

import numpy as np

from ..geometry import COORD_COLUMNS
from ..params import ParamError

FORMATS = ("dicom", "video", "png")
QUALITIES = ("good", "low_contrast", "blurred")
FAULT_KINDS = ("swapped_names", "point_off_skull", "outside_image")
US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
FRAME_RATE = 25  # cine frames per second (DICOM FrameTime, video rate)

# random streams: [seed, stream, index]
_STREAM_SUBJECT = 1
_STREAM_FORMATS = 2
_STREAM_FAULTS = 3

LANDMARK_COLUMNS = ("image_name", "frame") + COORD_COLUMNS
TRUTH_COLUMNS = ("image_name", "frame", "subject_id", "format", "cx", "cy", "semi_a", "semi_b",
                 "angle_deg", "skull_px", "spacing_mm", "bpd_mm", "ofd_mm", "ratio", "ga_weeks",
                 "quality", "label_fault") + COORD_COLUMNS

_REQUIRED_KEYS = ("subjects", "frames_per_subject", "width", "height", "formats", "ga_weeks",
                  "ratio", "head_fraction", "motion_px", "motion_deg", "poor_frame_rate",
                  "label_faults", "video_crf")


def subject_id(index: int) -> str:
    """``sub`` + 3 digits, 1-based: index 0 -> ``sub001``."""
    return f"sub{index + 1:03d}"


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, index])


def _pair(cfg: dict, key: str, lo_ok: float, hi_ok: float) -> tuple[float, float]:
    value = cfg.get(key)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; write two numbers "
                         "[low, high]")
    if not (lo_ok <= lo <= hi <= hi_ok):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; need {lo_ok} <= low <= high "
                         f"<= {hi_ok}")
    return lo, hi


def _number(cfg: dict, key: str, lo_ok: float, hi_ok: float) -> float:
    value = cfg.get(key)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; write a number")
    if not (lo_ok <= v <= hi_ok):
        raise ParamError(f"params.yaml: synthesize.{key} = {value!r}; need {lo_ok} <= value "
                         f"<= {hi_ok}")
    return v


def _check_counts(cfg: dict, out: dict) -> None:
    """``subjects`` and ``frames_per_subject`` (whole numbers), ``width`` and ``height`` (even)."""
    subjects = _number(cfg, "subjects", 1, 999)
    lo, hi = _pair(cfg, "frames_per_subject", 1, 1000)
    if subjects != int(subjects) or lo != int(lo) or hi != int(hi):
        raise ParamError("params.yaml: synthesize.subjects and frames_per_subject must be whole "
                         "numbers")
    out["subjects"] = int(subjects)
    out["frames_per_subject"] = (int(lo), int(hi))
    for key in ("width", "height"):
        v = _number(cfg, key, 32, 4096)
        if v != int(v) or int(v) % 2:
            raise ParamError(f"params.yaml: synthesize.{key} = {cfg[key]!r}; use an even whole "
                             "number (H.264 yuv420p video needs even frame sizes)")
        out[key] = int(v)


def _check_formats(formats) -> dict:
    """The ``formats`` mapping -> {format: share >= 0} with at least one positive share."""
    if not isinstance(formats, dict) or not formats:
        raise ParamError(f"params.yaml: synthesize.formats = {formats!r}; write a mapping like "
                         "{dicom: 0.7, video: 0.15, png: 0.15}")
    shares = {}
    for name, share in formats.items():
        if name not in FORMATS:
            raise ParamError(f"params.yaml: synthesize.formats has {name!r}; choose from "
                             f"{list(FORMATS)}")
        try:
            share = float(share)
        except (TypeError, ValueError):
            share = -1.0
        if not (math.isfinite(share) and share >= 0):
            raise ParamError(f"params.yaml: synthesize.formats.{name} = {formats[name]!r}; write a "
                             "share >= 0")
        shares[name] = share
    if sum(shares.values()) <= 0:
        raise ParamError("params.yaml: synthesize.formats shares are all 0; give at least one a "
                         "positive share")
    return shares


def check_config(cfg: dict) -> dict:
    """Validate the ``synthesize`` params section; return a copy with parsed numbers.

    Raises ``ParamError`` naming the key and the allowed values."""
    if not isinstance(cfg, dict):
        raise ParamError("params.yaml: section 'synthesize' must be a mapping")
    for key in _REQUIRED_KEYS:
        if key not in cfg:
            raise ParamError(f"params.yaml: missing key 'synthesize.{key}' (see README, section "
                             "Parameters)")
    out = dict(cfg)
    _check_counts(cfg, out)
    out["formats"] = _check_formats(cfg["formats"])
    out["ga_weeks"] = _pair(cfg, "ga_weeks", 12, 42)
    out["ratio"] = _pair(cfg, "ratio", 0.5, 1.0)
    out["head_fraction"] = _pair(cfg, "head_fraction", 0.1, 0.8)
    out["motion_px"] = _number(cfg, "motion_px", 0, 50)
    out["motion_deg"] = _number(cfg, "motion_deg", 0, 45)
    out["poor_frame_rate"] = _number(cfg, "poor_frame_rate", 0, 1)
    out["label_faults"] = _number(cfg, "label_faults", 0, 1)
    out["video_crf"] = int(_number(cfg, "video_crf", 0, 51))
    return out

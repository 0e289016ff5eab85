"""Constants, random streams and the ``synthesize`` params section as the generator uses it."""
from __future__ import annotations

import numpy as np

from fhbiometry.core.choices import FORMATS
from fhbiometry.core.geometry import COORD_COLUMNS

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


def subject_id(index: int) -> str:
    """``sub`` + 3 digits, 1-based: index 0 -> ``sub001``."""
    return f"sub{index + 1:03d}"


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, index])


def normalise_config(cfg: dict) -> dict:
    """The ``synthesize`` params section as the generator uses it: counts and sizes as ints,
    ranges as tuples, numbers and format shares as floats. No checks: ``params.load_params``
    validates the section against the schema (``schema.Synthesize``) before it gets here."""
    out = dict(cfg)
    out["subjects"] = int(cfg["subjects"])
    out["frames_per_subject"] = tuple(int(v) for v in cfg["frames_per_subject"])
    out["width"], out["height"] = int(cfg["width"]), int(cfg["height"])
    out["formats"] = {name: float(share) for name, share in cfg["formats"].items()}
    for key in ("ga_weeks", "ratio", "head_fraction"):
        out[key] = tuple(float(v) for v in cfg[key])
    for key in ("motion_px", "motion_deg", "poor_frame_rate", "label_faults"):
        out[key] = float(cfg[key])
    out["video_crf"] = int(cfg["video_crf"])
    return out

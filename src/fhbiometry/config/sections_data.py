"""The params sections of the data stages: synthesize, data, qc, split."""
from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, create_model, model_validator

from fhbiometry.config.fields import (AnnotationPattern, Bool, NonEmptyText, NonNegative, NonNegativeWhole,
                                      PositiveNumber, PositiveWhole, Probability, Section, SubjectPattern, Text,
                                      check, choice, number, pair, whole)
from fhbiometry.config.messages import Hint, problems
from fhbiometry.core.choices import FORMATS, SPLIT_METHODS, SPLITS

LABEL_SOURCES = ("csv", "ellipse")
BAD_INPUT_MODES = ("fail", "exclude")
UNMATCHED_SUBJECT_MODES = ("fail", "accept")
QC_POLICIES = ("keep", "exclude", "fail")
QC_NAMINGS = ("anatomical", "as_labelled")
QC_REFERENCES = ("", "ellipse")
LEAK_MODES = ("report", "fail")
SUBJECT_STATS = ("max", "median")
FRACTION_TOLERANCE = 1e-6


class FormatsRule(Section):
    """The shares of the synthetic file formats (one key per name of ``core.choices.FORMATS``)."""

    overrides_only: ClassVar[bool] = True

    @model_validator(mode="after")
    def _some_share(self):
        if not any(getattr(self, k) > 0 for k in FORMATS):
            raise problems(("", None, "give at least one format a share > 0"))
        return self


Formats = create_model("Formats", __base__=FormatsRule, **{name: (NonNegative, 0.0) for name in FORMATS})


EvenSize = Annotated[whole(32, 4096), check(lambda v: v % 2 == 0),
                     Hint("must be an even whole number from 32 to 4096 (H.264 video needs even frame sizes)")]


class Synthesize(Section):
    subjects: whole(1, 999)
    frames_per_subject: pair(1, 1000, integer=True)
    width: EvenSize
    height: EvenSize
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
            raise problems(("annotation_pattern", "", "must not be '' when data.label_source is 'ellipse'"))
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


class FractionsRule(Section):
    """The split shares (one key per name of ``core.choices.SPLITS``) sum to 1."""

    @model_validator(mode="after")
    def _sum_to_one(self):
        total = sum(getattr(self, name) for name in SPLITS)
        if abs(total - 1.0) > FRACTION_TOLERANCE:
            raise problems(("", None, f"{', '.join(SPLITS[:-1])} and {SPLITS[-1]} must sum to 1 "
                                      f"(they sum to {total:g})"))
        return self


Share = Annotated[PositiveNumber, Hint(f"must be a number > 0 ({', '.join(SPLITS[:-1])} and {SPLITS[-1]} "
                                       "sum to 1)")]
Fractions = create_model("Fractions", __base__=FractionsRule, **{name: (Share, ...) for name in SPLITS})
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

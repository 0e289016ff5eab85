"""The synthetic fetal head cine generator (stage `synthesize`, the embedded default data set).

Every subject is one fetal head seen through a convex probe: a sector (fan) field of view on
black with its apex above the top centre, an elliptical skull ring with a few gaps (dropout), a
midline echo with a cavum-like box, faint thalamus- and choroid-like blobs, maternal tissue and
amniotic fluid around the head, multiplicative Rayleigh speckle, depth attenuation and acoustic
shadowing distal to the bright skull.  The image is built on a polar (depth x beam angle) grid,
where speckle, attenuation and shadowing are natural, then log-compressed and scan-converted.

Geometry (``geometry.ellipse_landmarks``): the OUTER border of the skull ring is the ellipse
``(cx, cy, semi_a, semi_b, angle)`` with ``semi_a`` the major (OFD) semi-axis; OFD = the ends of
its major axis, BPD = the ends of its minor axis, exact to floating point.

Sizes: gestational age uniform in ``ga_weeks`` -> BPD from the inverted Hadlock (1982) formula
``GA = 9.54 + 1.482 BPD + 0.1676 BPD^2`` (BPD in cm) times a small biological variation;
BPD/OFD ratio uniform in ``ratio``; the OFD spans a fraction (uniform in ``head_fraction``) of
the frame height, which sets the pixel spacing (rounded to 6 decimals, the same value in every
file format and in truth.csv).

Randomness: every subject has its own stream (``SeedSequence([seed, 1, index])``: anatomy,
motion, quality, noise), so the format a subject is stored in, or the number of subjects after
it, never changes its images.  Format allocation and label faults have streams of their own.

Outputs (``generate``), byte-identical for identical parameters on any CPU (the
transcendental functions of the image model come from ``fpmath``, not from numpy's
CPU-dependent SIMD kernels):

* ``dicom/subNNN.dcm``: Ultrasound Multi-frame Image Storage, MONOCHROME2, 8 bit,
  PixelSpacing and SequenceOfUltrasoundRegions, PatientID = subject id, UIDs derived from the
  seed and subject id, no dates;
* ``video/subNNN.mp4`` (H.264, yuv420p, one encoder thread) + ``video/subNNN.json``
  ``{"pixel_spacing_mm": s, "subject_id": "subNNN"}``;
* ``stills/subNNN_HC.png``, ``subNNN_2HC.png``, ... + ``<stem>.json`` ``{"pixel_spacing_mm": s}``;
* ``landmarks.csv`` (one row per frame; a share ``label_faults`` of rows corrupted on purpose),
  ``truth.csv`` (exact ellipse, landmarks, sizes, quality and injected fault per frame),
  ``README.md``.

Modules: ``config`` (constants, random streams, params section as used), ``sampling`` (format
allocation, label faults), ``anatomy`` (fan, head, probe motion), ``render`` (polar-grid image
model), ``subject`` (one subject's cine), ``writers`` (DICOM, MP4, PNG, README), ``dataset``
(``generate``), ``fpmath`` (exp, log10, arctan2, Gaussian filter with the same bits on
every CPU).

Never imports: readers, data, codecs, models, training, inference, trust, metrics, evaluation,
measure, reporting, tools; torch.
"""
from .anatomy import Fan, Head, bpd_mm_from_ga, head_fits
from .config import (FAULT_KINDS, FORMATS, FRAME_RATE, LANDMARK_COLUMNS, QUALITIES,
                     TRUTH_COLUMNS, US_MULTIFRAME_SOP_CLASS, normalise_config, subject_id)
from .dataset import generate
from .render import render_frame
from .sampling import allocate_formats, choose_faults, corrupt_points
from .subject import Subject, make_subject
from .writers import X264_OPTIONS, still_names, write_dicom, write_still, write_subject, write_video

__all__ = [
    "FAULT_KINDS", "FORMATS", "FRAME_RATE", "LANDMARK_COLUMNS", "QUALITIES", "TRUTH_COLUMNS",
    "US_MULTIFRAME_SOP_CLASS", "X264_OPTIONS", "Fan", "Head", "Subject", "allocate_formats",
    "bpd_mm_from_ga", "choose_faults", "corrupt_points", "generate", "head_fits", "make_subject",
    "normalise_config", "render_frame", "still_names", "subject_id", "write_dicom", "write_still",
    "write_subject", "write_video",
]

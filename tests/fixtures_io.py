"""Helpers for the reader/label/extract tests: write tiny DICOM, video and image files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.readers.subjects import DEFAULT_SUBJECT_PATTERN

HC18 = Path(__file__).resolve().parents[2] / "shared/datasets/hc18-landmarks"


def hc18_csv_data() -> dict:
    """Params `data` for the HC18 landmark set read from its CSV (with the ellipse references)."""
    return {"raw_dir": str(HC18), "label_source": "csv",
            "landmarks_csv": "role_challenge_dataset_ground_truth.csv",
            "columns": {"image": "image_name", "frame": "", **{c: c for c in COORD_COLUMNS}},
            "annotation_pattern": "annotations/{stem}_Annotation.png", "pixel_size_csv": "pixel_size.csv",
            "pixel_size_columns": {"image": "filename", "spacing": "pixel size(mm)"},
            "default_spacing_mm": 0, "subject_pattern": DEFAULT_SUBJECT_PATTERN, "on_bad_input": "fail"}


def gradient(h: int = 24, w: int = 32, offset: int = 0) -> np.ndarray:
    """A smooth uint8 test pattern (distinct per ``offset``)."""
    y, x = np.mgrid[0:h, 0:w]
    return ((x * 4 + y * 3 + offset * 20) % 200 + 20).astype(np.uint8)


def write_dicom(path, frames, *, spacing=(0.2, 0.2), patient_id="", photometric="MONOCHROME2",
                bits: int = 8, multi_frame=None, regions=None, imager_spacing=None,
                pixel_data: bool = True, modality: str | None = "US", region_units: int = 3,
                number_of_frames=None) -> Path:
    """Write an uncompressed DICOM. ``frames``: (N, H, W) or (N, H, W, 3); ``multi_frame``
    defaults to N > 1 (NumberOfFrames is written then). ``regions`` = (dx_cm, dy_cm) in
    ``region_units`` (3 = cm) for one 2-D tissue region, or a list of attribute dicts, one per
    region (``ultrasound_region``); ``modality`` None leaves the tag out; ``number_of_frames``
    writes that NumberOfFrames whatever the data holds (all frames are written)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    frames = np.asarray(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # US multi-frame image
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if modality is not None:
        ds.Modality = modality
    if patient_id:
        ds.PatientID = patient_id
    if spacing is not None:
        ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    if imager_spacing is not None:
        ds.ImagerPixelSpacing = [float(imager_spacing[0]), float(imager_spacing[1])]
    if regions is not None:
        if isinstance(regions, tuple):  # one 2-D tissue region over the whole frame
            regions = [{"PhysicalDeltaX": float(regions[0]), "PhysicalDeltaY": float(regions[1]),
                        "PhysicalUnitsXDirection": region_units, "PhysicalUnitsYDirection": region_units}]
        ds.SequenceOfUltrasoundRegions = [ultrasound_region(r, frames.shape[1:3]) for r in regions]
    colour = frames.ndim == 4
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if number_of_frames is not None:
        ds.NumberOfFrames = number_of_frames
        data = frames
    elif multi_frame if multi_frame is not None else len(frames) > 1:
        ds.NumberOfFrames = len(frames)
        data = frames
    else:
        data = frames[0]
    if pixel_data:
        dtype = np.uint16 if bits == 16 else np.uint8
        ds.PixelData = np.ascontiguousarray(data.astype(dtype)).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def ultrasound_region(attrs: dict, shape):
    """One SequenceOfUltrasoundRegions item: 2-D tissue over the whole frame (``shape`` = (H, W)),
    cm units, with ``attrs`` set on top (a value None removes that attribute)."""
    from pydicom.dataset import Dataset

    base = {"RegionSpatialFormat": 1, "RegionDataType": 1, "RegionFlags": 0,
            "RegionLocationMinX0": 0, "RegionLocationMinY0": 0,
            "RegionLocationMaxX1": int(shape[1]) - 1, "RegionLocationMaxY1": int(shape[0]) - 1,
            "PhysicalUnitsXDirection": 3, "PhysicalUnitsYDirection": 3}
    region = Dataset()
    for key, value in {**base, **attrs}.items():
        if value is not None:
            setattr(region, key, value)
    return region


def write_video(path, frames, codec: str = "libx264", options=None) -> Path:
    """Write (N, H, W) uint8 gray frames as a video (lossless x264 by default)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames)
    options = {"crf": "0"} if options is None and codec == "libx264" else (options or {})
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10, options=options)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv444p" if codec == "libx264" else (
            "yuvj420p" if codec == "mjpeg" else "yuv420p")
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.stack([f] * 3, axis=-1), format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_image(path, arr) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr)).save(path)
    return path


def write_oriented(path, arr, orientation: int = 6) -> Path:
    """Save ``arr`` (PNG or JPEG by the suffix) with an EXIF orientation tag: viewers show it
    transposed (6: rotated 90 degrees clockwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.asarray(arr)).save(path, exif=exif)
    return path


def write_png_header(path, width: int, height: int) -> Path:
    """A valid, tiny PNG (under 100 bytes) whose header claims ``width`` x ``height`` grey pixels
    (a decompression-bomb shape: decoding it would need width * height bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def write_json(path, obj) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def draw_ellipse_outline(h, w, cx, cy, a, b, angle_rad) -> np.ndarray:
    """uint8 image (0/255) with the 1-px outline of an ellipse (semi-axis ``a`` along ``angle_rad``)."""
    t = np.linspace(0, 2 * np.pi, 8000, endpoint=False)
    u = np.array([np.cos(angle_rad), np.sin(angle_rad)])
    v = np.array([-u[1], u[0]])
    pts = (np.array([cx, cy])[:, None] + a * np.cos(t) * u[:, None] + b * np.sin(t) * v[:, None])
    xs, ys = np.rint(pts).astype(int)
    keep = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    img = np.zeros((h, w), dtype=np.uint8)
    img[ys[keep], xs[keep]] = 255
    return img


def data_params(raw_dir, **overrides) -> dict:
    """A params ``data`` section for tests (defaults as in params.yaml)."""
    data = {
        "raw_dir": str(raw_dir),
        "label_source": "csv",
        "landmarks_csv": "landmarks.csv",
        "columns": {"image": "image_name", "frame": "frame", **{c: c for c in COORD_COLUMNS}},
        "annotation_pattern": "annotations/{stem}_Annotation.png",
        "pixel_size_csv": "",
        "pixel_size_columns": {"image": "filename", "spacing": "pixel size(mm)"},
        "default_spacing_mm": 0,
        "subject_pattern": DEFAULT_SUBJECT_PATTERN,
        "on_bad_input": "fail",
        "on_unmatched_subject": "fail",
        "max_image_pixels": 50_000_000,
    }
    data.update(overrides)
    return data


def write_table(path, rows, header=("image_name", "frame") + COORD_COLUMNS) -> Path:
    """Write a landmark CSV from a list of row tuples (values written as given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path

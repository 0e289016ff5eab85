"""File writers: multi-frame ultrasound DICOM, H.264 MP4, PNG stills (with JSON sidecars) and
the data set's README; all byte-identical for identical inputs."""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from fhbiometry.core.store import write_json
from .config import FORMATS, FRAME_RATE, QUALITIES, US_MULTIFRAME_SOP_CLASS
from .subject import Subject


def _uid(seed: int, *parts) -> str:
    """A DICOM UID ``2.25.<UUID as integer>`` with a name-based UUID (version 5) of ``seed`` and
    ``parts``: the same inputs always give the same UID."""
    name = "/".join(["fhbiometry-synth", str(int(seed)), *(str(p) for p in parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, name).int}"


def _file_meta(sop_uid: str):
    from pydicom.dataset import FileMetaDataset  # lazy: pydicom only when a DICOM is written
    from pydicom.uid import ExplicitVRLittleEndian  # lazy: pydicom, as above

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.ImplementationClassUID = _uid(0, "implementation")
    meta.ImplementationVersionName = "FHBIOMETRY_1"
    return meta


def _set_identity(ds, sop_uid: str, patient_id: str, seed: int) -> None:
    """Modality, SOP class, UIDs, patient and series of the data set ``ds``."""
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = US_MULTIFRAME_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(seed, patient_id, "study")
    ds.SeriesInstanceUID = _uid(seed, patient_id, "series")
    ds.Modality = "US"
    ds.Manufacturer = "fhbiometry synthetic"
    ds.SeriesDescription = "synthetic fetal head cine"
    ds.PatientName = f"Synthetic^{patient_id}"
    ds.PatientID = patient_id
    ds.StudyID = "1"
    # Type 2 attributes of the US Multi-frame Image IOD (present, may be empty) left empty, so the
    # files stay the same bytes whenever and wherever they are written (no dates from the clock);
    # PatientOrientation (2C: no ImageOrientationPatient) empty; ImageLaterality "U" (unpaired: a
    # fetal head) in place of the series' Laterality, which is then not required (dciodvfy: no errors)
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName",
                    "AccessionNumber", "PatientOrientation"):
        setattr(ds, keyword, "")
    ds.ImageLaterality = "U"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1


def _set_image(ds, n: int, rows: int, cols: int, spacing_mm: float) -> None:
    """Pixel format, cine timing and PixelSpacing (mm) of the data set ``ds``."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = n
    ds.FrameTime = 1000.0 / FRAME_RATE
    ds.FrameIncrementPointer = 0x00181063  # (0018,1063) FrameTime
    ds.PixelSpacing = [float(spacing_mm), float(spacing_mm)]


def _ultrasound_region(rows: int, cols: int, spacing_mm: float):
    """The one SequenceOfUltrasoundRegions item: the whole frame, tissue, deltas in cm."""
    from pydicom.dataset import Dataset  # lazy: pydicom only when a DICOM is written

    region = Dataset()
    region.RegionSpatialFormat = 1          # 2-D
    region.RegionDataType = 1               # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0 = 0
    region.RegionLocationMinY0 = 0
    region.RegionLocationMaxX1 = cols - 1
    region.RegionLocationMaxY1 = rows - 1
    region.PhysicalUnitsXDirection = 3      # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = float(spacing_mm) / 10.0
    region.PhysicalDeltaY = float(spacing_mm) / 10.0
    return region


def write_dicom(path, frames: np.ndarray, spacing_mm: float, patient_id: str, seed: int) -> Path:
    """Multi-frame ultrasound DICOM (uncompressed, explicit VR little endian) with PixelSpacing
    (mm), SequenceOfUltrasoundRegions (cm) and UIDs derived from ``seed`` and ``patient_id``."""
    from pydicom.dataset import Dataset  # lazy: pydicom only when a DICOM is written

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, rows, cols = frames.shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sop_uid = _uid(seed, patient_id, "sop")
    ds = Dataset()
    ds.file_meta = _file_meta(sop_uid)
    _set_identity(ds, sop_uid, patient_id, seed)
    _set_image(ds, n, rows, cols, spacing_mm)
    ds.SequenceOfUltrasoundRegions = [_ultrasound_region(rows, cols, spacing_mm)]
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# x264 with macroblock-tree rate control wrote different bytes for the same frames in different
# processes (PyAV 18, x264 core 165, even with one thread); with mbtree=0 the bytes are stable.
X264_OPTIONS = {"threads": "1", "x264-params": "mbtree=0"}


def write_video(path, frames: np.ndarray, crf: int) -> Path:
    """H.264 (libx264, yuv420p, ``crf``, ``X264_OPTIONS``) MP4 of (N, H, W) uint8 gray frames,
    byte-identical for identical frames."""
    import av  # lazy: PyAV only when a video is written

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FRAME_RATE,
                                options={"crf": str(int(crf)), **X264_OPTIONS})
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for f in frames:
            vf = av.VideoFrame.from_ndarray(f, format="gray").reformat(format="yuv420p")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_still(path, frame: np.ndarray) -> Path:
    """8-bit grayscale PNG (Pillow writes no timestamp or software chunk)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(path, format="PNG")
    return path


def still_names(sid: str, n: int) -> list[str]:
    """HC18-like names: ``sid_HC.png``, ``sid_2HC.png``, ``sid_3HC.png``, ..."""
    return [f"{sid}_HC.png" if k == 0 else f"{sid}_{k + 1}HC.png" for k in range(n)]


def write_subject(out_dir, subject: Subject, fmt: str, crf: int, seed: int) -> list[tuple]:
    """Write one subject's file(s) in format ``fmt``; return (image_name, frame index) per frame."""
    out_dir = Path(out_dir)
    sid, s = subject.subject_id, subject.head.spacing_mm
    n = len(subject.frames)
    if fmt == "dicom":
        write_dicom(out_dir / "dicom" / f"{sid}.dcm", subject.frames, s, sid, seed)
        return [(f"{sid}.dcm", k) for k in range(n)]
    if fmt == "video":
        write_video(out_dir / "video" / f"{sid}.mp4", subject.frames, crf)
        write_json(out_dir / "video" / f"{sid}.json", {"pixel_spacing_mm": s, "subject_id": sid})
        return [(f"{sid}.mp4", k) for k in range(n)]
    if fmt == "png":
        names = still_names(sid, n)
        for name, frame in zip(names, subject.frames):
            write_still(out_dir / "stills" / name, frame)
            write_json(out_dir / "stills" / f"{Path(name).stem}.json", {"pixel_spacing_mm": s})
        return [(name, 0) for name in names]
    raise ValueError(f"unknown file format {fmt!r}; one of {list(FORMATS)}")


def _readme(cfg: dict, seed: int, summary: dict) -> str:
    counts, faults, quality = summary["subjects"], summary["label_faults"], summary["qualities"]
    return "\n".join([
        "# Synthetic fetal head ultrasound (generated; do not edit)",
        "",
        "Written by `python stages/synthesize.py` (`fhbiometry.synth`) from params.yaml "
        f"(seed {seed}, section `synthesize`); the same params give byte-identical files.",
        "",
        f"- {sum(counts.values())} subjects, {summary['frames']} frames of "
        f"{cfg['width']}x{cfg['height']} px (cine of {cfg['frames_per_subject'][0]} to "
        f"{cfg['frames_per_subject'][1]} frames per subject)",
        f"- {counts.get('dicom', 0)} subjects as multi-frame ultrasound DICOM (`dicom/subNNN.dcm`, "
        f"PixelSpacing, PatientID), {counts.get('video', 0)} as H.264 MP4 with a JSON sidecar "
        f"(`video/`), {counts.get('png', 0)} as PNG stills with JSON sidecars (`stills/`, "
        "HC18-like names `subNNN_HC.png`, `subNNN_2HC.png`, ...)",
        f"- gestational age {cfg['ga_weeks'][0]:g} to {cfg['ga_weeks'][1]:g} weeks (BPD from the "
        f"inverted Hadlock formula), BPD/OFD {cfg['ratio'][0]:g} to {cfg['ratio'][1]:g}, OFD "
        f"{cfg['head_fraction'][0]:g} to {cfg['head_fraction'][1]:g} of the frame height",
        "- frame quality: " + ", ".join(f"{quality[q]} {q}" for q in QUALITIES),
        f"- label faults injected into landmarks.csv on purpose: {sum(faults.values())} ("
        + ", ".join(f"{v} {k}" for k, v in faults.items()) + ")",
        "",
        "Files:",
        "",
        "- `landmarks.csv`: one row per frame: `image_name` (file name), `frame` (0-based index "
        "in the file, 0 for stills), `ofd_1_x ... bpd_2_y` in pixels (x right, y down, pixel "
        "centres at integers). OFD = major axis ends of the outer skull ellipse, BPD = minor "
        "axis ends, in canonical order.",
        "- `truth.csv`: per frame the exact outer skull ellipse (`cx, cy, semi_a, semi_b` px, "
        "`angle_deg` of the major axis from +x), skull thickness `skull_px`, `spacing_mm`, "
        "`bpd_mm`, `ofd_mm`, `ga_weeks`, `quality` and `label_fault` (empty = the landmarks.csv "
        "row is exact), and the exact landmarks. For tests and QC evaluation; the pipeline reads "
        "landmarks.csv.",
        "",
    ])

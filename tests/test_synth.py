"""The synthetic data set generator (fhbiometry.synth) and the `synthesize` stage."""
from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from fhbiometry import synth
from fhbiometry.core.geometry import COORD_COLUMNS, diameters, ellipse_landmarks
from fhbiometry.config.params import ParamError

REPO = Path(__file__).resolve().parents[1]
SEED = 7


def tiny_cfg(**overrides) -> dict:
    """A fast profile: 4 subjects (2 DICOM, 1 video, 1 PNG), 2-3 frames of 160x128."""
    cfg = {
        "subjects": 4,
        "frames_per_subject": [2, 3],
        "width": 160,
        "height": 128,
        "formats": {"dicom": 0.34, "video": 0.33, "png": 0.33},
        "ga_weeks": [14, 40],
        "ratio": [0.70, 0.90],
        "head_fraction": [0.45, 0.75],
        "motion_px": 3.0,
        "motion_deg": 2.0,
        "poor_frame_rate": 0.25,
        "label_faults": 0.3,
        "video_crf": 18,
    }
    cfg.update(overrides)
    return cfg


def read_tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = pd.read_csv(root / "landmarks.csv")
    truth = pd.read_csv(root / "truth.csv", keep_default_na=False)
    return labels, truth


def folder_of(image_name: str) -> str:
    return {".dcm": "dicom", ".mp4": "video", ".png": "stills"}[Path(image_name).suffix]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    summary = synth.generate(root, tiny_cfg(), seed=SEED, progress=False)
    return root, summary


def all_files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ----------------------------------------------------------------------------- determinism

@pytest.mark.slow
def test_two_runs_give_identical_bytes(dataset, tmp_path):
    """The second run is another process: x264 with mbtree differed only across processes."""
    root, _ = dataset
    code = ("import json, sys; from fhbiometry import synth; synth.generate(sys.argv[1], "
            "json.loads(sys.argv[2]), seed=int(sys.argv[3]), progress=False)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path), json.dumps(tiny_cfg()), str(SEED)],
                   check=True, timeout=120)
    first, second = all_files(root), all_files(tmp_path)
    assert sorted(first) == sorted(second)
    changed = [name for name in first if first[name] != second[name]]
    assert changed == []


@pytest.mark.slow
def test_video_bytes_are_stable_across_processes(tmp_path):
    """A full-size cine encoded in two processes (x264's mbtree made these differ, see
    synth.X264_OPTIONS; tiny videos do not show it)."""
    code = ("import sys; from fhbiometry import synth; "
            "cfg = dict(subjects=21, frames_per_subject=[7, 7], width=320, height=256, "
            "formats={'video': 1}, ga_weeks=[14, 40], ratio=[0.7, 0.9], "
            "head_fraction=[0.45, 0.75], "
            "motion_px=3.0, motion_deg=2.0, poor_frame_rate=0.25, label_faults=0, video_crf=18); "
            "synth.write_video(sys.argv[1], synth.make_subject(20, cfg, 42).frames, 18)")
    paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for path in paths:
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_another_seed_gives_other_images(dataset, tmp_path):
    root, _ = dataset
    synth.generate(tmp_path, tiny_cfg(), seed=SEED + 1, progress=False)
    assert (root / "landmarks.csv").read_bytes() != (tmp_path / "landmarks.csv").read_bytes()


def test_subject_does_not_depend_on_format_or_subject_count():
    a = synth.make_subject(2, tiny_cfg(), SEED)
    b = synth.make_subject(2, tiny_cfg(subjects=9, formats={"png": 1.0}), SEED)
    assert np.array_equal(a.frames, b.frames)
    assert a.poses == b.poses


# ----------------------------------------------------------------------------- layout

def test_files_and_names(dataset):
    root, summary = dataset
    labels, truth = read_tables(root)
    assert summary["subjects"] == {"dicom": 2, "video": 1, "png": 1}
    assert list(labels.columns) == ["image_name", "frame", *COORD_COLUMNS]
    assert len(labels) == len(truth) == summary["frames"]
    assert list(labels["image_name"]) == list(truth["image_name"])
    for name in labels["image_name"].unique():
        assert (root / folder_of(name) / name).is_file(), name
    assert all(re.fullmatch(r"sub\d{3}", s) for s in truth["subject_id"])
    stills = truth[truth["format"] == "png"]
    sid = stills["subject_id"].iloc[0]
    expected = synth.still_names(sid, len(stills))
    assert list(stills["image_name"]) == expected
    assert expected[:2] == [f"{sid}_HC.png", f"{sid}_2HC.png"]
    assert (stills["frame"] == 0).all()
    for name, spacing in zip(stills["image_name"], stills["spacing_mm"]):
        side = json.loads((root / "stills" / (Path(name).stem + ".json")).read_text())
        assert side == {"pixel_spacing_mm": pytest.approx(spacing, abs=1e-9)}
    video = truth[truth["format"] == "video"]
    sid = video["subject_id"].iloc[0]
    side = json.loads((root / "video" / f"{sid}.json").read_text())
    assert side == {"pixel_spacing_mm": pytest.approx(video["spacing_mm"].iloc[0]),
                    "subject_id": sid}
    assert list(video["frame"]) == list(range(len(video)))
    readme = (root / "README.md").read_text()
    assert f"{summary['frames']} frames" in readme
    assert "landmarks.csv" in readme


def test_dicom_is_a_multiframe_ultrasound_with_spacing(dataset):
    import pydicom

    root, _ = dataset
    _, truth = read_tables(root)
    dicom = truth[truth["format"] == "dicom"]
    assert dicom["subject_id"].nunique() == 2
    for sid, rows in dicom.groupby("subject_id"):
        ds = pydicom.dcmread(root / "dicom" / f"{sid}.dcm")
        assert ds.SOPClassUID == synth.US_MULTIFRAME_SOP_CLASS
        assert ds.file_meta.MediaStorageSOPClassUID == synth.US_MULTIFRAME_SOP_CLASS
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert ds.BitsAllocated == 8
        assert int(ds.NumberOfFrames) == len(rows)
        assert ds.PatientID == sid
        spacing = rows["spacing_mm"].iloc[0]
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([spacing, spacing], abs=1e-9)
        region = ds.SequenceOfUltrasoundRegions[0]
        assert region.PhysicalUnitsXDirection == 3
        assert region.PhysicalDeltaX * 10 == pytest.approx(spacing)
        assert ds.SOPInstanceUID.startswith("2.25.")
        assert len(ds.SOPInstanceUID) <= 64
        assert ds.pixel_array.shape == (len(rows), 128, 160)
        # no clock in the files (byte-identical reruns): the Type 2 dates are present and empty
        assert ds.StudyDate == ""
        assert ds.StudyTime == ""
        assert "ContentDate" not in ds


def test_video_decodes_to_the_rendered_frames(dataset):
    import av

    root, _ = dataset
    _, truth = read_tables(root)
    rows = truth[truth["format"] == "video"]
    sid = rows["subject_id"].iloc[0]
    with av.open(str(root / "video" / f"{sid}.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = np.stack([f.to_ndarray(format="gray") for f in container.decode(stream)])
    assert frames.shape == (len(rows), 128, 160)
    original = synth.make_subject(int(sid[3:]) - 1, tiny_cfg(), SEED).frames
    assert np.abs(frames.astype(float) - original).mean() < 6.0


def test_png_stills_are_lossless_grayscale(dataset):
    root, _ = dataset
    _, truth = read_tables(root)
    rows = truth[truth["format"] == "png"]
    original = synth.make_subject(int(rows["subject_id"].iloc[0][3:]) - 1, tiny_cfg(), SEED).frames
    for k, name in enumerate(rows["image_name"]):
        with Image.open(root / "stills" / name) as im:
            assert im.mode == "L"
            assert np.array_equal(np.asarray(im), original[k])


# ----------------------------------------------------------------------------- geometry

def test_truth_landmarks_are_the_ellipse_axes(dataset):
    root, _ = dataset
    labels, truth = read_tables(root)
    for _, row in truth.iterrows():
        exact = ellipse_landmarks(row.cx, row.cy, row.semi_a, row.semi_b, np.radians(row.angle_deg))
        assert row[list(COORD_COLUMNS)].to_numpy(float) == pytest.approx(exact.ravel(), abs=1e-5)
        ofd, bpd = diameters(exact)
        assert ofd > bpd
        assert ofd * row.spacing_mm == pytest.approx(row.ofd_mm, rel=1e-5)
        assert bpd * row.spacing_mm == pytest.approx(row.bpd_mm, rel=1e-5)
        assert (exact[:, 0] >= 0).all()
        assert (exact[:, 0] <= 159).all()
        assert (exact[:, 1] >= 0).all()
        assert (exact[:, 1] <= 127).all()
    clean = truth["label_fault"] == ""
    assert labels.loc[clean, list(COORD_COLUMNS)].to_numpy() == pytest.approx(
        truth.loc[clean, list(COORD_COLUMNS)].to_numpy(float), abs=0.006)


def _skull_contrast(frame: np.ndarray, points: np.ndarray, pose, head) -> float:
    """Darkest landmark window (just inside the ring) over the median brightness of the
    central half of the head."""
    img = frame.astype(float)
    cx, cy, angle = pose
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    centre = np.median(img[np.hypot(u / head.semi_a, v / head.semi_b) < 0.5])
    windows = []
    for p in points:
        inward = (np.array([cx, cy]) - p) / np.linalg.norm(np.array([cx, cy]) - p)
        x, y = np.rint(p + inward * head.skull_px / 2).astype(int)
        windows.append(img[y - 2:y + 3, x - 2:x + 3].mean())
    return min(windows) / max(centre, 1.0)


def test_landmarks_lie_on_the_bright_skull_ring():
    seen = 0
    for index in range(4):
        subject = synth.make_subject(index, tiny_cfg(poor_frame_rate=0.0), SEED)
        for k in range(len(subject.frames)):
            ratio = _skull_contrast(subject.frames[k], subject.landmarks(k), subject.poses[k],
                                    subject.head)
            assert ratio > 1.2, (subject.subject_id, k, ratio)
            seen += 1
    assert seen >= 8


def test_head_is_inside_the_fan_and_the_fan_is_black_outside():
    subject = synth.make_subject(0, tiny_cfg(poor_frame_rate=0.0), SEED)
    frame = subject.frames[0]
    assert frame[0, 0] == 0
    assert frame[0, -1] == 0            # top corners: outside the sector
    mid = frame.shape[1] // 2
    assert frame[-8:-3, mid - 10:mid + 10].max() > 0          # deep on the beam axis: inside
    assert frame[0:3, mid - 10:mid + 10].max() == 0           # above the near-field arc


def test_sizes_and_ratios_respect_the_ranges():
    cfg = tiny_cfg(subjects=12, frames_per_subject=[1, 1], ga_weeks=[20, 30], ratio=[0.75, 0.8],
                   head_fraction=[0.5, 0.6])
    lo, hi = synth.bpd_mm_from_ga(20) * 0.95, synth.bpd_mm_from_ga(30) * 1.05
    for index in range(cfg["subjects"]):
        subject = synth.make_subject(index, cfg, SEED)
        h = subject.head
        assert 20 <= h.ga_weeks <= 30
        assert lo <= h.bpd_mm <= hi
        assert 0.75 - 1e-6 <= h.ratio <= 0.8 + 1e-6
        assert 0.5 - 1e-4 <= 2 * h.semi_a / cfg["height"] <= 0.6 + 1e-4
        assert h.spacing_mm == round(h.spacing_mm, 6)


def test_bpd_growth_curve():
    ga = np.arange(14, 41)
    bpd = synth.bpd_mm_from_ga(ga)
    assert np.all(np.diff(bpd) > 0)
    assert 22 <= bpd[0] <= 27
    assert 93 <= bpd[-1] <= 100


def test_frames_per_subject_and_motion():
    cfg = tiny_cfg(frames_per_subject=[3, 5], motion_px=2.0, motion_deg=1.0)
    lengths = set()
    for index in range(6):
        subject = synth.make_subject(index, cfg, SEED)
        lengths.add(len(subject.frames))
        assert 3 <= len(subject.frames) <= 5
        centres = np.array([p[:2] for p in subject.poses])
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        assert steps.max() < 15.0
    assert len(lengths) > 1
    still = synth.make_subject(0, tiny_cfg(motion_px=0.0, motion_deg=0.0), SEED)
    assert len(set(still.poses)) == 1


def test_poor_frame_rate_sets_the_quality():
    assert set(synth.make_subject(1, tiny_cfg(poor_frame_rate=0.0), SEED).qualities) == {"good"}
    poor = synth.make_subject(1, tiny_cfg(poor_frame_rate=1.0), SEED).qualities
    assert set(poor) <= {"low_contrast", "blurred"}


def test_low_contrast_and_blur_change_the_image():
    cfg = tiny_cfg(poor_frame_rate=0.0)
    subject = synth.make_subject(0, cfg, SEED)
    grid = synth.render._polar_grid(synth.Fan(79.5, -16.0, 21.0, 142.0, 0.7), 160, 128)
    background = synth.render._background(grid, np.random.default_rng(0))
    look = {"shadow": 0.6, "atten": 0.6, "ref": 1.1, "range_db": 44.0, "fluid_level": 0.02,
            "haze": 0.3, "contrast": 0.4, "blur": 2.0}
    pose = subject.poses[0]
    imgs = {q: synth.render_frame(grid, background, subject.head, pose, 1.0, q, look,
                                  np.random.default_rng(1)) for q in synth.QUALITIES}
    fan = grid.inside
    std = {q: imgs[q][fan].astype(float).std() for q in imgs}
    assert std["low_contrast"] < 0.6 * std["good"]
    sharp = np.abs(np.diff(imgs["good"].astype(float), axis=1))[fan[:, 1:]].mean()
    soft = np.abs(np.diff(imgs["blurred"].astype(float), axis=1))[fan[:, 1:]].mean()
    assert soft < 0.6 * sharp


# ----------------------------------------------------------------------------- label faults

def test_label_faults_at_the_given_rate(dataset):
    root, summary = dataset
    labels, truth = read_tables(root)
    faulty = truth["label_fault"] != ""
    assert faulty.sum() == round(0.3 * len(truth)) == sum(summary["label_faults"].values())
    assert set(truth.loc[faulty, "label_fault"]) <= set(synth.FAULT_KINDS)
    for j in np.flatnonzero(faulty):
        kind = truth["label_fault"].iloc[j]
        exact = truth.iloc[j][list(COORD_COLUMNS)].to_numpy(float).reshape(4, 2)
        given = labels.iloc[j][list(COORD_COLUMNS)].to_numpy(float).reshape(4, 2)
        moved = np.linalg.norm(given - exact, axis=1) > 0.01
        if kind == "swapped_names":
            assert given == pytest.approx(exact[[2, 3, 0, 1]], abs=0.006)
        elif kind == "point_off_skull":
            assert moved.sum() == 1
            assert (given >= 0).all()
            assert (given[:, 0] <= 159).all()
            assert (given[:, 1] <= 127).all()
            assert np.linalg.norm(given[moved] - exact[moved]) > 10
        else:
            assert moved.sum() == 1
            p = given[moved][0]
            assert p[0] < 0 or p[0] > 159 or p[1] < 0 or p[1] > 127


def test_choose_faults_is_exact_and_uses_every_kind():
    faults = synth.choose_faults(200, 0.06, seed=3)
    assert len(faults) == 12
    assert all(0 <= j < 200 for j in faults)
    kinds = list(faults.values())
    assert {kinds.count(k) for k in synth.FAULT_KINDS} == {4}
    assert faults == synth.choose_faults(200, 0.06, seed=3)
    assert synth.choose_faults(200, 0.0, seed=3) == {}


def test_corrupt_points_kinds():
    exact = ellipse_landmarks(80, 60, 40, 30, 0.3)
    rng = np.random.default_rng(0)
    assert synth.corrupt_points(exact, "swapped_names", 160, 128, rng) == pytest.approx(
        exact[[2, 3, 0, 1]])
    off = synth.corrupt_points(exact, "outside_image", 160, 128, rng)
    assert ((off[:, 0] < 0) | (off[:, 0] > 159) | (off[:, 1] < 0) | (off[:, 1] > 127)).sum() == 1
    with pytest.raises(ValueError, match="unknown label fault"):
        synth.corrupt_points(exact, "nonsense", 160, 128, rng)


# ----------------------------------------------------------------------------- params

def test_format_allocation():
    formats = synth.allocate_formats(60, {"dicom": 0.7, "video": 0.15, "png": 0.15}, seed=42)
    assert [formats.count(f) for f in synth.FORMATS] == [42, 9, 9]
    assert formats == synth.allocate_formats(60, {"dicom": 0.7, "video": 0.15, "png": 0.15}, 42)
    assert synth.allocate_formats(5, {"png": 1.0}, seed=1) == ["png"] * 5


def test_head_too_large_for_the_fan_is_reported():
    # valid params (the schema checks each range) that cannot be drawn: a runtime error naming them
    with pytest.raises(ValueError, match="synthesize.head_fraction") as info:
        synth.make_subject(0, tiny_cfg(head_fraction=[0.8, 0.8], ratio=[0.95, 0.95],
                                       width=64, height=128), SEED)
    assert not isinstance(info.value, ParamError)


# ----------------------------------------------------------------------------- stage

def test_stage_replaces_the_output_folder(tmp_path, monkeypatch):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synthesize"].update(tiny_cfg(subjects=2, frames_per_subject=[1, 2]))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stale = tmp_path / "data/raw/synthetic/dicom/sub099.dcm"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(REPO / "stages/synthesize.py"), run_name="__main__")
    out = tmp_path / "data/raw/synthetic"
    assert not stale.exists()
    assert (out / "landmarks.csv").is_file()
    assert (out / "truth.csv").is_file()
    assert (out / "README.md").is_file()

"""A small data set in HC18's own layout, drawn here, for the tests that must run where the real
HC18 frames are not (CI): ``images/NNN_HC.png`` (and ``NNN_2HC.png`` for a second frame of the
same subject), ``annotations/<stem>_Annotation.png`` (the head's ellipse outline on black), the
challenge's landmark CSV and ``pixel_size.csv`` with each frame's pixel size and head circumference.

Subject s has a head that grows with s (as HC18's heads grow with gestational age), so a split by
head size has a real smaller/larger boundary. The frames are plain: a bright skull ring over
speckle, enough for the pipeline to run, not to learn anything about ultrasound.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fhbiometry.core.geometry import ellipse_landmarks, ellipse_perimeter

WIDTH, HEIGHT = 200, 136           # HC18's 800 x 540 at a quarter


def ellipse_mask(shape, cx, cy, a, b, angle, inner: float, outer: float) -> np.ndarray:
    """Pixels whose normalised ellipse radius is in [inner, outer]."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * c + (yy - cy) * s) / a
    v = (-(xx - cx) * s + (yy - cy) * c) / b
    r = np.sqrt(u * u + v * v)
    return (r >= inner) & (r <= outer)


def outline(shape, cx, cy, a, b, angle) -> np.ndarray:
    """A one-pixel closed outline of the ellipse, as HC18's annotations draw it."""
    t = np.linspace(0.0, 2 * np.pi, 4000, endpoint=False)
    c, s = np.cos(angle), np.sin(angle)
    x = cx + a * np.cos(t) * c - b * np.sin(t) * s
    y = cy + a * np.cos(t) * s + b * np.sin(t) * c
    img = np.zeros(shape, np.uint8)
    xi, yi = np.rint(x).astype(int), np.rint(y).astype(int)
    keep = (xi >= 0) & (xi < shape[1]) & (yi >= 0) & (yi < shape[0])
    img[yi[keep], xi[keep]] = 255
    return img


def hc18_like(dst: Path, n_subjects: int = 12, seed: int = 0) -> int:
    """Write the data set to ``dst``; returns the number of frames. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    (dst / "images").mkdir(parents=True)
    (dst / "annotations").mkdir()
    landmarks, sizes = [], []
    for s in range(n_subjects):
        spacing = 0.6                                    # mm per pixel at this quarter size
        semi = 22.0 + 30.0 * s / max(1, n_subjects - 1)  # the head grows with the subject number
        for k, suffix in enumerate(["_", "_2"][: 1 + (s % 2)]):
            name = f"{s:03d}{suffix}HC.png"
            a = semi * rng.uniform(0.995, 1.005)           # frames of a subject: nearly one size
            b = a * rng.uniform(0.72, 0.85)
            angle = rng.uniform(-0.6, 0.6)
            cx = WIDTH / 2 + rng.uniform(-15, 15)
            cy = HEIGHT / 2 + rng.uniform(-8, 8)
            img = rng.normal(40, 12, (HEIGHT, WIDTH))
            img[ellipse_mask(img.shape, cx, cy, a, b, angle, 0.0, 0.94)] += 25
            img[ellipse_mask(img.shape, cx, cy, a, b, angle, 0.94, 1.06)] += 150
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(dst / "images" / name)
            Image.fromarray(outline(img.shape, cx, cy, a, b, angle)).save(
                dst / "annotations" / name.replace(".png", "_Annotation.png"))
            pts = np.rint(ellipse_landmarks(cx, cy, a, b, angle)).astype(int)   # OFD 1, 2, BPD 1, 2
            landmarks.append({"image_name": name,
                              "ofd_1_x": pts[0, 0], "ofd_1_y": pts[0, 1], "ofd_2_x": pts[1, 0],
                              "ofd_2_y": pts[1, 1], "bpd_1_x": pts[2, 0], "bpd_1_y": pts[2, 1],
                              "bpd_2_x": pts[3, 0], "bpd_2_y": pts[3, 1]})
            sizes.append({"filename": name, "pixel size(mm)": spacing,
                          "head circumference (mm)": round(float(ellipse_perimeter(a, b)) * spacing, 2)})
    pd.DataFrame(landmarks).to_csv(dst / "role_challenge_dataset_ground_truth.csv", index=False)
    pd.DataFrame(sizes).to_csv(dst / "pixel_size.csv", index=False)
    return len(sizes)

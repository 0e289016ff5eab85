"""Overlays: a measured frame at its original resolution with the landmarks, both diameters,
the ellipse and the numbers, as a PNG."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.measure.intervals import with_interval

OVERLAY_MODES = ("best", "all", "none")
MAX_STEM = 120        # characters of the source name kept in an overlay's file name


def ellipse_outline(points, n: int = 96) -> np.ndarray:
    """(n, 2) points of the ellipse with the OFD and BPD as axes, centred between the midpoints."""
    p = np.asarray(points, np.float64)
    centre = 0.5 * (p[:2].mean(0) + p[2:].mean(0))
    u = p[1] - p[0]
    a, b = np.linalg.norm(u) / 2.0, np.linalg.norm(p[3] - p[2]) / 2.0
    u = u / max(2.0 * a, 1e-9)
    v = np.array([-u[1], u[0]])
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)[:, None]
    return centre + a * np.cos(t) * u + b * np.sin(t) * v


def overlay_text(row) -> str:
    """Two lines: the diameters, then HC (each with its interval), cephalic index and confidence; a third, for a
    rejected frame, says so and why."""
    if np.isfinite(row["bpd_mm"]):
        text = (f"BPD {with_interval(row, 'bpd', 'mm')}  OFD {with_interval(row, 'ofd', 'mm')}\n"
                f"HC {with_interval(row, 'hc', 'mm')}  CI {row['cephalic_index']:.0f}  conf {row['confidence']:.2f}")
    else:
        text = (f"BPD {with_interval(row, 'bpd', 'px')}  OFD {with_interval(row, 'ofd', 'px')}\n"
                f"(no spacing)  CI {row['cephalic_index']:.0f}  conf {row['confidence']:.2f}")
    if not row["accepted"]:
        text += f"\nREJECTED: {row.get('reject_reason', '')}"
    return text


def draw_overlay(image: np.ndarray, row, path) -> Path:
    """The frame at its original resolution with the landmarks, both diameters, the ellipse and
    the numbers, as a PNG (no metadata, so the same inputs give the same bytes)."""
    p = row[list(COORD_COLUMNS)].to_numpy(np.float64).reshape(4, 2)
    im = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(im)
    colour = (0, 230, 118) if row["accepted"] else (255, 145, 0)
    if np.isfinite(p).all():
        draw.line([tuple(q) for q in np.vstack([ellipse_outline(p), ellipse_outline(p)[:1]])],
                  fill=(0, 176, 255), width=1)
        draw.line([tuple(p[0]), tuple(p[1])], fill=colour, width=2)
        draw.line([tuple(p[2]), tuple(p[3])], fill=colour, width=2)
        for x, y in p:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(255, 23, 68), width=2)
    text = overlay_text(row)
    draw.rectangle(draw.multiline_textbbox((4, 4), text), fill=(0, 0, 0))
    draw.multiline_text((4, 4), text, fill=(255, 255, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG")
    return path


def overlay_name(row) -> str:
    """``<source file, unsafe characters as _>_f<frame>.png``; a name longer than
    ``MAX_STEM`` characters is cut and ends with a stable hash of the whole source path, so that
    it fits every file system (255 bytes) and stays unique."""
    source = str(row["source_file"])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source)
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
        stem = f"{stem[:MAX_STEM - 13]}_{digest}"
    return f"{stem}_f{int(row['frame_index']):04d}.png"

"""The report page's images, each as a ``data:image/png;base64,...`` URI (the page needs no file
beside it): a frame with its landmarks at its original resolution, thumbnails, and the per-frame
BPD / OFD plot (matplotlib, its object API: no pyplot state, no display)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from fhbiometry.core.geometry import COORD_COLUMNS

ACCEPTED, REJECTED = (0, 230, 118), (255, 145, 0)
THUMB_HEIGHT = 72


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def ellipse_points(p: np.ndarray, n: int = 72) -> list[tuple]:
    """Points of the ellipse whose axes are the OFD (p[0]-p[1]) and the BPD (p[2]-p[3])."""
    centre = 0.5 * (p[:2].mean(0) + p[2:].mean(0))
    u = p[1] - p[0]
    a, b = np.linalg.norm(u) / 2.0, np.linalg.norm(p[3] - p[2]) / 2.0
    u = u / max(2.0 * a, 1e-9)
    v = np.array([-u[1], u[0]])
    t = np.linspace(0.0, 2.0 * np.pi, n + 1)[:, None]
    return [tuple(q) for q in centre + a * np.cos(t) * u + b * np.sin(t) * v]


def annotated(frame: np.ndarray, row, width: int = 2):
    """The frame (RGB, original size) with the four landmarks, both diameters and the ellipse;
    green where the frame was accepted, orange where rejected."""
    im = Image.fromarray(np.asarray(frame, np.uint8)).convert("RGB")
    p = np.asarray([row[c] for c in COORD_COLUMNS], np.float64).reshape(4, 2)
    if np.isfinite(p).all():
        draw = ImageDraw.Draw(im)
        colour = ACCEPTED if bool(row["accepted"]) else REJECTED
        draw.line(ellipse_points(p), fill=(0, 176, 255), width=1)
        draw.line([tuple(p[0]), tuple(p[1])], fill=colour, width=width)
        draw.line([tuple(p[2]), tuple(p[3])], fill=colour, width=width)
        for x, y in p:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(255, 23, 68), width=width)
    return im


def overlay_uri(frame: np.ndarray, row) -> str:
    """The annotated frame at its original resolution."""
    return data_uri(png_bytes(annotated(frame, row)))


def thumbnail_uri(frame: np.ndarray, row, height: int = THUMB_HEIGHT) -> str:

    im = annotated(frame, row, width=1)
    w = max(1, round(im.width * height / im.height))
    return data_uri(png_bytes(im.resize((w, height), Image.Resampling.BILINEAR)))


def diameter_plot_uri(rows: pd.DataFrame) -> str:
    """BPD and OFD of every frame over the cine (mm, or px without spacing): filled markers for
    accepted frames, hollow for rejected, dashed lines at the summary's medians when given."""
    from matplotlib.figure import Figure  # lazy: matplotlib only when a cine's diameter plot is drawn
    from matplotlib.ticker import MaxNLocator  # lazy: matplotlib, as above

    unit = "mm" if rows["bpd_mm"].notna().any() else "px"
    fig = Figure(figsize=(4.8, 2.4), dpi=100)
    ax = fig.add_subplot()
    ok = rows["accepted"].astype(bool).to_numpy()
    x = np.arange(len(rows))
    for name, colour in (("bpd", "tab:blue"), ("ofd", "tab:red")):
        y = rows[f"{name}_{unit}"].to_numpy(np.float64)
        ax.plot(x, y, color=colour, lw=1, alpha=0.6, label=f"{name.upper()} ({unit})")
        ax.scatter(x[ok], y[ok], color=colour, s=18, zorder=3)
        ax.scatter(x[~ok], y[~ok], facecolors="none", edgecolors=colour, s=18, zorder=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("frame (filled: accepted, hollow: rejected)")
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return data_uri(buf.getvalue())

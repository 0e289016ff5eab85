"""Drawing landmarks: the one overlay used by the QC report and the model plots."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fhbiometry.core.geometry import as_points  # noqa: E402

# Fixed metadata so saved PNGs are byte-stable across runs.
PNG_METADATA = {"Software": None}
TRUE_STYLE = {"color": "#00e676", "marker": "o", "label": "reference"}
PRED_STYLE = {"color": "#ff1744", "marker": "x", "label": "predicted"}


def draw_landmarks(ax, points, color="#00e676", marker="o", label=None, lw=1.5):
    """Draw OFD (solid) and BPD (dashed) of (4, 2) points, numbering the first end of each pair."""
    p = as_points(points)
    if not np.all(np.isfinite(p)):
        return
    ax.plot(p[:2, 0], p[:2, 1], "-", color=color, lw=lw, label=label)
    ax.plot(p[2:, 0], p[2:, 1], "--", color=color, lw=lw)
    ax.scatter(p[:, 0], p[:, 1], c=color, marker=marker, s=28, zorder=3)
    for idx, name in ((0, "O1"), (2, "B1")):
        ax.annotate(name, p[idx], color=color, fontsize=7, xytext=(3, 3), textcoords="offset points")


def show_image(ax, image, title=None):
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def save_figure(fig, path, dpi=100) -> None:
    """Save a figure as PNG without a timestamp or version in its metadata, then close it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata=PNG_METADATA, bbox_inches="tight")
    plt.close(fig)

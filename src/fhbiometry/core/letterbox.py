"""Original image <-> network input: the letterbox (or plain stretch) into a square.

Conventions (docs/landmarks.md): point coordinates are continuous pixel coordinates with integer
values at pixel centres, in every space. ``letterbox`` scales the image by one factor that keeps
its aspect ratio and centres it on black; ``stretch`` resizes each axis to the square (the seed's
recipe, kept for the ablation). A frame's mapping is an affine ``transform`` ``[sx, sy, tx, ty]``:
``x_in = x * sx + tx``, ``y_in = y * sy + ty``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

RESIZE_MODES = ("letterbox", "stretch")


@dataclass(frozen=True)
class Letterbox:
    size: int = 128
    resize: str = "letterbox"

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"input.resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.size <= 0:
            raise ValueError(f"input.size must be positive, got {self.size}")

    def to_dict(self) -> dict:
        return asdict(self)

    def resized_shape(self, width: int, height: int) -> tuple[int, int]:
        """(new_width, new_height) of the image content inside the input square."""
        s = self.size
        if self.resize == "stretch":
            return s, s
        scale = min(s / width, s / height)
        return max(1, min(s, int(round(width * scale)))), max(1, min(s, int(round(height * scale))))

    def transform(self, width: int, height: int) -> np.ndarray:
        """[sx, sy, tx, ty] mapping original pixel coordinates to input coordinates."""
        nw, nh = self.resized_shape(width, height)
        sx, sy = nw / width, nh / height
        pad_x, pad_y = (self.size - nw) // 2, (self.size - nh) // 2
        return np.array([sx, sy, 0.5 * sx - 0.5 + pad_x, 0.5 * sy - 0.5 + pad_y])

    def image_to_input(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resize a 2-D uint8 image into the input square. Returns (input, transform)."""
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
        h, w = image.shape
        nw, nh = self.resized_shape(w, h)
        resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
        out = np.zeros((self.size, self.size), dtype=np.uint8)
        px, py = (self.size - nw) // 2, (self.size - nh) // 2
        out[py:py + nh, px:px + nw] = resized
        return out, self.transform(w, h)


def to_input(points, transform) -> np.ndarray:
    """Map (..., K, 2) original points to input coordinates with (..., 4) transforms."""
    p = np.asarray(points, dtype=np.float64)
    t = np.asarray(transform, dtype=np.float64)[..., None, :]
    return np.stack([p[..., 0] * t[..., 0] + t[..., 2], p[..., 1] * t[..., 1] + t[..., 3]], -1)


def to_original(points, transform) -> np.ndarray:
    """Inverse of ``to_input``."""
    p = np.asarray(points, dtype=np.float64)
    t = np.asarray(transform, dtype=np.float64)[..., None, :]
    return np.stack([(p[..., 0] - t[..., 2]) / t[..., 0], (p[..., 1] - t[..., 3]) / t[..., 1]], -1)

"""The one codec: original pixels <-> network input <-> heatmap cells <-> millimetres.

Conventions (see docs/landmarks.md):

* Point coordinates are continuous pixel coordinates with integer values at pixel
  centres, in every space (original image, network input, heatmap).
* The network input is a square of ``input_size`` pixels.  ``letterbox`` scales
  the image by one factor that keeps its aspect ratio and centres it on black;
  ``stretch`` resizes each axis to the square (the seed's recipe, kept for the
  ablation).  A frame's mapping is stored as an affine ``transform``
  ``[sx, sy, tx, ty]``: ``x_in = x * sx + tx``, ``y_in = y * sy + ty``.
* Heatmap cell ``k`` covers input pixels ``[k*stride, (k+1)*stride)``; its centre is
  input pixel ``k*stride + (stride-1)/2``.
* Regression targets are the input coordinates either ``normalised`` to [0, 1] (pixel edges
  of the square at 0 and 1; the default) or in raw input ``pixels`` (the seed's recipe, kept
  for the ablation): ``encode_coordinates`` / ``decode_coordinates``.
* A target heatmap is an unnormalised Gaussian with peak ``peak`` at the sub-pixel
  landmark position and standard deviation ``sigma`` heatmap cells.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import numpy as np
from PIL import Image

from .geometry import BPD, OFD

RESIZE_MODES = ("letterbox", "stretch")
DECODE_MODES = ("argmax", "quadratic", "soft_argmax")
COORDINATE_MODES = ("normalised", "pixels")


@dataclass(frozen=True)
class Codec:
    input_size: int = 128
    stride: int = 4
    sigma: float = 2.0
    resize: str = "letterbox"
    decode: str = "quadratic"
    peak: float = 1.0
    soft_argmax_radius: int = 2
    coordinates: str = "normalised"
    pair_decode: bool = True

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"codec.resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.coordinates not in COORDINATE_MODES:
            raise ValueError(f"codec.coordinates must be one of {COORDINATE_MODES}, got {self.coordinates!r}")
        if self.decode not in DECODE_MODES:
            raise ValueError(f"codec.decode must be one of {DECODE_MODES}, got {self.decode!r}")
        if self.input_size <= 0 or self.stride <= 0 or self.input_size % self.stride:
            raise ValueError(
                f"codec.input_size ({self.input_size}) must be a positive multiple of "
                f"codec.stride ({self.stride})")
        if self.sigma <= 0:
            raise ValueError(f"codec.sigma must be > 0, got {self.sigma}")

    @classmethod
    def from_params(cls, params: dict) -> "Codec":
        known = {k: params[k] for k in cls.__dataclass_fields__ if k in params}
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def heatmap_size(self) -> int:
        return self.input_size // self.stride

    # ---- original image <-> network input -------------------------------------------
    def resized_shape(self, width: int, height: int) -> tuple[int, int]:
        """(new_width, new_height) of the image content inside the input square."""
        s = self.input_size
        if self.resize == "stretch":
            return s, s
        scale = min(s / width, s / height)
        return max(1, min(s, int(round(width * scale)))), max(1, min(s, int(round(height * scale))))

    def transform(self, width: int, height: int) -> np.ndarray:
        """[sx, sy, tx, ty] mapping original pixel coordinates to input coordinates."""
        nw, nh = self.resized_shape(width, height)
        sx, sy = nw / width, nh / height
        pad_x, pad_y = (self.input_size - nw) // 2, (self.input_size - nh) // 2
        return np.array([sx, sy, 0.5 * sx - 0.5 + pad_x, 0.5 * sy - 0.5 + pad_y])

    def image_to_input(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resize a 2-D uint8 image into the input square. Returns (input, transform)."""
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
        h, w = image.shape
        nw, nh = self.resized_shape(w, h)
        resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
        out = np.zeros((self.input_size, self.input_size), dtype=np.uint8)
        t = self.transform(w, h)
        px, py = (self.input_size - nw) // 2, (self.input_size - nh) // 2
        out[py:py + nh, px:px + nw] = resized
        return out, t

    @staticmethod
    def to_input(points, transform) -> np.ndarray:
        """Map (..., K, 2) original points to input coordinates with (..., 4) transforms."""
        p = np.asarray(points, dtype=np.float64)
        t = np.asarray(transform, dtype=np.float64)[..., None, :]
        return np.stack([p[..., 0] * t[..., 0] + t[..., 2], p[..., 1] * t[..., 1] + t[..., 3]], -1)

    @staticmethod
    def to_original(points, transform) -> np.ndarray:
        """Inverse of ``to_input``."""
        p = np.asarray(points, dtype=np.float64)
        t = np.asarray(transform, dtype=np.float64)[..., None, :]
        return np.stack([(p[..., 0] - t[..., 2]) / t[..., 0], (p[..., 1] - t[..., 3]) / t[..., 1]], -1)

    # ---- network input <-> normalised regression targets ----------------------------
    def normalise(self, points_in) -> np.ndarray:
        """Input pixel coordinates -> [0, 1] (pixel edges of the square at 0 and 1)."""
        return (np.asarray(points_in, dtype=np.float64) + 0.5) / self.input_size

    def denormalise(self, values) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.input_size - 0.5

    def encode_coordinates(self, points_in) -> np.ndarray:
        """(..., K, 2) input points -> (..., 2K) regression targets in ``self.coordinates``."""
        p = np.asarray(points_in, dtype=np.float64)
        values = self.normalise(p) if self.coordinates == "normalised" else p
        return values.reshape(p.shape[:-2] + (-1,))

    def decode_coordinates(self, values) -> np.ndarray:
        """Inverse of ``encode_coordinates``: (..., 2K) outputs -> (..., K, 2) input points."""
        v = np.asarray(values, dtype=np.float64)
        v = v.reshape(v.shape[:-1] + (-1, 2))
        return self.denormalise(v) if self.coordinates == "normalised" else v

    # ---- network input <-> heatmap cells --------------------------------------------
    def to_cells(self, points_in) -> np.ndarray:
        return (np.asarray(points_in, dtype=np.float64) - (self.stride - 1) / 2) / self.stride

    def from_cells(self, cells) -> np.ndarray:
        return np.asarray(cells, dtype=np.float64) * self.stride + (self.stride - 1) / 2

    def encode_heatmaps(self, points_in) -> np.ndarray:
        """(K, 2) input points -> (K, H, H) float32 Gaussian targets (NaN points give zeros)."""
        cells = self.to_cells(points_in)
        n = self.heatmap_size
        grid = np.arange(n, dtype=np.float64)
        out = np.zeros((len(cells), n, n), dtype=np.float32)
        for k, (u, v) in enumerate(cells):
            if not (np.isfinite(u) and np.isfinite(v)):
                continue
            gx = np.exp(-((grid - u) ** 2) / (2 * self.sigma ** 2))
            gy = np.exp(-((grid - v) ** 2) / (2 * self.sigma ** 2))
            out[k] = (self.peak * gy[:, None] * gx[None, :]).astype(np.float32)
        return out

    def decode_heatmaps(self, heatmaps, mode: str | None = None, pairs=None) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, H, W) heatmaps -> ((N, K, 2) input points, (N, K) peak values).

        ``mode``: the peak refinement (``argmax``, ``quadratic``, ``soft_argmax``; default
        ``self.decode``). ``pairs``: channel index pairs decoded jointly (default
        ``geometry``'s OFD and BPD pairs when ``self.pair_decode``; ``()`` decodes every channel
        on its own): see ``joint_pair_peaks``.
        """
        mode = mode or self.decode
        if mode not in DECODE_MODES:
            raise ValueError(f"decode mode must be one of {DECODE_MODES}, got {mode!r}")
        hm = np.asarray(heatmaps, dtype=np.float64)
        n, k, h, w = hm.shape
        if pairs is None:
            pairs = (OFD, BPD) if self.pair_decode and k == 4 else ()
        flat = hm.reshape(n, k, -1)
        idx = flat.argmax(-1)
        for i, j in pairs:
            idx[:, i], idx[:, j] = joint_pair_peaks(hm[:, i], hm[:, j], self.pair_radius)
        peak = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
        iy, ix = np.divmod(idx, w)
        cx, cy = ix.astype(np.float64), iy.astype(np.float64)
        if mode == "quadratic":
            dx, dy = _quadratic_offsets(hm, ix, iy)
            cx, cy = cx + dx, cy + dy
        elif mode == "soft_argmax":
            cx, cy = _soft_argmax(hm, ix, iy, self.soft_argmax_radius)
        return self.from_cells(np.stack([cx, cy], -1)), peak

    @property
    def pair_radius(self) -> float:
        """Joint pair decoding: the second end is sought beyond this many cells from the first."""
        return 3.0 * self.sigma

    # ---- millimetres ----------------------------------------------------------------
    @staticmethod
    def to_mm(values_px, spacing_mm) -> np.ndarray:
        """Scale pixel distances or coordinates of the original image to millimetres."""
        s = np.asarray(spacing_mm, dtype=np.float64)
        v = np.asarray(values_px, dtype=np.float64)
        return v * s.reshape(s.shape + (1,) * (v.ndim - s.ndim))


def joint_pair_peaks(a, b, radius: float):
    """The two ends of one diameter from its two heatmaps ``a``, ``b`` (N, H, W), order-free.

    A model that cannot tell which end is which (an order rule always flips somewhere, e.g. the
    left end of a near-vertical OFD) may put both channels' peaks on one end; the diameter then
    collapses. Here the two channels are summed, the first end is the hottest cell of the sum
    and the second the hottest cell farther than ``radius`` cells from it. The first end goes to
    the channel that is hotter there, the second to the other. Returns the flat cell index of the
    end given to ``a`` and of the end given to ``b``; the sub-pixel refinement then runs on each
    channel at its cell (refining on the sum would be biased by the other end's tail).
    """
    summed = np.asarray(a, np.float64) + np.asarray(b, np.float64)
    n, h, w = summed.shape
    flat = summed.reshape(n, -1)
    first = flat.argmax(-1)
    fy, fx = np.divmod(first, w)
    yy, xx = np.divmod(np.arange(h * w), w)
    far = (yy[None] - fy[:, None]) ** 2 + (xx[None] - fx[:, None]) ** 2 > radius ** 2
    second = np.where(far, flat, -np.inf).argmax(-1)
    rows = np.arange(n)
    a_first = np.asarray(a).reshape(n, -1)[rows, first] >= np.asarray(b).reshape(n, -1)[rows, first]
    return np.where(a_first, first, second), np.where(a_first, second, first)


def _quadratic_offsets(hm, ix, iy):
    """Sub-cell offsets from a parabola through the log-heatmap at the peak and its
    two neighbours along each axis (exact for a Gaussian peak); clipped to +-0.5."""
    n, k, h, w = hm.shape
    logh = np.log(np.maximum(hm, 1e-10))
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")

    def offset(minus, centre, plus):
        denom = minus - 2 * centre + plus
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.where(denom < 0, 0.5 * (minus - plus) / denom, 0.0)
        return np.clip(np.nan_to_num(off), -0.5, 0.5)

    c = logh[ni, ki, iy, ix]
    xm, xp = np.clip(ix - 1, 0, w - 1), np.clip(ix + 1, 0, w - 1)
    ym, yp = np.clip(iy - 1, 0, h - 1), np.clip(iy + 1, 0, h - 1)
    dx = offset(logh[ni, ki, iy, xm], c, logh[ni, ki, iy, xp])
    dy = offset(logh[ni, ki, ym, ix], c, logh[ni, ki, yp, ix])
    dx = np.where((ix == 0) | (ix == w - 1), 0.0, dx)
    dy = np.where((iy == 0) | (iy == h - 1), 0.0, dy)
    return dx, dy


def _soft_argmax(hm, ix, iy, radius):
    """Centre of mass of the positive heatmap in a (2r+1)^2 window around the peak."""
    n, k, h, w = hm.shape
    cx = np.empty((n, k))
    cy = np.empty((n, k))
    for a in range(n):
        for b in range(k):
            x0, x1 = max(0, ix[a, b] - radius), min(w, ix[a, b] + radius + 1)
            y0, y1 = max(0, iy[a, b] - radius), min(h, iy[a, b] + radius + 1)
            win = np.maximum(hm[a, b, y0:y1, x0:x1], 0.0)
            total = win.sum()
            if total <= 0:
                cx[a, b], cy[a, b] = ix[a, b], iy[a, b]
                continue
            yy, xx = np.mgrid[y0:y1, x0:x1]
            cx[a, b] = (win * xx).sum() / total
            cy[a, b] = (win * yy).sum() / total
    return cx, cy

"""Transcendental functions that give the same bits on every CPU.

numpy picks its ``exp``, ``log``, ``arctan2``, ``power``, ... kernels by CPU (AVX-512, AVX2,
SSE); they differ in the last bit, and such a bit flips a uint8 pixel now and then, so the
synthetic data set came out different on another CPU.  Here every function is built from
operations that IEEE 754 rounds exactly (``+ - * /``, ``sqrt``, ``rint``, ``frexp``, ``ldexp``,
comparisons), each one numpy ufunc call at a time, in float64: the same inputs give the same
bits on any CPU and any numpy code path.  Accuracy is a few ulp of float64, far below what an
image needs.  Inputs are finite; float32 inputs give float32 results (computed in float64),
other inputs give float64.

``gaussian_filter`` is ``scipy.ndimage.gaussian_filter`` with the kernel weights computed here
(scipy computes them with ``numpy.exp``); the correlation itself is scipy's plain C loop.
Scalars (angles, random draws) use Python's ``math``, i.e. the C library, which numpy's
dispatch does not touch.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# ln 2 split so that k * _LN2_HI is exact for |k| < 2**11 (Cody-Waite reduction)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LN2 = 0.6931471805599453
_INV_LN2 = 1.4426950408889634
_INV_LN10 = 0.4342944819032518
_SQRT_HALF = 0.7071067811865476
_PI = 3.141592653589793

_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))   # degree 13 .. 0
_ATANH_SERIES = tuple(1.0 / (2 * k + 1) for k in range(11, -1, -1))       # 1/23 .. 1/1
_ATAN_SERIES = tuple((-1.0) ** k / (2 * k + 1) for k in range(11, -1, -1))


def _horner(coeffs: tuple, z: np.ndarray) -> np.ndarray:
    """sum(coeffs[i] * z ** (n - i)), highest power first; one multiply and one add per step
    (never fused)."""
    p = np.full_like(z, coeffs[0])
    for c in coeffs[1:]:
        np.multiply(p, z, out=p)
        np.add(p, c, out=p)
    return p


def _result(value: np.ndarray, *inputs) -> np.ndarray:
    if all(np.asarray(x).dtype == np.float32 for x in inputs):
        return value.astype(np.float32)
    return value


def exp(x) -> np.ndarray:
    """e ** x: x = k ln2 + r with |r| <= ln2 / 2, a degree-13 Taylor polynomial of e ** r, times
    2 ** k."""
    x64 = np.clip(np.asarray(x, dtype=np.float64), -1100.0, 1100.0)
    k = np.rint(x64 * _INV_LN2)
    r = x64 - k * _LN2_HI
    r -= k * _LN2_LO
    return _result(np.ldexp(_horner(_EXP_TAYLOR, r), k.astype(np.int32)), x)


def log(x) -> np.ndarray:
    """Natural logarithm of x > 0: x = m 2 ** e with m in [sqrt(1/2), sqrt(2)), ln m =
    2 atanh(s) with s = (m - 1) / (m + 1) as a series in s ** 2."""
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    ln_m = 2.0 * s * _horner(_ATANH_SERIES, s * s)
    return _result(e * _LN2 + ln_m, x)


def log10(x) -> np.ndarray:
    """Base-10 logarithm of x > 0."""
    return _result(np.asarray(log(np.asarray(x, dtype=np.float64))) * _INV_LN10, x)


def _atan_unit(t: np.ndarray) -> np.ndarray:
    """atan(t) for 0 <= t <= 1: two argument halvings (atan t = 2 atan(t / (1 + sqrt(1 + t**2))))
    bring t below tan(pi / 16), then the Taylor series."""
    for _ in range(2):
        t = t / (1.0 + np.sqrt(1.0 + t * t))
    return 4.0 * t * _horner(_ATAN_SERIES, t * t)


def arctan2(y, x) -> np.ndarray:
    """The angle of the point (x, y) in [-pi, pi], like ``numpy.arctan2`` (a zero y counts as
    positive)."""
    y64, x64 = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    ay, ax = np.abs(y64), np.abs(x64)
    big, small = np.maximum(ay, ax), np.minimum(ay, ax)
    a = _atan_unit(np.where(big > 0, small / np.where(big > 0, big, 1.0), 0.0))
    a = np.where(ay > ax, _PI / 2 - a, a)
    a = np.where(x64 < 0, _PI - a, a)
    return _result(np.where(y64 < 0, -a, a), y, x)


def hypot(x, y) -> np.ndarray:
    """sqrt(x ** 2 + y ** 2) (no overflow care: image-sized inputs)."""
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return _result(np.sqrt(x64 * x64 + y64 * y64), x, y)


def sin_cos(angles) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of a few angles, one at a time with Python's ``math`` (the C library's scalar
    functions, as for every scalar angle here: no numpy SIMD dispatch); for short arrays only."""
    a = np.asarray(angles, dtype=np.float64)
    flat = a.ravel()
    s = np.array([math.sin(v) for v in flat], dtype=np.float64).reshape(a.shape)
    c = np.array([math.cos(v) for v in flat], dtype=np.float64).reshape(a.shape)
    return s, c


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy's 1-D Gaussian kernel (radius ``int(truncate * sigma + 0.5)``, sum 1)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = exp(-0.5 / (float(sigma) * float(sigma)) * (x * x))
    return phi / math.fsum(phi.tolist())


def gaussian_filter(image: np.ndarray, sigma, mode: str) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma, mode=mode)`` (output dtype of ``image``)
    with the kernels of ``gaussian_kernel``."""
    image = np.asarray(image)
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (image.ndim,))
    out = image
    for axis, s in enumerate(sigmas):
        if s > 1e-15:
            out = ndimage.correlate1d(out, gaussian_kernel(float(s)), axis=axis,
                                      output=image.dtype, mode=mode)
    return out

"""Data-set-level random choices: the file format of every subject and the label faults
injected into landmarks.csv (each from a random stream of its own)."""
from __future__ import annotations

import math

import numpy as np

from .config import _STREAM_FAULTS, _STREAM_FORMATS, FAULT_KINDS, FORMATS, _rng


def allocate_formats(n_subjects: int, shares: dict, seed: int) -> list[str]:
    """The file format of every subject: counts by largest remainder of the normalised
    ``shares``, subjects assigned by a seeded permutation (a stream of its own)."""
    names = [f for f in FORMATS if shares.get(f, 0) > 0]
    total = sum(shares[f] for f in names)
    exact = [n_subjects * shares[f] / total for f in names]
    counts = [int(math.floor(e)) for e in exact]
    by_remainder = sorted(range(len(names)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n_subjects - sum(counts)]:
        counts[i] += 1
    order = _rng(seed, _STREAM_FORMATS).permutation(n_subjects)
    out = [""] * n_subjects
    pos = 0
    for name, count in zip(names, counts):
        for idx in order[pos:pos + count]:
            out[int(idx)] = name
        pos += count
    return out


def choose_faults(n_frames: int, rate: float, seed: int) -> dict[int, str]:
    """Exactly ``round(rate * n_frames)`` frame indices (rows of landmarks.csv) mapped to a fault
    kind; the kinds take turns (``FAULT_KINDS`` from a seeded start) in a seeded order."""
    n = int(round(rate * n_frames))
    if n == 0:
        return {}
    rng = _rng(seed, _STREAM_FAULTS)
    picked = rng.choice(n_frames, size=n, replace=False)
    start = int(rng.integers(len(FAULT_KINDS)))
    return {int(row): FAULT_KINDS[(start + k) % len(FAULT_KINDS)] for k, row in enumerate(picked)}


def corrupt_points(points: np.ndarray, kind: str, width: int, height: int,
                   rng: np.random.Generator) -> np.ndarray:
    """A deliberately wrong copy of (4, 2) canonical landmarks, as a careless label would be:

    * ``swapped_names``: the OFD and BPD pairs exchanged (columns named the wrong way round);
    * ``point_off_skull``: one point pulled 70-90 % of the way to the head centre (still inside
      the image, far from the skull ring);
    * ``outside_image``: one point moved 5-40 px beyond the image border nearest to it.
    """
    p = np.array(points, dtype=np.float64)
    if kind == "swapped_names":
        return p[[2, 3, 0, 1]]
    k = int(rng.integers(4))
    if kind == "point_off_skull":
        centre = p[:2].mean(axis=0)
        p[k] = p[k] + rng.uniform(0.7, 0.9) * (centre - p[k])
        return p
    if kind == "outside_image":
        x, y = p[k]
        gaps = {"left": x, "right": width - 1 - x, "top": y, "bottom": height - 1 - y}
        side = min(gaps, key=gaps.get)
        beyond = rng.uniform(5.0, 40.0)
        if side == "left":
            p[k, 0] = -beyond
        elif side == "right":
            p[k, 0] = width - 1 + beyond
        elif side == "top":
            p[k, 1] = -beyond
        else:
            p[k, 1] = height - 1 + beyond
        return p
    raise ValueError(f"unknown label fault {kind!r}; choose one of {list(FAULT_KINDS)}")

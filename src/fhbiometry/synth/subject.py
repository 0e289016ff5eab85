"""One subject: its anatomy, probe motion, frame qualities and rendered cine, all drawn from the
subject's own random stream."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fhbiometry.core.geometry import ellipse_landmarks
from .anatomy import Head, _draw_head, _fan_for, _initial_pose, _walk
from .config import _STREAM_SUBJECT, normalise_config, subject_id
from .render import _background, _polar_grid, render_frame


@dataclass
class Subject:
    """One generated subject: frames (N, H, W) uint8, the pose (cx, cy, angle) and quality of
    every frame."""

    index: int
    subject_id: str
    head: Head
    frames: np.ndarray
    poses: list
    qualities: list

    def landmarks(self, k: int) -> np.ndarray:
        """Exact (4, 2) canonical landmarks of frame ``k``."""
        cx, cy, angle = self.poses[k]
        return ellipse_landmarks(cx, cy, self.head.semi_a, self.head.semi_b, angle)


def make_subject(index: int, cfg: dict, seed: int) -> Subject:
    """Generate subject ``index`` (0-based) from its own random stream."""
    cfg = normalise_config(cfg)
    geo_seq, noise_seq = np.random.SeedSequence([int(seed), _STREAM_SUBJECT, index]).spawn(2)
    rng, noise = np.random.default_rng(geo_seq), np.random.default_rng(noise_seq)
    width, height = cfg["width"], cfg["height"]
    lo, hi = cfg["frames_per_subject"]
    n_frames = int(rng.integers(lo, hi + 1))
    fan = _fan_for(width, height, rng)
    head = _draw_head(cfg, rng)
    front = 1.0 if rng.random() < 0.5 else -1.0
    poses = [_initial_pose(head, fan, width, height, rng)]
    for _ in range(n_frames - 1):
        poses.append(_walk(poses[-1], head, fan, cfg, rng))
    qualities = []
    for _ in range(n_frames):
        poor = rng.random() < cfg["poor_frame_rate"]
        qualities.append(("low_contrast", "blurred")[int(rng.integers(2))] if poor else "good")
    look = {
        "shadow": rng.uniform(0.5, 0.8), "atten": rng.uniform(0.4, 0.9),
        "ref": rng.uniform(1.0, 1.3), "range_db": rng.uniform(40.0, 48.0),
        "fluid_level": rng.uniform(0.01, 0.03), "haze": rng.uniform(0.25, 0.4),
        "contrast": rng.uniform(0.3, 0.45), "blur": rng.uniform(1.3, 2.3),
    }
    grid = _polar_grid(fan, width, height)
    background = _background(grid, noise)
    frames = np.stack([render_frame(grid, background, head, pose, front, q, look, noise)
                       for pose, q in zip(poses, qualities)])
    return Subject(index=index, subject_id=subject_id(index), head=head, frames=frames,
                   poses=poses, qualities=qualities)

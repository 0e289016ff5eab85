"""What every codec's ``decode`` returns."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decoded:
    points: np.ndarray          # (N, 4, 2) network-input pixels
    peak: np.ndarray | None     # (N, 4) heatmap value at each decoded point; None without heatmaps

"""The file layout of the pipeline: one home for every path a stage reads or writes
(docs/architecture.md). Stages build ``Paths(root)`` and hand it to the library."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fhbiometry.core.choices import SPLITS


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    # stage synthesize
    @property
    def synthetic(self) -> Path:
        return self.root / "data/raw/synthetic"

    # stage extract_frames
    @property
    def frames_dir(self) -> Path:
        return self.root / "data/frames"

    @property
    def frames(self) -> Path:
        return self.frames_dir / "frames.npz"

    @property
    def manifest(self) -> Path:
        return self.frames_dir / "manifest.csv"

    @property
    def issues(self) -> Path:
        return self.frames_dir / "issues.csv"

    # stage qc
    @property
    def labels(self) -> Path:
        return self.root / "data/qc/labels.csv"

    @property
    def qc_metrics(self) -> Path:
        return self.root / "metrics/qc.json"

    @property
    def qc_plots(self) -> Path:
        return self.root / "plots/qc"

    # stage split
    @property
    def split(self) -> Path:
        return self.root / "data/split/split.csv"

    @property
    def split_metrics(self) -> Path:
        return self.root / "metrics/split.json"

    # stage prepare
    @property
    def prepared_dir(self) -> Path:
        return self.root / "data/prepared"

    def prepared(self, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: choose one of {SPLITS}")
        return self.prepared_dir / f"{split}.npz"

    # stage refine_crops@<name> (a refinement's crops, in the prepared form)
    def refine_dir(self, name: str) -> Path:
        return self.root / "data/refine" / name

    def refine_data(self, name: str, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: choose one of {SPLITS}")
        return self.refine_dir(name) / f"{split}.npz"

    # stages train@<model>, evaluate@<model>, plots (and train_refine@<name>, evaluate_refine@<name>)
    def checkpoint(self, model: str) -> Path:
        return self.root / "models" / f"{model}.safetensors"

    def train_log(self, model: str) -> Path:
        return self.root / "metrics/train" / model

    def predictions(self, model: str) -> Path:
        return self.root / "results" / model / "predictions.csv"

    def eval_metrics(self, model: str) -> Path:
        return self.root / "metrics/eval" / f"{model}.json"

    @property
    def model_plots(self) -> Path:
        return self.root / "plots/models"

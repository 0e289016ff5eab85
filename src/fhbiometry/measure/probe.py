"""How often ``predict`` rejects frames that hold no fetal head: pydicom's own ultrasound example
files (real scanner exports without a head) and generated non-heads (blank, uniform grey,
Gaussian and speckle noise, a head cropped to a quarter, a text-only screen), each generated kind
a multi-frame DICOM cine, all measured by ``api.measure`` exactly as ``fhbiometry predict`` does.
A good model rejects every frame, so that no cine gets a measurement (``fhbiometry reject-probe``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file

from fhbiometry.measure.aggregate import MEASURED
from fhbiometry.synth.subject import make_subject
from fhbiometry.synth.writers import write_dicom

PYDICOM_EXAMPLES = ("examples_palette.dcm", "examples_ybr_color.dcm", "examples_jpeg2k.dcm")
GENERATED = ("blank", "grey", "gaussian_noise", "speckle_noise", "quarter_head", "text_screen")
SIZE = (256, 320)            # (height, width) of the generated frames
PROBE_SPACING_MM = 0.2       # written into the generated DICOMs (a plausible scanner value)
GOAL_REJECTED = 0.95         # issue 19: >= 95 % of non-head frames rejected, no cine measured


def text_screen(rng: np.random.Generator) -> np.ndarray:
    """A scanner's menu / report screen: lines of text and a frame, no image area."""
    image = Image.new("L", SIZE[::-1], 0)
    draw = ImageDraw.Draw(image)
    words = ("Gen OB", "BPD", "HC", "AC", "FL", "EFW", "GA", "MI 0.9", "TIS 0.3", "C5-1", "Patient", "Exam")
    for line in range(14):
        text = "  ".join(rng.choice(words, 4)) + f"  {rng.uniform(10, 99):.1f} mm"
        draw.text((8 + int(rng.integers(0, 20)), 8 + 17 * line), text, fill=int(rng.integers(150, 256)))
    draw.rectangle([2, 2, SIZE[1] - 3, SIZE[0] - 3], outline=200)
    return np.asarray(image, np.uint8)


def quarter_heads(n: int, params: dict, seed: int) -> np.ndarray:
    """``n`` frames of the embedded generator's heads (params ``synthesize``), each cut to the
    top-left quarter of its head's bounding box (a head cropped to a quarter) and resized."""
    cfg = dict(params["synthesize"], frames_per_subject=[1, 1])
    out = []
    for k in range(n):
        subject = make_subject(k, cfg, seed)
        pts = subject.landmarks(0)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        crop = subject.frames[0][int(max(y0, 0)):int(cy), int(max(x0, 0)):int(cx)]
        out.append(np.asarray(Image.fromarray(crop).resize(SIZE[::-1], Image.BILINEAR), np.uint8))
    return np.stack(out)


def generated_frames(kind: str, n: int, params: dict, seed: int = 0) -> np.ndarray:
    """(n, H, W) uint8 frames of one generated non-head ``kind`` (``GENERATED``)."""
    rng = np.random.default_rng([seed, GENERATED.index(kind)])
    shape = (n, *SIZE)
    if kind == "blank":
        return np.zeros(shape, np.uint8)
    if kind == "grey":
        return np.broadcast_to(np.linspace(60, 200, n).astype(np.uint8)[:, None, None], shape).copy()
    if kind == "gaussian_noise":
        return np.clip(rng.normal(110, 45, shape), 0, 255).astype(np.uint8)
    if kind == "speckle_noise":   # fully developed speckle: Rayleigh amplitude on a smooth field
        field = 60 + 60 * np.sin(np.linspace(0, 3, SIZE[1]))[None, None, :]
        return np.clip(field * rng.rayleigh(1.0, shape), 0, 255).astype(np.uint8)
    if kind == "quarter_head":
        return quarter_heads(n, params, seed)
    if kind == "text_screen":
        return np.stack([text_screen(rng) for _ in range(n)])
    raise ValueError(f"unknown non-head kind {kind!r}; choose one of {GENERATED}")


def probe_inputs(folder, n_frames: int, params: dict, seed: int = 0) -> list[tuple[Path, str]]:
    """(file, kind) of every probe input: the pydicom examples found (``get_testdata_file``) and one
    ``n_frames``-frame DICOM per generated kind written under ``folder``."""
    out = [(Path(p), "pydicom example") for p in map(get_testdata_file, PYDICOM_EXAMPLES) if p]
    for k, kind in enumerate(GENERATED):
        frames = generated_frames(kind, n_frames, params, seed)
        out.append((write_dicom(Path(folder) / f"{kind}.dcm", frames, PROBE_SPACING_MM, f"probe{k}", seed), kind))
    return out


def probe_table(inputs: list[tuple[Path, str]], result) -> pd.DataFrame:
    """One row per probe input: frames read, frames accepted, share rejected, its cine's status
    and basis, or the reader's error when it could not be read."""
    errors = {Path(getattr(e, "file", "")).name: str(e) for e in result.errors}
    frames, summary = result.frames, result.summary.set_index("cine_id") if len(result.summary) else None
    rows = []
    for path, kind in inputs:
        mine = frames[frames["source_file"] == path.name] if len(frames) else frames
        if not len(mine):
            rows.append({"input": path.name, "kind": kind, "frames": 0, "accepted": 0, "low_confidence": 0,
                         "rejected_share": np.nan,
                         "status": "unreadable", "basis": "", "detail": errors.get(path.name, "not read")})
            continue
        cine = summary.loc[mine["cine_id"].iloc[0]]
        accepted = int(mine["accepted"].astype(bool).sum())
        low = int(mine["reject_reason"].str.contains("low confidence").sum())
        rows.append({"input": path.name, "kind": kind, "frames": len(mine), "accepted": accepted,
                     "low_confidence": low, "rejected_share": 1 - accepted / len(mine), "status": cine["status"],
                     "basis": cine["basis"], "detail": str(cine["reason"])[:80]})
    return pd.DataFrame(rows)


def probe_totals(table: pd.DataFrame) -> dict:
    """Non-head frames read, their share rejected, cines measured, and whether the goal holds."""
    n = int(table["frames"].sum())
    rejected = float(1 - table["accepted"].sum() / n) if n else float("nan")
    measured = int((table["status"] == MEASURED).sum())
    return {"frames": n, "rejected_share": rejected, "cines_measured": measured,
            "unreadable": int((table["status"] == "unreadable").sum()),
            "goal_met": bool(n and rejected >= GOAL_REJECTED and measured == 0)}

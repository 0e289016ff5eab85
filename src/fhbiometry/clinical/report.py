"""``<out>/report.html``: the study report page of a predict run, one self-contained HTML file
(every image inlined as a data URI, no script, no network) from the Jinja2 template
``templates/report.html.j2``. Per cine: the best frame with its landmarks at the original
resolution, the measurements with their intervals where the summary has them, the gestational
ages, a strip of every frame (accepted or rejected, and why) and a plot of the per-frame BPD
and OFD. The frames are read again from the measured files (``readers.media.read_file``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fhbiometry.clinical.figures import diameter_plot_uri, overlay_uri, thumbnail_uri
from fhbiometry.clinical.sr import Device, cine_status, finite, rejection_reason
from fhbiometry.readers.media import DEFAULT_MAX_PIXELS, read_file

TEMPLATE = "report.html.j2"
ROWS = (("BPD", "bpd"), ("OFD", "ofd"), ("HC", "hc"))


def number(value, unit: str, digits: int = 1) -> str:
    return f"{float(value):.{digits}f} {unit}".strip() if finite(value) else "-"


def with_interval(row, name: str) -> str:
    """``45.2 mm [44.1, 46.4]`` (the interval where the summary has one), or px without spacing."""
    value = row.get(f"{name}_mm")
    if not finite(value):
        return number(row.get(f"{name}_px"), "px") if name != "hc" else "-"
    lo, hi = row.get(f"{name}_mm_lo"), row.get(f"{name}_mm_hi")
    text = number(value, "mm")
    return text + (f" [{float(lo):.1f}, {float(hi):.1f}]" if finite(lo) and finite(hi) else "")


def frame_flags(row) -> str:
    names = [c[len("flag_"):] for c in row.index if c.startswith("flag_") and bool(row[c])]
    return ", ".join(names)


def strip(rows: pd.DataFrame, images: dict, threshold: float) -> list[dict]:
    """One thumbnail per frame with its status: accepted, or what rejected it."""
    out = []
    for _, r in rows.iterrows():
        why = frame_flags(r)
        if float(r["confidence"]) < threshold:
            why = ", ".join(filter(None, [why, f"confidence < {threshold:.2f}"]))
        out.append({"uri": thumbnail_uri(images[(r["source_file"], int(r["frame_index"]))], r),
                    "label": f"#{int(r['frame_index'])}" if rows["source_file"].nunique() == 1
                    else f"{r['source_file']} #{int(r['frame_index'])}",
                    "accepted": bool(r["accepted"]), "status": "accepted" if r["accepted"] else f"rejected: {why}",
                    "confidence": f"{float(r['confidence']):.2f}"})
    return out


def cine_context(row: dict, rows: pd.DataFrame, images: dict, device: Device) -> dict:
    """What the template shows for one cine."""
    status = cine_status(row)
    measured = status == "measured"
    best = rows[(rows["source_file"] == row["best_source_file"])
                & (rows["frame_index"] == int(row["best_frame_index"]))].iloc[0]
    values = [{"name": label, "value": with_interval(row, key) if measured else "no measurement"}
              for label, key in ROWS]
    values.append({"name": "Cephalic index", "value": number(row.get("cephalic_index"), "") if measured
                   else "no measurement"})
    ages = [{"name": f"GA from {label} (Hadlock 1984)",
             "value": number(row.get(f"ga_{key}_weeks"), "weeks") if measured else "-"} for label, key in ROWS[::2]]
    return {"id": str(row["cine_id"]), "subject": str(row["subject_id"]), "status": status, "measured": measured,
            "files": ", ".join(dict.fromkeys(rows["source_file"])), "n_used": int(row["n_used"]),
            "n_frames": int(row["n_frames"]), "values": values, "ages": ages,
            "reason": "" if measured else rejection_reason(rows, device.threshold),
            "best": {"uri": overlay_uri(images[(best["source_file"], int(best["frame_index"]))], best),
                     "index": int(best["frame_index"]), "file": str(best["source_file"]),
                     "confidence": f"{float(best['confidence']):.3f}",
                     "width": int(best["width"]), "height": int(best["height"])},
            "spacing": number(best.get("spacing_mm"), "mm/px", 4), "plot": diameter_plot_uri(rows),
            "strip": strip(rows, images, device.threshold)}


def read_frames(frames: pd.DataFrame, sources: dict, max_pixels: int | None = None) -> dict:
    """(source_file, frame index) -> 2-D uint8 frame, read again from the measured files."""
    out = {}
    for rel in dict.fromkeys(frames["source_file"]):
        content = read_file(Path(sources[rel]), int(max_pixels or DEFAULT_MAX_PIXELS))
        for i, frame in enumerate(content.frames):
            out[(rel, i)] = np.asarray(frame)
    return out


def render(context: dict) -> str:
    """The page from the package's template (Jinja2, autoescaped)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape  # lazy: jinja2 only when the page is rendered

    env = Environment(loader=PackageLoader("fhbiometry.clinical", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined)
    return env.get_template(TEMPLATE).render(**context)


def write_report(frames: pd.DataFrame, summary: pd.DataFrame, sources: dict, out, device: Device,
                 errors=(), sr_files=(), max_pixels: int | None = None) -> Path:
    """``<out>/report.html`` for a predict run (``sources``: source_file -> path)."""
    images = read_frames(frames, sources, max_pixels) if not frames.empty else {}
    cines = [cine_context(row, frames[frames["cine_id"] == row["cine_id"]], images, device)
             for row in summary.to_dict("records")]
    context = {"device": device, "cines": cines, "errors": [str(e) for e in errors],
               "sr_files": [Path(p).as_posix() for p in sr_files], "title": "fhbiometry study report"}
    path = Path(out) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(context), encoding="utf-8")
    return path


"""Stage `qc`: label quality flags, naming policy, canonical order, report and overlays."""
from pathlib import Path
import shutil

import pandas as pd

from fhbiometry.params import get, load_params
from fhbiometry.qc import compute_flags, enforce_policy, plot_report, summarise
from fhbiometry.store import load_npz, write_csv, write_json


def main() -> None:
    params = load_params()
    cfg = get(params, "qc")
    manifest = pd.read_csv("data/frames/manifest.csv", dtype={"frame_id": str, "subject_id": str})
    issues_path = Path("data/frames/issues.csv")
    issues = pd.read_csv(issues_path) if issues_path.exists() else None
    labels = compute_flags(manifest, cfg)
    summary = summarise(labels, issues, cfg)
    write_csv(labels, "data/qc/labels.csv", digits=3)
    write_json("metrics/qc.json", summary)
    print(f"qc: {summary['frames']} frames, {summary['label_ok']} pass every check, "
          f"{summary['use_for_training']} used for training (policy {cfg['policy']}), "
          f"{summary['swapped_naming']} read with ofd/bpd exchanged; flags: "
          + ", ".join(f"{k} {v}" for k, v in summary["flags"].items() if v))
    if "csv_reference" in summary:
        t = summary["csv_reference"]
        print(f"qc: landmark table (reference): {t['rows']} rows, {t['ok']} pass every check, "
              f"{t['swapped_naming']} name the shorter diameter ofd; flags: "
              + ", ".join(f"{k} {v}" for k, v in t["flags"].items() if v))
    enforce_policy(labels, cfg)
    shutil.rmtree("plots/qc", ignore_errors=True)
    frames = load_npz("data/frames/frames.npz")
    written = plot_report(labels, manifest, frames, "plots/qc", int(cfg["overlay_limit"]))
    print(f"qc: wrote {len(written)} figures to plots/qc/")


if __name__ == "__main__":
    main()

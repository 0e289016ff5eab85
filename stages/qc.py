"""Stage `qc`: label quality flags, naming policy, canonical order, report and overlays."""
import shutil

import pandas as pd

from fhbiometry.config.params import load_params, run_stage
from fhbiometry.config.paths import Paths
from fhbiometry.data.qc import compute_flags, enforce_policy, plot_report, summarise
from fhbiometry.core.store import load_npz, write_csv, write_json


PARAMS = ("qc",)


def main() -> None:
    cfg, paths = load_params(only=PARAMS)["qc"], Paths()
    manifest = pd.read_csv(paths.manifest, dtype={"frame_id": str, "subject_id": str})
    issues = pd.read_csv(paths.issues) if paths.issues.exists() else None
    labels = compute_flags(manifest, cfg)
    summary = summarise(labels, issues, cfg)
    write_csv(labels, paths.labels, digits=3)
    write_json(paths.qc_metrics, summary)
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
    shutil.rmtree(paths.qc_plots, ignore_errors=True)
    frames = load_npz(paths.frames)
    written = plot_report(labels, manifest, frames, paths.qc_plots, int(cfg["overlay_limit"]))
    print(f"qc: wrote {len(written)} figures to plots/qc/")


if __name__ == "__main__":
    run_stage(main)

"""The columns of the model tables, declared once: where each figure lives in
metrics/eval/<model>.json.

``COLUMNS`` maps a column name to its dotted key and its scope: ``model`` keys are read at the
top of the file (names, sizes, timing, the breakdown sections), ``section`` keys in the section
the table is about (the headline, i.e. the top level, or a reference section ``vs_<name>``).
The success-rate columns (``within_<t>mm``) are those the evaluate stage wrote. Used by the
``plots`` stage (``plots/models/summary.csv`` and ``summary.md``: ``SUMMARY_COLUMNS``) and by
``fhbiometry results-table`` (the README's table).
"""
from __future__ import annotations

from fhbiometry.metrics.errors import threshold_of_key

SUCCESS = "within_*"   # placeholder in a column list: every success-rate column, by threshold

COLUMNS = {
    "model": ("model", "model"), "kind": ("model_kind", "model"), "arch": ("arch", "model"),
    "n_params": ("n_params", "model"), "n_evaluated": ("n_evaluated", "model"), "n": ("n", "section"),
    "mre_mm": ("mre_mm", "section"), "mre_mm_median": ("mre_mm_median", "section"),
    **{f"{d}_{stat}": (f"{d}.{stat}", "section") for d in ("bpd", "ofd")
       for stat in ("mae_mm", "median_mm", "p95_mm", "max_mm", "bias_mm")},
    "floor_mre_mm": ("floor.mre_mm", "section"), "floor_bpd_mae_mm": ("floor.bpd.mae_mm", "section"),
    "floor_ofd_mae_mm": ("floor.ofd.mae_mm", "section"),
    **{f"worst_px_{s}": (f"worst_diameter_error.original_px.{s}", "model") for s in ("mean", "median", "p95")},
    "worst_input_px_mean": ("worst_diameter_error.input_px.mean", "model"),
    "bpd_rel_pct": ("relative_error.bpd_pct", "model"), "ofd_rel_pct": ("relative_error.ofd_pct", "model"),
    "over_limit_share": ("relative_error.over_limit_share", "model"),
    "cpu_ms_per_frame": ("timing.cpu_ms_per_frame", "model"),
}

SUMMARY_COLUMNS = ("model", "kind", "arch", "n_params", "n_evaluated", "mre_mm", "mre_mm_median", SUCCESS,
                   "bpd_mae_mm", "bpd_median_mm", "bpd_p95_mm", "bpd_max_mm", "bpd_bias_mm",
                   "ofd_mae_mm", "ofd_median_mm", "ofd_p95_mm", "ofd_max_mm", "ofd_bias_mm",
                   "floor_mre_mm", "floor_bpd_mae_mm", "floor_ofd_mae_mm",
                   "worst_px_mean", "worst_px_median", "worst_px_p95", "worst_input_px_mean",
                   "bpd_rel_pct", "ofd_rel_pct", "over_limit_share", "cpu_ms_per_frame")


def lookup(tree: dict, dotted: str):
    """The value at a dotted key of nested dicts; None where any part is missing."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def value(metrics: dict, column: str, section: str = "headline"):
    """The figure of ``column`` (a name of ``COLUMNS`` or ``within_<t>mm``) in one model's eval
    metrics; ``section``: ``headline`` or a ``vs_<name>`` section (KeyError when the file has none)."""
    if section != "headline" and section not in metrics:
        raise KeyError(f"no section {section!r} in these eval metrics (sections: "
                       f"{sorted(k for k in metrics if k.startswith('vs_'))})")
    scoped = metrics if section == "headline" else metrics[section]
    if column.startswith("within_"):
        return lookup(scoped, f"success_rate.{column}")
    if column not in COLUMNS:
        raise KeyError(f"unknown table column {column!r}: declare it in metrics.table.COLUMNS")
    key, scope = COLUMNS[column]
    return lookup(metrics if scope == "model" else scoped, key)


def success_columns(all_metrics) -> list[str]:
    """The ``within_<t>mm`` keys any of the eval metrics has, by threshold."""
    keys = {k for m in all_metrics for k in (m.get("success_rate") or {})}
    return sorted(keys, key=threshold_of_key)


def expand(columns, all_metrics) -> list[str]:
    """``columns`` with ``SUCCESS`` replaced by the success-rate columns of ``all_metrics``."""
    out = []
    for c in columns:
        out.extend(success_columns(all_metrics) if c == SUCCESS else [c])
    return out


def table_rows(results: dict, columns=SUMMARY_COLUMNS, section: str = "headline") -> list[dict]:
    """One dict per model of ``results`` ({model: eval metrics}), keyed by the expanded columns;
    the ``model`` column is the results' key."""
    names = expand(columns, results.values())
    return [{c: (name if c == "model" else value(m, c, section)) for c in names} for name, m in results.items()]

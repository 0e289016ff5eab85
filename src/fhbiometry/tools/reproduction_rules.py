"""The tolerances of ``fhbiometry check-reproduction`` for the trained models' metrics
(docs/reproduction.md, "What a rerun may move").

A rerun on another CPU trains a different, equally good model, so each trained-model metric is
compared within what such reruns move it, with a rule per class of key:

* a **share** of frames (success rates, large-error shares, interval coverage): binomial noise on
  the frames (or cines) it counts, for the difference of two models' shares on them,
  ``K_SHARE * sqrt(2 p (1 - p) / n)`` with ``p`` the mean of the two values, at least
  ``MIN_FRAMES`` frames' worth (``MIN_FRAMES / n``); a **count** of frames the same in frames;
* a **mean, median or percentile** in mm, px or % over the ``n`` frames of a section (a bin, a
  subset): ``K_SD`` standard deviations of the figure measured over the whole test set (its
  ``NEAREST`` headline, or the model's MRE in the same unit), scaled by ``sqrt(N / n)``; a tail
  figure (a 95th percentile, an interval's half-width: a 90 % quantile) ``TAIL_FACTOR`` times
  that;
* an **AUC**: Hanley & McNeil's standard error on its two classes, gating only where both hold
  at least ``MIN_CLASS`` frames (an AUC over 5 good frames is noise);

and never less than the metric's own measured spread (``K_SD`` sd over the saved reruns, the
spread file) or the unit's ``MIN_TOLERANCE``. Metrics that describe rather than summarise
(``REPORTED``: per-landmark errors, maxima, spreads and limits of agreement, the confidence
threshold's bookkeeping, the interval calibration's constants and the candidate interval methods
it was chosen among) are compared the same way but reported, not gating: the chosen intervals'
coverage and half-widths gate. A numeric metric
that fits no class and has no measured spread is reported, never a failure by itself.
"""
from __future__ import annotations

import fnmatch
import math

K_SD = 4.0         # sds a metric may move, at least (``prediction_factor``: more with few runs)
PREDICTION = 0.995  # a new run lies within the prediction interval with 99 % probability
K_SHARE = 3.0      # binomial standard deviations a share (or count) may move
MIN_FRAMES = 2     # ... and at least this many frames' worth
MIN_CLASS = 10     # an AUC gates only where both of its classes have this many frames
MIN_TOLERANCE = {"*success_rate.*": 0.01, "*_px*": 0.2, "*": 0.02}  # first match; units of the metric

# described, not gating: per-landmark details, maxima, spreads, limits of agreement, and the
# confidence bookkeeping (threshold, kept / rejected frames); `confidence.auc_bad` is an AUC
REPORTED = ("*landmark_mre_*", "*_max", "*.max", "*.max_mm", "*.std_mm", "*.loa_high_mm", "*.loa_low_mm",
            "confidence.*", "per_subject.*.n_fallback", "intervals.calibration.*", "intervals.candidates.*")
AUC = ("*auc*",)
GATING_AUC = ("confidence.auc*",)   # AUCs that gate although their section is REPORTED
# a 95th percentile of fewer frames than this is about their maximum: reported, not gating
MIN_P95_FRAMES = 20
SHARE = ("*share*", "*success_rate.*", "*coverage*", "*_rate*", "*fraction*", "*within_*")
COUNT = ("*large_errors", "large_errors.frames", "*.n_bad", "*count*")
# the whole-test-set figure whose spread a section's figure (a bin's, say) scales from, by leaf
NEAREST = {"bpd_mae_mm": "bpd.mae_mm", "ofd_mae_mm": "ofd.mae_mm", "mre_mm": "mre_mm",
           "hc_mae_mm": "hc.vs_labels.mae_mm", "hc_ref_mae_mm": "hc.vs_reference.mae_mm",
           "normalised_error": "normalised_error.overall"}
# the model's figure in the same unit, for an unmeasured figure with no NEAREST (factor: unit)
BY_UNIT = (("*_px*", "mre_px", 1.0), ("*pct*", "normalised_error.overall", 100.0),
           ("*percent*", "normalised_error.overall", 100.0), ("*hc*", "hc.vs_labels.mae_mm", 1.0),
           ("*_mm*", "mre_mm", 1.0))
# a 95th percentile over ~50 frames is about its third-worst frame: relatively noisier than a mean
# (for exponential-like errors the sample p95's relative sd is ~1.5 x the mean's)
TAIL = ("*p95*", "*half_width*")
TAIL_FACTOR = 1.5
# the headline figures whose relative spreads are pooled into the model's (``model_cv``)
POOLED = ("bpd.mae_mm", "ofd.mae_mm", "mre_mm", "mre_mm_median", "bpd.median_mm", "ofd.median_mm",
          "bpd.p95_mm", "ofd.p95_mm", "hc.vs_labels.mae_mm", "hc.vs_labels.p95_mm", "mre_px",
          "mre_px_median", "normalised_error.overall")
COUNT_KEYS = ("n", "n_frames", "n_subjects", "n_evaluated", "n_cines")
# shares of a subset that the section counts under its own key (the large-error frames a
# rejection kept or removed), by leaf
SUBSET_COUNTS = {"kept_large_share": "n_large", "large_removed_share": "n_large"}


def matches(key: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def min_tolerance(key: str) -> float:
    return next(tol for pattern, tol in MIN_TOLERANCE.items() if fnmatch.fnmatchcase(key, pattern))


def frames_of(key: str, table: dict) -> int | None:
    """The frame count of the section holding ``key``: the nearest enclosing ``n`` (or
    ``n_frames``, ``n_subjects``), e.g. ``bins.ratio.above_0.85.n`` for that bin's figures, the
    model's ``n`` for a top-level one. ``bins.ratio.above_0.85`` has dots in its name, so every
    prefix of the key is tried, longest first."""
    parts = key.split(".")
    if parts[-1] in SUBSET_COUNTS:
        value = table.get(".".join(parts[:-1] + [SUBSET_COUNTS[parts[-1]]]))
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
    for cut in range(len(parts) - 1, -1, -1):
        prefix = ".".join(parts[:cut])
        for name in COUNT_KEYS:
            value = table.get(f"{prefix}.{name}" if prefix else name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def binomial(p: float, n: int) -> float:
    """How far a share ``p`` of ``n`` frames may move between two equally good models: the
    difference of two shares, each with binomial noise (variance 2 p (1 - p) / n)."""
    p = min(max(p, 0.0), 1.0)
    return max(K_SHARE * math.sqrt(2 * p * (1 - p) / n), MIN_FRAMES / n)


def auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982): the standard error of an AUC on ``n_pos`` and ``n_neg`` frames."""
    a = min(max(auc, 0.0), 1.0)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def auc_tolerance(key: str, old: float, new: float, table: dict) -> float | None:
    """``K_SHARE`` standard errors of the AUC, or None (not gating) where a class is small or
    the section does not say its classes (``n_bad`` and ``n``)."""
    section = key.rsplit(".", 1)[0] + "." if "." in key else ""
    n, n_bad = table.get(section + "n"), table.get(section + "n_bad")
    if not all(isinstance(v, int) for v in (n, n_bad)) or min(n_bad, n - n_bad) < MIN_CLASS:
        return None
    return K_SHARE * auc_se((old + new) / 2, n_bad, n - n_bad)


def nearest_sd(key: str, spread: dict) -> tuple[float, str] | None:
    """(sd, the figure it was measured on) of the whole-test-set figure nearest to ``key``: its
    ``NEAREST`` headline (a bin's ``bpd_mae_mm`` -> ``bpd.mae_mm``), else the model's figure in
    the same unit (``BY_UNIT``), else None."""
    leaf = key.rsplit(".", 1)[-1]
    prefix = key[:key.index("bins.")] if "bins." in key else ""   # vs_csv.bins.x -> vs_csv.bpd.mae_mm
    candidates = [(prefix + NEAREST[leaf], 1.0)] if leaf in NEAREST else []
    candidates += [(prefix + ref, factor) for pattern, ref, factor in BY_UNIT
                   if fnmatch.fnmatchcase(key, pattern)]
    for ref, factor in candidates:
        if ref in spread and ref != key:
            return spread[ref] * factor, ref
    return None


def prediction_factor(runs: int) -> float:
    """How many sample sds (over ``runs`` runs) a new run may lie from them: the two-sided
    ``PREDICTION`` quantile of Student's t with runs - 1 degrees of freedom, times
    sqrt(1 + 1 / runs) (a prediction interval), at least ``K_SD``: 6.5 for 4 runs, 4.4 for 6."""
    from scipy.stats import t  # lazy: scipy.stats (1 s to import) only where a prediction interval is computed; kept out of `fhbiometry --help`

    if runs < 2:
        raise ValueError("the spread needs at least two runs")
    return max(K_SD, float(t.ppf(PREDICTION, runs - 1)) * math.sqrt(1 + 1 / runs))


def tolerance(key: str, old: float, new: float, table: dict, spread: dict,
              k: float = K_SD) -> tuple[float | None, str]:
    """(allowed |new - old|, or None where no rule applies; the rule in words) for one numeric
    trained-model metric. ``table``: the model's committed metrics (flattened), for the frame
    counts; ``spread``: that model's measured sds (flattened keys)."""
    own = k * spread[key] if key in spread else None
    n_all, n = frames_of("", table) or 1, frames_of(key, table)
    if matches(key, AUC):
        tol = auc_tolerance(key, old, new, table)
        if tol is None:
            return None, f"an AUC with a class under {MIN_CLASS} frames"
        return max(tol, own or 0.0), f"{K_SHARE:g} Hanley-McNeil se"
    if matches(key, SHARE) and n:
        return max(binomial((old + new) / 2, n), own or 0.0), f"binomial on {n} frames"
    if matches(key, COUNT) and n:
        return max(n * binomial((old + new) / (2 * n), n), own or 0.0), f"binomial on {n} frames"
    if matches(key, ("*p95*",)) and n and n < MIN_P95_FRAMES:
        return None, f"a 95th percentile of {n} frames (about their maximum)"
    subset = bool(n) and n < n_all
    near = nearest_sd(key, spread)
    if near is None:
        if own is None:
            return None, "no measured spread and no rule"
        near = (own / k, key)
    sd, ref = near
    if not subset and own is not None:
        sd, ref = own / k, key
    scale = math.sqrt(n_all / n) if subset else 1.0
    rule = f"{k:g} sd of {ref}" + (f" x sqrt({n_all}/{n})" if subset else "")
    tail = TAIL_FACTOR if matches(key, TAIL) else 1.0
    size = (abs(old) + abs(new)) / 2   # symmetric: the same tolerance whichever run is committed
    relative = K_SD * model_cv(table, spread) * tail * size * scale   # pooled: many degrees of freedom
    if relative > max(k * sd * scale, own or 0.0):
        rule = f"{K_SD:g} x the model's relative spread" + (f" x sqrt({n_all}/{n})" if subset else "")
    return max(k * sd * scale, own or 0.0, relative, min_tolerance(key)), rule


def model_cv(table: dict, spread: dict) -> float:
    """The model's relative run-to-run spread: the root mean square of sd / value over its
    ``POOLED`` headline figures (one metric's sd over a few runs is itself uncertain by about
    half; pooled over a dozen figures it is not), with the committed values in ``table``."""
    ratios = [spread[k] / abs(table[k]) for k in POOLED
              if k in spread and isinstance(table.get(k), (int, float)) and table[k]]
    return math.sqrt(sum(r * r for r in ratios) / len(ratios)) if ratios else 0.0

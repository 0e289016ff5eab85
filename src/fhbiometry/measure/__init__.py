"""measure: ``fhbiometry predict``: a trained model applied to new scans.

Owns ``api`` (the public ``predict`` / ``measure``), ``settings`` (the parameter file and the
evaluate stage's metrics, resolved beside the model), ``discovery`` (inputs found and read),
``frames`` (the per-frame table), ``aggregate`` (one row per cine), ``overlays`` (drawings),
``terminal`` (the printed table) and ``outputs`` (frames.csv, summary.csv, summary.json).

Never imports: training, evaluation, reporting, tools.
"""

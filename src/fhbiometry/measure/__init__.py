"""measure: ``fhbiometry predict``: a trained model applied to new scans.

Owns ``predict`` (input discovery, per-frame table, cine summary, overlays, outputs).

Never imports: training, evaluation, reporting, tools.
"""

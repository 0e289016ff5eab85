"""trust: what is fitted on validation frames to qualify a prediction.

Owns ``confidence`` (the per-frame confidence and the cine medians) and ``calibration`` (the size
calibration factors).

Never imports: codecs, models, training, inference, evaluation, measure, reporting, tools; torch.
"""

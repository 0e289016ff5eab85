"""metrics: figures of predictions against the truth.

Owns ``breakdown`` (HC, normalised error, large errors, bins, subject bootstrap intervals).

Never imports: codecs, models, training, inference, evaluation, measure, reporting, tools; torch.
"""

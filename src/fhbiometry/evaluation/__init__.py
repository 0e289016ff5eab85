"""evaluation: the evaluate stage: a trained model on the test split, every metric.

Owns ``evaluate``.

Never imports: training, measure, reporting, tools.
"""

"""metrics: figures of predictions against the truth, the one home of every metric.

Owns ``errors`` (point and diameter errors, summary statistics, success rates, Bland-Altman,
worst-diameter error in pixels, relative error), ``validation`` (the figures training chooses
its best epoch on; imports only core, so the train stages do not depend on the rest),
``breakdown`` (HC, normalised error, large errors, bins by head size, ratio, pixel size and edge
cut), ``bootstrap`` (intervals over subjects, paired changes), ``rejection`` (how well a score
separates bad frames: AUC, figures at a threshold) and ``table`` (the model tables' columns,
declared once).

Never imports: codecs, models, training, inference, evaluation, measure, reporting, tools; torch.
"""

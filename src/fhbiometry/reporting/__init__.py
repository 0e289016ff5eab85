"""reporting: the comparison figures of the plots stage and the drawing helpers.

Owns ``plots`` and ``viz`` (byte-stable PNGs, landmark drawing). The heatmap figures run a
trained model through ``inference`` (torch, imported inside that function only).

Never imports: training, evaluation, measure, tools.
"""

"""data: the data stages behind training: frames archive, label QC, split, prepared inputs.

Owns ``extract`` (raw folder -> frames archive, manifest, issues), ``qc`` (label quality flags,
policy, naming), ``split`` (stable hash split by subject), ``neardup`` (perceptual hashes) and
``prepare`` (letterboxed inputs per split; ``accepted_rows``).

Never imports: codecs, models, training, inference, evaluation, measure, tools; torch.
"""

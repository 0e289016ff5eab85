"""readers: everything that turns an input file into frames or labels.

Owns ``media`` (DICOM, video, stills: frames, pixel spacing, subject ids, size limits, the
record of every conversion) and ``labels`` (landmark tables, HC18 ellipse annotations).

Never imports: data, codecs, models, training, inference, evaluation, measure, reporting, tools;
torch.
"""

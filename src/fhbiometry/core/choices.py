"""Every choice of params.yaml that code implements, written once.

The extension points are ``Registry`` objects (``core.registry``): each name points at its
implementation as a ``"module:attribute"`` string, so the params schema (config/, torch-free)
derives its allowed values from them without importing the implementation, and the
implementation dispatches through the same registry. Adding a choice is one entry here (or one
``register`` call, e.g. from a test or a plug-in module) plus its code: docs/architecture.md,
"How to add a model / a decoder / an input format / a metric". The fixed name lists below them
(split names, devices) are not extension points, only written once.
"""
from __future__ import annotations

from fhbiometry.core.registry import Registry

# ---- models (models/networks.py) --------------------------------------------------------------
# architecture -> its torchvision constructor; meta kinds: the model kinds built on it,
# head: the state-dict prefix of the classification layer a regressor replaces
ARCHS = Registry("models.<name>.arch")
ARCHS.register("alexnet", "torchvision.models:alexnet", kinds=("regression",), head="classifier.6.")
ARCHS.register("resnet18", "torchvision.models:resnet18", kinds=("regression", "heatmap", "contour"), head="fc.")
ARCHS.register("resnet34", "torchvision.models:resnet34", kinds=("regression",), head="fc.")
TRUNK_STRIDE = 32                        # every trunk's output stride: the input size is a multiple of it
HEATMAP_STRIDES = (1, 2, 4, 8, 16, 32)   # the deconvolution head halves the trunk's stride 32
DEFAULT_HEAD_CHANNELS = 128              # the heatmap head's width (models.<name>.head_channels)
DEFAULT_HEAD_SKIPS = True                # its skip connections (models.<name>.head_skips)

# ---- codecs (codecs/): model kind -> its codec class ----------------------------------------
# meta network: the network models/networks.py builds for the kind (coordinates: the
# architecture's own head to 2 x landmarks numbers; heatmap: HeatmapNet); extra_channels: output
# channels beyond one per landmark (contour: the skull band)
KINDS = Registry("models.<name>.kind")
KINDS.register("regression", "fhbiometry.codecs.regression:RegressionCodec", network="coordinates")
KINDS.register("heatmap", "fhbiometry.codecs.heatmap:HeatmapCodec", network="heatmap", extra_channels=0)
KINDS.register("contour", "fhbiometry.codecs.contour:ContourCodec", network="heatmap", extra_channels=1)

# heatmap decoding: refinement of the peak cells (codecs/decoders.py)
DECODERS = Registry("decode.method")
DECODERS.register("argmax", "fhbiometry.codecs.decoders:refine_argmax")
DECODERS.register("quadratic", "fhbiometry.codecs.decoders:refine_quadratic")
DECODERS.register("soft_argmax", "fhbiometry.codecs.decoders:refine_soft_argmax")
DECODERS.register("ellipse", "fhbiometry.codecs.decoders:refine_ellipse")

# regression targets: how the eight numbers express input pixels (codecs/regression.py)
COORDINATES = Registry("codec.coordinates")
COORDINATES.register("normalised", "fhbiometry.codecs.regression:Normalised")
COORDINATES.register("pixels", "fhbiometry.codecs.regression:Pixels")

# training losses, elementwise (codecs/losses.py); meta kinds: the model kinds that may use it
LOSSES = Registry("train.loss")
LOSSES.register("mse", "fhbiometry.codecs.losses:squared_error", kinds=("regression", "heatmap", "contour"))
LOSSES.register("l1", "fhbiometry.codecs.losses:absolute_error", kinds=("regression",))
LOSSES.register("smooth_l1", "fhbiometry.codecs.losses:smooth_l1_error", kinds=("regression",))

# ---- training (training/schedules.py) ----------------------------------------------------------
SCHEDULES = Registry("train.schedule")
SCHEDULES.register("cosine", "fhbiometry.training.schedules:cosine")
SCHEDULES.register("step", "fhbiometry.training.schedules:step")
SCHEDULES.register("constant", "fhbiometry.training.schedules:constant")

OPTIMIZERS = Registry("train.optimizer")
OPTIMIZERS.register("adamw", "fhbiometry.training.schedules:adamw")
OPTIMIZERS.register("sgd", "fhbiometry.training.schedules:sgd")

# ---- fixed name lists --------------------------------------------------------------------------
FORMATS = ("dicom", "video", "png")               # synthesize.formats: synth/ writers
SPLITS = ("train", "val", "test")                 # config.paths, data.split, data.prepare, schema
SPLIT_METHODS = ("hash", "head_size")             # data/split.py make_split
DEVICE_TYPES = ("auto", "cpu", "cuda", "mps")     # training/device.py resolve_type
AMP_MODES = ("none", "bf16", "fp16", "auto")      # training/device.py AMP_DTYPES (+ none; auto: bf16 where native)
SIZE_CALIBRATIONS = ("none", "validation")        # trust/calibration.py, evaluation size_factors
INTERVAL_SCORES = ("none", "flip", "geometry", "peak", "fitted", "tta")   # intervals.score: trust/intervals.py
INTERVAL_SCALES = ("mm", "relative")              # intervals.scale: trust/intervals.py
CONTOUR_SOURCES = ("both", "contour", "landmarks")  # decode.contour: codecs/contour.py, what the ellipse is fitted to
DEFAULT_OPSET = 18  # ONNX opset of `fhbiometry export`: the torch.onnx (dynamo) exporter's native one, no conversion

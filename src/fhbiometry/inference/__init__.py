"""inference: a checkpoint to landmarks in original pixels.

Owns ``runner`` (``load_model``, batched forward passes, flip test-time augmentation, the torch
backend), ``onnx_backend`` (export and the ONNX Runtime backends) and ``backends`` (the one
registry of backends by name: ``BACKENDS``, ``@register_backend``, ``make_backend``).

Never imports: training, evaluation, measure, reporting, tools.
"""

"""inference: a checkpoint to landmarks in original pixels.

Owns ``runner`` (``load_model``, batched forward passes, flip test-time augmentation, the torch
backend) and ``onnx_backend`` (export and the ONNX Runtime backends).

Never imports: training, evaluation, measure, reporting, tools.
"""

"""models: the networks and their checkpoints.

Owns ``networks`` (AlexNet / ResNet-18 / ResNet-34 regressors, the ResNet-18 heatmap model,
``to_tensor``) and ``checkpoint`` (safetensors checkpoints with JSON metadata).

Never imports: codecs, training, inference, evaluation, measure, reporting, tools.
"""

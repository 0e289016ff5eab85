"""training: the training loop and what it needs.

Owns ``loop`` (``fit``: epochs, validation, DVCLive logs, the best checkpoint), ``augment``
(joint image + landmark augmentation), ``device`` (device and precision choice),
``distributed`` (torch.distributed helpers), ``schedules`` (learning-rate schedules and
optimisers, registered in ``core.choices``) and ``resume`` (crash-safe resumption).

Never imports: evaluation, measure, reporting, tools.
"""

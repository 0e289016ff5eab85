"""refinement: head-normalised refinements: a second network on crops of the original frame.

Owns ``crops`` (a split's arrays re-cut around given heads, and the jittered training crops),
``heads`` (a model's points on a split), ``settings`` (a refinement's params as a model's) and
``apply`` (a refinement on new frames, for ``fhbiometry predict``), and the bodies of its three
stages: ``crop_stage`` (``refine_crops``), ``train_stage``
(``train_refine``), ``evaluate_stage`` (``evaluate_refine``). The crop geometry is ``core.crop``.

Never imports: measure, clinical, reporting, tools.
"""

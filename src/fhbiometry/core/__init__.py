"""core: the pure, dependency-free basics every layer shares.

Owns landmark names and geometry (``geometry``), byte-stable writers (``store``), the
original-image <-> network-input mapping (``letterbox``) and the clinical formulas (``biometry``:
cephalic index, Hadlock gestational age), and every implemented choice written once: ``registry``
(``Registry``: name -> implementation) and ``choices`` (the registries of the models, codecs,
decoders, coordinate modes, losses, schedules and optimisers; split names, devices).

Never imports: any other fhbiometry subpackage; torch, torchvision, dvclive.
"""

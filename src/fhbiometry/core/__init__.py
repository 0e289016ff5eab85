"""core: the pure, dependency-free basics every layer shares.

Owns landmark names and geometry (``geometry``), byte-stable writers (``store``), the
original-image <-> network-input mapping (``letterbox``) and the clinical formulas (``biometry``:
cephalic index, Hadlock gestational age).

Never imports: any other fhbiometry subpackage; torch, torchvision, dvclive.
"""

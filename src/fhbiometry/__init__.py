"""Landmark-based fetal head biometry: frames to BPD/OFD in millimetres."""
__version__ = "0.1.0"

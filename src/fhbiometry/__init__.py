"""Landmark-based fetal head biometry: frames to BPD/OFD in millimetres."""
__version__ = "0.1.0"


def __getattr__(name):
    """``fhbiometry.predict(...)`` without importing torch when another module is imported."""
    if name == "predict":
        from .predict import predict

        return predict
    raise AttributeError(f"module 'fhbiometry' has no attribute {name!r}")

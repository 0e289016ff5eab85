"""Landmark-based fetal head biometry: frames to BPD/OFD in millimetres."""
__version__ = "0.1.0"


def __getattr__(name):
    """``fhbiometry.predict(...)`` (fhbiometry.measure.predict.predict), imported on first use so that
    importing the package or another module of it never loads torch or the predict module."""
    if name == "predict":
        import importlib

        return importlib.import_module(f"{__name__}.predict").predict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

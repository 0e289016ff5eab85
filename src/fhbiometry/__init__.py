"""Landmark-based fetal head biometry: frames to BPD/OFD in millimetres."""
import importlib

__version__ = "0.1.0"


def __getattr__(name):
    """``fhbiometry.predict(...)`` (``fhbiometry.measure.api.predict``), imported on first use so that
    importing the package or another module of it never loads torch or the measure modules."""
    if name == "predict":
        # by name, not an import statement: every stage imports this package, and dvc.yaml's deps
        # (tests/test_dvc_deps.py) follow import statements, so a stage would depend on measure/
        return importlib.import_module("fhbiometry.measure.api").predict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

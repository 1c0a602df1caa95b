"""uniad-edge: UniAD from PyTorch training to fused ONNX, TensorRT FP16 and a camera runtime."""

__version__ = "0.1.0"

__all__ = ["Detector", "__version__"]


def __getattr__(name: str) -> object:
    """Lazy `from uniad_edge import Detector`: `import uniad_edge` stays free of OpenCV and ORT.
    The API's Detector also opens checkpoints (PyTorch eager, from above the runtime)."""
    if name == "Detector":
        from .backends import register_model_backends
        from .runtime.detector import Detector

        register_model_backends()

        return Detector
    raise AttributeError(f"module 'uniad_edge' has no attribute {name!r}")

"""uniad-edge: UniAD from PyTorch training to fused ONNX, TensorRT FP16 and a camera runtime."""

__version__ = "0.1.0"

__all__ = ["Detector", "__version__"]


def __getattr__(name: str) -> object:
    """Lazy `from uniad_edge import Detector`: `import uniad_edge` stays free of OpenCV and ORT."""
    if name == "Detector":
        from .runtime.detector import Detector

        return Detector
    raise AttributeError(f"module 'uniad_edge' has no attribute {name!r}")

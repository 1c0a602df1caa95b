"""uniad-edge: UniAD from PyTorch training to fused ONNX, TensorRT FP16 and a camera runtime."""

__version__ = "0.1.0"

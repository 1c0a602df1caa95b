"""The PyTorch model (training stack only: imports torch and efficientnet_pytorch)."""

from .backbone import build_backbone
from .backbone_base import Backbone
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .uniad import FusedUniAD, UniAD, build_model

__all__ = [
    "Backbone",
    "Checkpoint",
    "FusedUniAD",
    "UniAD",
    "build_backbone",
    "build_model",
    "load_checkpoint",
    "save_checkpoint",
]

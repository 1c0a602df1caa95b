"""Training on cached backbone features (torch; `pip install uniad-edge[train]`)."""

from .config import TrainConfig
from .thresholds import RULE as THRESHOLD_RULE
from .thresholds import fit_thresholds
from .trainer import TrainResult, train

__all__ = ["THRESHOLD_RULE", "TrainConfig", "TrainResult", "fit_thresholds", "train"]

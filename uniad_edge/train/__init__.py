"""Training on cached backbone features (torch; `pip install uniad-edge[train]`).

`TrainConfig` is torch-free and imported eagerly, so the CLI shows its defaults in `--help`
without loading torch; the trainer and thresholds load on first use.
"""

from typing import Any

from .config import TrainConfig

__all__ = ["THRESHOLD_RULE", "TrainConfig", "TrainResult", "fit_thresholds", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from . import trainer

        return getattr(trainer, name)
    if name in ("fit_thresholds", "THRESHOLD_RULE"):
        from . import thresholds

        return thresholds.fit_thresholds if name == "fit_thresholds" else thresholds.RULE
    raise AttributeError(f"module 'uniad_edge.train' has no attribute {name!r}")

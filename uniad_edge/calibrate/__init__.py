"""`uniad-edge calibrate`: thresholds set on the station's own validation images, with an honest
bound on the false-alarm rate, written into the deployed artifact with a history to roll back."""

from .calibrator import Calibration, Row, calibrate, calibrate_scores
from .config import CalibrateConfig
from .policy import POLICIES, Policy, choose
from .stats import images_needed, upper_bound

__all__ = [
    "POLICIES",
    "CalibrateConfig",
    "Calibration",
    "Policy",
    "Row",
    "calibrate",
    "calibrate_scores",
    "choose",
    "images_needed",
    "upper_bound",
]

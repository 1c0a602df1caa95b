"""Evaluation of a checkpoint on a test split (torch + scikit-learn)."""

from .evaluator import EvalReport, evaluate
from .metrics import aupro, auroc, pro_curve

__all__ = ["EvalReport", "aupro", "auroc", "evaluate", "pro_curve"]

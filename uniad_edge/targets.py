"""Seam tables (backends, backbones, export steps) name their code as "package.module:attr"
strings, so a table entry costs no import until it is used; this resolves one."""

from __future__ import annotations

import importlib
from typing import Any


def load_target(target: str) -> Any:
    """The attribute `target` ("package.module:attr") names, importing its module now.

    An ImportError (a missing optional dependency) passes through for the caller to explain.
    """
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)

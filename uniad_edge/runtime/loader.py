"""The import path `uniad_edge.runtime.loader.load_backend` that scripts and older code use; the
backends themselves live in one table, `uniad_edge.runtime.backends.registry`."""

from __future__ import annotations

from .backends.registry import load_backend
from .backends.registry import resolve as backend_for

__all__ = ["backend_for", "load_backend"]

"""Installed versions of what results depend on, read without importing the packages."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

PACKAGES = (
    "uniad-edge",
    "torch",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "onnxruntime-gpu",
    "tensorrt",
    "numpy",
    "opencv-python",
)


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Only the packages that are installed: absent ones say nothing about a result."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found

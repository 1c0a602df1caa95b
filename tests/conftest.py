"""Shared fixtures. Models are random-init: ImageNet weights cannot be downloaded in CI."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import torch

from uniad_edge.presets import PRESETS, Preset


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def small_preset() -> Preset:
    """mvtec-224 geometry with a lighter transformer: same code paths, quicker tests."""
    return PRESETS["mvtec-224"].replace(name="test-224", num_encoder_layers=2, num_decoder_layers=2)


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make `import tensorrt` fail even where it is installed, and forget the cached probe."""
    from uniad_edge.trt import environment

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    environment.detect.cache_clear()
    yield
    environment.detect.cache_clear()

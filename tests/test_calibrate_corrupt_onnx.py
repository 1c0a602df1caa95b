"""A corrupt .onnx given to `calibrate` gets the same one-line error with its fix as `info`."""

from __future__ import annotations

import pytest

from uniad_edge.artifacts import read_thresholds
from uniad_edge.errors import UniadError


def test_corrupt_onnx_names_the_file_and_the_fix(tmp_path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"garbage")
    with pytest.raises(UniadError) as caught:
        read_thresholds(model)
    message = str(caught.value)
    assert str(model) in message and "not a loadable ONNX model" in message
    assert "re-export" in message and "\n" not in message

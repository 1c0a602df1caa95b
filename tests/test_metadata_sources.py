"""Issue 14 bug 7: embedded metadata vs the JSON sidecar, as the runtime and `info` read them.

The runtime trusts the metadata embedded in the .onnx; a sidecar edited afterwards must not be
ignored silently (one warning naming both files), and `info` must read the sidecar exactly when
the runtime does (no embedded metadata).
"""

from __future__ import annotations

import json
import logging

from cli_helpers import run_main
from onnx_fixtures import build_model

from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend


def _edit_sidecar(model, **changes) -> None:
    sidecar = model.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data.update(changes)
    sidecar.write_text(json.dumps(data))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_edited_sidecar_is_warned_about_once_naming_both_files(tmp_path, caplog) -> None:
    model = tmp_path / "m.onnx"
    build_model(model, threshold=40.0)
    _edit_sidecar(model, thresholds={"global": 7.0, "per_class": {}, "rule": "edited"})
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        backend = OnnxRuntimeBackend(model)
        assert backend.metadata.thresholds.global_ == 40.0  # the embedded copy is used
        backend.close()
    (message,) = _warnings(caplog)
    assert str(model) in message and str(model.with_suffix(".json")) in message
    assert "thresholds" in message


def test_matching_sidecar_gives_no_warning(tmp_path, caplog) -> None:
    model = tmp_path / "m.onnx"
    build_model(model)
    caplog.set_level(logging.WARNING)
    OnnxRuntimeBackend(model).close()
    assert _warnings(caplog) == []


def test_info_reads_the_sidecar_when_nothing_is_embedded(tmp_path, capsys) -> None:
    model = tmp_path / "bare.onnx"
    build_model(model, threshold=12.5, embed_metadata=False)
    assert OnnxRuntimeBackend(model).metadata.thresholds.global_ == 12.5
    assert run_main("info", model, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["thresholds"]["global"] == 12.5 and info["preset"] == "fixture"
    assert info["metadata_source"] == str(model.with_suffix(".json"))

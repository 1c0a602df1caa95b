"""Issue 14 bug 7: embedded metadata vs the JSON sidecar, as the runtime and `info` read them.

The runtime trusts the metadata embedded in the .onnx; the sidecar is only a copy, so thresholds
edited into it decide nothing. That must not pass silently: every open says so in one line naming
both files and where the line's thresholds live (computed per open, no memory between opens), and
`info` must read the sidecar exactly when the runtime does (no embedded metadata).
"""

from __future__ import annotations

import json
import logging

from cli_helpers import run_main
from onnx_fixtures import build_model

from uniad_edge.artifacts import open_artifact
from uniad_edge.line_thresholds import thresholds_path
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend


def _edit_sidecar(model, **changes) -> None:
    sidecar = model.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data.update(changes)
    sidecar.write_text(json.dumps(data))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_edited_sidecar_is_warned_about_at_each_open_naming_both_files(tmp_path, caplog) -> None:
    model = tmp_path / "m.onnx"
    build_model(model, threshold=40.0)
    _edit_sidecar(model, thresholds={"global": 7.0, "per_class": {}, "rule": "edited"})
    caplog.set_level(logging.WARNING)
    for opened in range(1, 3):
        backend = OnnxRuntimeBackend(model)
        assert backend.metadata.thresholds.global_ == 40.0  # the embedded copy is used
        backend.close()
        assert len(_warnings(caplog)) == opened  # one line per open, not forgotten after one
    message = _warnings(caplog)[-1]
    assert str(model) in message and str(model.with_suffix(".json")) in message
    assert "IGNORED" in message and "7.0" in message
    assert str(thresholds_path(model)) in message and "uniad-edge calibrate" in message
    (note,) = open_artifact(model).warnings  # `info` and every reader see the same line
    assert note == message


def test_info_warns_about_an_edited_sidecar(tmp_path, capsys) -> None:
    model = tmp_path / "m.onnx"
    build_model(model, threshold=40.0)
    _edit_sidecar(model, thresholds={"global": 7.0, "per_class": {}, "rule": "edited"})
    assert run_main("info", model, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["thresholds"]["global"] == 40.0
    assert any("IGNORED" in w and "uniad-edge calibrate" in w for w in info["warnings"])


def test_sidecar_differing_only_outside_thresholds_gives_no_warning(tmp_path, caplog) -> None:
    model = tmp_path / "m.onnx"
    build_model(model, threshold=40.0)
    _edit_sidecar(model, note="copied by hand")
    caplog.set_level(logging.WARNING)
    OnnxRuntimeBackend(model).close()
    assert _warnings(caplog) == [] and open_artifact(model).warnings == []


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

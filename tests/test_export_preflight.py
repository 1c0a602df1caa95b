"""A format's pre-flight check runs before the export: `export --format triton` into a repository
whose version already exists fails at once with the one-line --force message, without tracing,
verifying or writing anything; with --force the export proceeds and replaces the version."""

from __future__ import annotations

import onnx
import pytest
from cli_helpers import run_main
from model_helpers import TINY, tiny_checkpoint
from onnx_fixtures import build_model

from uniad_edge.errors import UniadError
from uniad_edge.export import FORMATS, export, pipeline
from uniad_edge.export.formats import ExportFormat
from uniad_edge.export.options import TritonOptions


def _never(*args, **kwargs):
    raise AssertionError("the ONNX export ran although the pre-flight check should have refused")


def _snapshot(root):
    return {p: p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_existing_triton_version_fails_before_any_export(tmp_path, monkeypatch, capsys) -> None:
    ckpt = tiny_checkpoint(tmp_path / "tiny.pth")
    out = tmp_path / "repo"
    version = out / "uniad" / "1"
    version.mkdir(parents=True)
    (version / "model.onnx").write_bytes(b"the served model")
    before = _snapshot(out)
    monkeypatch.setattr(pipeline, "export_onnx", _never)
    monkeypatch.setattr(pipeline, "trace_to_onnx", _never)
    args = ["export", "--ckpt", ckpt, "--format", "triton", "--out", out, "--no-verify"]
    assert run_main(*args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{version} already exists; pass --force" in err
    assert "writing" not in captured.out + captured.err
    assert _snapshot(out) == before  # nothing new, nothing touched
    assert (version / "model.onnx").read_bytes() == b"the served model"

    # --force: the check lets it through and the export replaces the version.
    graph = tmp_path / "graph.onnx"
    build_model(graph, input_size=TINY.input_size, embed_metadata=False, sidecar=False)
    monkeypatch.undo()
    monkeypatch.setattr(pipeline, "trace_to_onnx", lambda *args: onnx.load(str(graph)))
    monkeypatch.setattr(pipeline, "graph_problems", lambda *args: [])  # no LayerNorm in it
    assert run_main(*args, "--force") == 0
    assert onnx.load(str(version / "model.onnx")).graph.input[0].name
    assert sorted(p.name for p in out.iterdir()) == ["uniad"]


def test_a_formats_check_is_one_table_field(tmp_path, monkeypatch) -> None:
    """Any format's check runs before the ONNX export and its error is what the user sees."""
    assert FORMATS["triton"].check is not None
    monkeypatch.setitem(FORMATS, "repo", ExportFormat("repo", "a model repository", check=_refuse))
    monkeypatch.setattr(pipeline, "export_onnx", _never)
    with pytest.raises(UniadError, match="refused before the export"):
        export(tmp_path / "missing.pth", format="repo", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _refuse(options) -> None:
    raise UniadError(f"{options.out}: refused before the export")


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", ".hidden", "", "x" * 200, "a\nb"])
@pytest.mark.parametrize("fmt", ["onnx", "triton"])
def test_a_name_that_is_not_one_plain_file_name_fails_before_any_export(
    tmp_path, monkeypatch, capsys, name, fmt
) -> None:
    """`--name ../../evil` would write outside --out: refused up front in one line, no file."""
    ckpt = tiny_checkpoint(tmp_path / "tiny.pth")
    out = tmp_path / "deep" / "out"
    monkeypatch.setattr(pipeline, "_resolve_checkpoint", _never)
    monkeypatch.setattr(pipeline, "trace_to_onnx", _never)
    before = _snapshot(tmp_path)
    assert run_main("export", "--ckpt", ckpt, "--format", fmt, "--out", out, "--name", name) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--name" in err and "one plain file name" in err
    assert _snapshot(tmp_path) == before


def test_triton_model_names_follow_the_same_rule() -> None:
    with pytest.raises(UniadError, match="Triton model name '../m' must be one plain file name"):
        TritonOptions(name="../m")
    assert TritonOptions(name="uniad-v2.1_a").name == "uniad-v2.1_a"

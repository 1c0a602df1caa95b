"""Issue 28 item 11: `info` on a large ONNX reads its header, not its weights (a 2 GB sparse
model took 2.18 GB of memory), and a symlink loop, a folder and a broken link each get their own
one-line error instead of "no such file"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model

from uniad_edge.artifacts import open_artifact
from uniad_edge.errors import UniadError
from uniad_edge.metadata import METADATA_KEY
from uniad_edge.onnx_header import read_onnx_header

PAD = 1 << 30  # bytes of zero weights, a hole in a sparse file
RSS_LIMIT_KB = 400 * 1024  # the interpreter and the CLI's imports take ~100 MB


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _sparse_model(small: Path, path: Path) -> None:
    """`small` with an unused PAD-byte initializer in its graph, metadata after the graph (so a
    reader must skip the weights to reach it); the weights are a hole in the file."""
    model = onnx.load(str(small))
    graph = model.graph.SerializeToString()
    properties = b"".join(_field(14, p.SerializeToString()) for p in model.metadata_props)
    del model.metadata_props[:]
    model.ClearField("graph")
    tensor = onnx.TensorProto(name="pad", data_type=onnx.TensorProto.UINT8, dims=[PAD])
    raw_head = tensor.SerializeToString() + _varint(9 << 3 | 2) + _varint(PAD)
    initializer_head = _varint(5 << 3 | 2) + _varint(len(raw_head) + PAD) + raw_head
    graph_size = len(graph) + len(initializer_head) + PAD
    with open(path, "wb") as file:
        file.write(model.SerializeToString() + _varint(7 << 3 | 2) + _varint(graph_size))
        file.write(graph + initializer_head)
        file.seek(PAD, os.SEEK_CUR)
        file.write(properties)
    assert os.stat(path).st_blocks * 512 < 1 << 20  # really sparse: no 1 GiB written here


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_info_on_a_large_onnx_reads_the_header_only(tmp_path) -> None:
    small = tmp_path / "small.onnx"
    meta = build_model(small, sidecar=False)
    big = tmp_path / "big.onnx"
    _sparse_model(small, big)
    assert read_onnx_header(big).properties == read_onnx_header(small).properties
    assert open_artifact(big).metadata == meta
    # VmHWM, the child's own peak: ru_maxrss would start at the forking pytest's size.
    probe = (
        "import atexit, re, sys\n"
        "atexit.register(lambda: print('peak', re.search(r'VmHWM:\\s*(\\d+)', "
        "open('/proc/self/status').read()).group(1), file=sys.stderr))\n"
        "from uniad_edge.cli import main\n"
        f"sys.argv = ['uniad-edge', 'info', {str(big)!r}, '--json']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["name"] == meta.name and info["inputs"]["image"][0] == "tensor(uint8)"
    peak = int(done.stderr.split("peak")[-1])
    assert peak < RSS_LIMIT_KB, f"{peak} kB: the weights were read"


def test_header_reader_matches_onnx_on_a_real_model(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    build_model(path, batch=2, sidecar=False)
    header = read_onnx_header(path)
    model = onnx.load(str(path))
    assert header.properties == {p.key: p.value for p in model.metadata_props}
    assert METADATA_KEY in header.properties
    assert header.inputs == {"image": ["tensor(uint8)", [2, 32, 32, 3]]}
    assert header.outputs["score"] == ["tensor(float)", [2]]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "runs past its end"),
        (lambda data: b"not an onnx model at all", "not a loadable ONNX model"),
        (lambda data: b"\x00" * 4096, "not a loadable ONNX model"),
    ],
)
def test_a_damaged_onnx_is_one_line(tmp_path, damage, message) -> None:
    path = tmp_path / "m.onnx"
    build_model(path, sidecar=False)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UniadError, match=message) as info:
        open_artifact(path)
    assert "\n" not in str(info.value)


def _loop(tmp_path: Path) -> Path:
    link = tmp_path / "loop.onnx"
    link.symlink_to(tmp_path / "back.onnx")
    (tmp_path / "back.onnx").symlink_to(link)
    return link


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model.onnx"
    folder.mkdir()
    return folder


def _broken(tmp_path: Path) -> Path:
    link = tmp_path / "gone.onnx"
    link.symlink_to(tmp_path / "deleted.onnx")
    return link


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_loop, "a symbolic link loop"),
        (_folder, "is a folder, not a file"),
        (_broken, "a broken symbolic link to"),
        (lambda tmp_path: tmp_path / "missing.onnx", "no such file"),
        (lambda tmp_path: tmp_path / "missing.pth", "no such checkpoint"),
    ],
)
def test_info_says_what_an_odd_path_is(tmp_path, capsys, make, message) -> None:
    path = make(tmp_path)
    assert run_main("info", path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err, err


def test_a_checkpoint_path_that_loops_says_so(tmp_path, capsys) -> None:
    link = tmp_path / "m.pth"
    link.symlink_to(link)
    assert run_main("info", link) == 2
    assert "a symbolic link loop" in capsys.readouterr().err

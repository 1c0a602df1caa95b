"""An ONNX file's `metadata_props` and graph inputs/outputs, read from the protobuf wire format
by seeking past everything else: `info` on a 2 GB model read it whole (2.18 GB RSS) through
`onnx.load`, which parses the weights too. Neither onnx nor ONNX Runtime is needed.

Only the fields named below are decoded; every other field (nodes, initializers) is skipped by
its length without being read. A malformed header (an impossible tag, a length past the end of
the file, no graph) is a `ValueError`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
MODEL_GRAPH, MODEL_METADATA = 7, 14  # ModelProto
GRAPH_INPUT, GRAPH_OUTPUT = 11, 12  # GraphProto
MAX_HEADER_FIELD = 1 << 20
"""A metadata entry or a graph input's description is small; a larger one is not read."""
ELEM_TYPES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    16: "bfloat16",
}  # fmt: skip
"""TensorProto.DataType, spelled the way ONNX Runtime names a tensor type (`tensor(uint8)`)."""


@dataclass
class OnnxHeader:
    """What `info` and the metadata readers need: properties and the graph's interface as
    ONNX Runtime describes it (`[type, shape]`, a dimension an int, a name or None)."""

    properties: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, list[object]] = field(default_factory=dict)
    outputs: dict[str, list[object]] = field(default_factory=dict)


def read_onnx_header(path: str | os.PathLike[str]) -> OnnxHeader:
    """Scan `path`'s top-level ModelProto fields, and its graph's inputs and outputs."""
    header = OnnxHeader()
    with open(path, "rb") as file:
        end = os.fstat(file.fileno()).st_size
        graph = False
        for number, wire, size, _ in _fields(file, end):
            if number == MODEL_METADATA and wire == LENGTH:
                entry = _fields_of(_read(file, size))
                header.properties[_text(entry.get(1))] = _text(entry.get(2))
            elif number == MODEL_GRAPH and wire == LENGTH:
                graph = True
                _read_graph(file, file.tell() + size, header)
            else:
                file.seek(size, os.SEEK_CUR)
    if not graph:
        raise ValueError("no graph")
    return header


def _read_graph(file: BinaryIO, end: int, header: OnnxHeader) -> None:
    for number, wire, size, _ in _fields(file, end):
        if number in (GRAPH_INPUT, GRAPH_OUTPUT) and wire == LENGTH:
            name, described = _value_info(_read(file, size))
            (header.inputs if number == GRAPH_INPUT else header.outputs)[name] = described
        else:
            file.seek(size, os.SEEK_CUR)
    file.seek(end)


def _value_info(data: bytes) -> tuple[str, list[object]]:
    """ValueInfoProto (name 1, type 2) -> name, [`tensor(elem)`, shape]."""
    info = _fields_of(data)
    tensor = _fields_of(_fields_of(info.get(2, b"")).get(1, b""))  # TypeProto.tensor_type
    elem = ELEM_TYPES.get(int(tensor.get(1, 0)), "unknown")
    shape: list[object] = []
    for dim in _all_of(tensor.get(2, b""), 1):  # TensorShapeProto.dim
        parts = _fields_of(dim)
        shape.append(int(parts[1]) if 1 in parts else _text(parts[2]) if 2 in parts else None)
    return _text(info.get(1)), [f"tensor({elem})", shape]


def _fields(file: BinaryIO, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, payload size, varint value) of each field up to `end`, the file
    positioned at the payload (a varint's is consumed: size 0)."""
    while file.tell() < end:
        tag = _varint(file)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("field number 0")
        value = size = 0
        if wire == VARINT:
            value = _varint(file)
        elif wire == LENGTH:
            size = _varint(file)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
        else:
            raise ValueError(f"wire type {wire}")
        if file.tell() + size > end:
            raise ValueError("a field runs past its end (truncated file)")
        yield number, wire, size, value


def _varint(file: BinaryIO) -> int:
    value = shift = 0
    while True:
        byte = file.read(1)
        if not byte:
            raise ValueError("truncated varint")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _read(file: BinaryIO, size: int) -> bytes:
    if size > MAX_HEADER_FIELD:
        raise ValueError(f"a {size}-byte metadata or interface field")
    return file.read(size)


def _fields_of(data: bytes) -> dict[int, bytes | int]:
    """A small message's fields (the last of a repeated one), varints as ints."""
    return {number: value for number, value in _all_fields(data)}


def _all_of(data: bytes | int, wanted: int) -> list[bytes]:
    return [v for n, v in _all_fields(data) if n == wanted and isinstance(v, bytes)]


def _all_fields(data: bytes | int) -> list[tuple[int, bytes | int]]:
    if not isinstance(data, bytes):
        raise ValueError("a message field holds a number")
    buffer = io.BytesIO(data)
    found: list[tuple[int, bytes | int]] = []
    for number, wire, size, value in _fields(buffer, len(data)):
        if wire == LENGTH:
            found.append((number, buffer.read(size)))
        elif wire == VARINT:
            found.append((number, value))
        else:
            buffer.seek(size, os.SEEK_CUR)
    return found


def _text(value: bytes | int | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, bytes):
        raise ValueError("a string field holds a number")
    return value.decode("utf-8")

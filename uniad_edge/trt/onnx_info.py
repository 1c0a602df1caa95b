"""What the engine builder needs to know about an ONNX file before TensorRT sees it.

Read with the `onnx` package when installed (graph input shape and embedded metadata), else from
the export sidecar `<name>.json` beside the file, so a Jetson without `onnx` can still build.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import UniadError
from ..metadata import INPUT_NAME, METADATA_KEY
from .features import DISTANCE_HEAD_PREFIX, Pin


@dataclass(frozen=True)
class OnnxInfo:
    """File stem, input name, NHWC input shape (batch None when dynamic) and model metadata.

    `opset` is the default-domain opset; `graph_pins` the distance head's nodes read from the
    graph (with the `onnx` package), used only when the metadata has no `fp32_pins`.
    """

    name: str
    input_name: str
    batch: int | None
    input_size: tuple[int, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    opset: int = 0
    graph_pins: tuple[Pin, ...] = ()

    @property
    def precision(self) -> str:
        return str(self.metadata.get("precision", "fp32"))

    @property
    def range_pinned(self) -> tuple[str, ...]:
        """Nodes the export's float16 range contract keeps float32 (metadata `fp32_nodes`)."""
        return tuple(str(n) for n in self.metadata.get("fp32_nodes") or ())

    @property
    def pins(self) -> tuple[Pin, ...]:
        """Every node an FP16-flag build keeps FP32: the head, then the range-pinned nodes.

        From the metadata written at export (no `onnx` package needed), else from the graph."""
        recorded = self.metadata.get("fp32_pins")
        pins = self.graph_pins
        if recorded is not None:
            pins = tuple(
                Pin(str(name), str(pin.get("op", "")), tuple(map(str, pin.get("outputs", ()))))
                for name, pin in recorded.items()
            )
        known = {pin.node for pin in pins}
        return pins + tuple(Pin(n) for n in self.range_pinned if n not in known)

    @property
    def fp32_layers(self) -> tuple[str, ...]:
        """The pinned nodes' names: the layer names trtexec's per-layer flags give."""
        return tuple(pin.node for pin in self.pins)


def read_onnx_info(path: str | os.PathLike[str]) -> OnnxInfo:
    """Describe `path`; one-line `UniadError` when it is missing or not a uniad-edge model."""
    path = Path(path)
    if not path.is_file():
        raise UniadError(f"{path} not found; export it first with `uniad-edge export`")
    try:
        onnx = importlib.import_module("onnx")
    except ImportError:
        return _from_sidecar(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and friends
        raise UniadError(f"{path} is not a readable ONNX file ({exc}); re-export it") from None
    metadata = {}
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            metadata = json.loads(prop.value)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise UniadError(f"{path} has {len(inputs)} graph inputs; a uniad-edge model has one")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in _dims(inputs[0])]
    info = _info(path, inputs[0].name, dims, metadata)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return replace(info, opset=opset, graph_pins=_graph_pins(info, model))


def _graph_pins(info: OnnxInfo, model: Any) -> tuple[Pin, ...]:
    """The distance head's and the range-pinned nodes, with their output tensors."""
    prefix = f"/{DISTANCE_HEAD_PREFIX}/"
    wanted = set(info.range_pinned)
    return tuple(
        Pin(node.name, node.op_type, tuple(o for o in node.output if o))
        for node in model.graph.node
        if node.name.startswith(prefix) or node.name in wanted
    )


def _dims(value_info: Any) -> list[Any]:
    return list(value_info.type.tensor_type.shape.dim)


def _from_sidecar(path: Path) -> OnnxInfo:
    sidecar = path.with_suffix(".json")
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise UniadError(
            f"cannot read {path}'s input shape: the `onnx` package is not installed and "
            f"{sidecar} is unreadable ({exc}); `pip install onnx` or copy the sidecar beside it"
        ) from None
    metadata = data.get("metadata", data) if isinstance(data, dict) else {}
    if "input_size" not in metadata:
        raise UniadError(f"{sidecar} has no input_size; re-export the model")
    height, width = (int(v) for v in metadata.get("frame_size") or metadata["input_size"])
    batch = metadata.get("batch")
    info = _info(path, INPUT_NAME, [batch, height, width, 3], metadata)
    return replace(info, opset=int(metadata.get("opset", 0)))


def _info(path: Path, input_name: str, dims: list[Any], metadata: dict[str, Any]) -> OnnxInfo:
    if len(dims) != 4 or dims[3] not in (3, None):
        raise UniadError(
            f"{path}: input '{input_name}' has shape {dims}; expected uint8 [B, H, W, 3]"
        )
    height, width = dims[1], dims[2]
    if (height is None or width is None) and "input_size" in metadata:
        height, width = (int(v) for v in metadata.get("frame_size") or metadata["input_size"])
    if not height or not width:
        raise UniadError(f"{path}: input height and width must be fixed; re-export the model")
    batch = int(dims[0]) if dims[0] else None
    return OnnxInfo(path.stem, input_name, batch, (int(height), int(width)), metadata)

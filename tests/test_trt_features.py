"""Our choice between TensorRT 8.6 and 10.x API surfaces, driven by small stand-in objects.

These stand-ins mimic only the attributes `uniad_edge.trt.features` looks at; they test OUR
selection logic (which flag, which call), not TensorRT itself. The real API is exercised by the
`gpu`-marked build test where TensorRT and a GPU exist.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from uniad_edge.errors import UniadError
from uniad_edge.trt import features

FLOAT32, FLOAT16, INT32 = "float32", "float16", "int32"


def fake_trt(api: str) -> SimpleNamespace:
    """'8.6': no STRONGLY_TYPED; '10': STRONGLY_TYPED; '8.0': only STRICT_TYPES, no pools."""
    creation = {"8.0": {"EXPLICIT_BATCH": 0}, "8.6": {"EXPLICIT_BATCH": 0}}.get(
        api, {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    )
    flags = (
        {"FP16": "FP16", "STRICT_TYPES": "STRICT"}
        if api == "8.0"
        else {
            "FP16": "FP16",
            "OBEY_PRECISION_CONSTRAINTS": "OBEY",
            "PREFER_PRECISION_CONSTRAINTS": "PREFER",
        }
    )
    return SimpleNamespace(
        NetworkDefinitionCreationFlag=SimpleNamespace(**creation),
        BuilderFlag=SimpleNamespace(**flags),
        MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
        TensorIOMode=SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT"),
        float32=FLOAT32,
        float16=FLOAT16,
    )


class PoolConfig:
    def __init__(self) -> None:
        self.limits: dict[str, int] = {}

    def set_memory_pool_limit(self, pool: str, nbytes: int) -> None:
        self.limits[pool] = nbytes


class OldConfig:
    max_workspace_size = 0


def test_strongly_typed_support_is_detected_by_flag_presence() -> None:
    assert not features.supports_strongly_typed(fake_trt("8.6"))
    assert features.supports_strongly_typed(fake_trt("10"))


def test_network_flags_per_api() -> None:
    assert features.network_flags(fake_trt("8.6"), strongly_typed=False) == 1
    assert features.network_flags(fake_trt("10"), strongly_typed=False) == 1
    assert features.network_flags(fake_trt("10"), strongly_typed=True) == 1 | 2
    no_explicit = fake_trt("10")
    no_explicit.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=0)
    assert features.network_flags(no_explicit, strongly_typed=True) == 1
    assert features.network_flags(no_explicit, strongly_typed=False) == 0


@pytest.mark.parametrize(
    "api,requested,precision,onnx_precision,expected",
    [
        ("10", None, "fp16", "fp16", True),
        ("10", None, "fp16", "fp32", False),
        ("10", None, "fp32", "fp16", False),
        ("8.6", None, "fp16", "fp16", False),
        ("10", False, "fp16", "fp16", False),
        ("10", True, "fp16", "fp32", True),
    ],
)
def test_resolve_strongly_typed(
    api: str, requested: bool | None, precision: str, onnx_precision: str, expected: bool
) -> None:
    trt = fake_trt(api)
    assert features.resolve_strongly_typed(trt, requested, precision, onnx_precision) is expected


def test_strongly_typed_requested_on_86_is_a_clear_error() -> None:
    with pytest.raises(UniadError, match="TensorRT 10"):
        features.resolve_strongly_typed(fake_trt("8.6"), True, "fp16", "fp16")


def test_workspace_uses_memory_pool_api_when_present() -> None:
    config = PoolConfig()
    assert features.set_workspace(fake_trt("10"), config, 3 << 30) == "set_memory_pool_limit"
    assert config.limits == {"WORKSPACE": 3 << 30}


def test_workspace_falls_back_to_attribute() -> None:
    config = OldConfig()
    assert features.set_workspace(fake_trt("8.0"), config, 1 << 30) == "max_workspace_size"
    assert config.max_workspace_size == 1 << 30


def test_precision_constraint_flag_prefers_obey() -> None:
    assert features.precision_constraint_flag(fake_trt("8.6")) == "OBEY"
    assert features.precision_constraint_flag(fake_trt("8.0")) == "STRICT"
    bare = fake_trt("8.6")
    bare.BuilderFlag = SimpleNamespace(FP16="FP16")
    assert features.precision_constraint_flag(bare) is None


class Tensor:
    def __init__(self, dtype: str, is_output: bool = False, name: str = "") -> None:
        self.dtype = dtype
        self.is_network_output = is_output
        self.name = name


class Layer:
    def __init__(self, name: str, *outputs: Tensor, inputs: tuple[Tensor, ...] = ()) -> None:
        self.name = name
        self.outputs = list(outputs)
        self.num_outputs = len(outputs)
        self.inputs = list(inputs)
        self.num_inputs = len(inputs)
        self.precision: str | None = None
        self.output_types: dict[int, str] = {}

    def get_output(self, index: int) -> Tensor:
        return self.outputs[index]

    def get_input(self, index: int) -> Tensor:
        return self.inputs[index]

    def set_output_type(self, index: int, dtype: str) -> None:
        self.output_types[index] = dtype


class Network:
    def __init__(self, layers: list[Layer]) -> None:
        self.layers = layers
        self.num_layers = len(layers)
        self.outputs = [t for layer in layers for t in layer.outputs if t.is_network_output]
        self.num_outputs = len(self.outputs)

    def get_layer(self, index: int) -> Layer:
        return self.layers[index]

    def get_output(self, index: int) -> Tensor:
        return self.outputs[index]


def test_keep_fp32_pins_by_tensor_name_and_node_name_and_outputs() -> None:
    """Layers producing or consuming a pinned tensor, or named after a pinned node (with a
    `_N` suffix too), and output layers; never integer layers or lookalike names."""
    sub_out, norm_out = Tensor(FLOAT16, name="sub"), Tensor(FLOAT16, name="ln")
    score = Tensor(FLOAT16, is_output=True, name="score")
    shuffle_out = Tensor(FLOAT16, name="(Unnamed tensor 3)")
    layers = [
        Layer("/backbone/conv", Tensor(FLOAT16, name="conv")),
        Layer("/distance_head/Sub_1", sub_out),
        Layer("(Unnamed Layer* 2) [Shuffle]", shuffle_out, inputs=(sub_out,)),
        Layer("(Unnamed Layer* 3) [Normalization]", norm_out, inputs=(shuffle_out,)),
        Layer("/distance_head/Shape_2", Tensor(INT32, name="shape"), inputs=(sub_out,)),
        Layer("/distance_head/Sqrt_3_7", Tensor(FLOAT32, name="(Unnamed tensor 5)")),
        Layer("/ReduceMax", score),
        Layer("/distance_head/Sqrt_30", Tensor(FLOAT16, name="x")),
    ]
    pins = [
        features.Pin("/distance_head/Sub_1", "Sub", ("sub",)),
        features.Pin("ln_node", "LayerNormalization", ("ln",)),
        features.Pin("/distance_head/Shape_2", "Shape", ("shape",)),
        features.Pin("/distance_head/Sqrt_3", "Sqrt", ()),
    ]
    report = features.keep_fp32(fake_trt("8.6"), Network(layers), pins)
    assert report.layers == (
        "/distance_head/Sub_1",
        "(Unnamed Layer* 2) [Shuffle]",
        "(Unnamed Layer* 3) [Normalization]",
        "/distance_head/Sqrt_3_7",
        "/ReduceMax",
    )
    assert (report.requested, report.matched, report.missing) == (4, 4, ())
    assert layers[1].precision == FLOAT32 and layers[1].output_types == {0: FLOAT32}
    assert layers[0].precision is None and layers[7].precision is None
    assert layers[4].precision is None, "integer shape layers must keep their type"
    assert score.dtype == FLOAT32


def test_keep_fp32_reports_a_pin_that_matches_nothing() -> None:
    layers = [Layer("/distance_head/Sub_1", Tensor(FLOAT16, name="sub"))]
    pins = [features.Pin("/distance_head/Sub_1", "Sub", ("sub",)), features.Pin("gone", "Add")]
    report = features.keep_fp32(fake_trt("8.6"), Network(layers), pins)
    assert report.missing == ("gone",) and report.describe().startswith("1/2 FP32 pins matched")


class Parser:
    def __init__(self, ok: bool, errors: list[str], from_file: bool) -> None:
        self.ok, self.errors, self.calls = ok, errors, []
        self.num_errors = len(errors)
        if from_file:
            self.parse_from_file = self._parse_from_file

    def _parse_from_file(self, path: str) -> bool:
        self.calls.append(("file", path))
        return self.ok

    def parse(self, data: bytes) -> bool:
        self.calls.append(("bytes", len(data)))
        return self.ok

    def get_error(self, index: int) -> str:
        return self.errors[index]


def test_parse_prefers_file_and_collects_errors(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"12345")
    parser = Parser(True, [], from_file=True)
    assert features.parse_onnx(parser, str(onnx)) == []
    assert parser.calls == [("file", str(onnx))]
    parser = Parser(False, ["node 3: unsupported op", "node 4: bad type"], from_file=False)
    assert features.parse_onnx(parser, str(onnx)) == ["node 3: unsupported op", "node 4: bad type"]
    assert parser.calls == [("bytes", 5)]
    assert features.parse_onnx(Parser(False, [], from_file=True), str(onnx)) != []


class Engine:
    def __init__(self, tensors: dict[str, str]) -> None:
        self.tensors = tensors
        self.num_io_tensors = len(tensors)

    def get_tensor_name(self, index: int) -> str:
        return list(self.tensors)[index]

    def get_tensor_mode(self, name: str) -> Any:
        return self.tensors[name]


def test_io_tensors_split_inputs_and_outputs() -> None:
    engine = Engine({"image": "INPUT", "anomaly_map": "OUTPUT", "score": "OUTPUT"})
    assert features.io_tensors(fake_trt("10"), engine) == (["image"], ["anomaly_map", "score"])


def test_io_tensors_without_named_api_is_a_clear_error() -> None:
    with pytest.raises(UniadError, match="named-tensor API"):
        features.io_tensors(fake_trt("8.0"), object())

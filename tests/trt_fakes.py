"""Fake `tensorrt` modules with exactly the attribute surface of real releases, and a fake CUDA.

The surfaces (tests/data/trt_surfaces/trt-*.json) were read from the real bindings wheels; each
JSON says how. A fake class copies from its full implementation only the names its release has,
so code that touches a name the release lacks fails here with the `AttributeError` it would
raise on a device. Behaviour modelled from TensorRT's documentation, enough to check our calls:
- the parser turns each ONNX node into the layers `uniad_edge.trt.parser_contract` records for
  the release (names after the node, `_N` suffixes, TensorRT's default names for unnamed
  layers, output tensors after the ONNX outputs), reads only the attributes that table lists
  (8.6 computes a Shape without its start/end, and the consumer of that shape fails), refuses
  uint8 intermediate tensors (onnx-tensorrt ModelImporter.cpp: "TensorRT does not support UINT8
  types for intermediate tensors"), and needs an explicit-batch network where EXPLICIT_BATCH
  exists (8.6);
- a strongly typed network refuses per-layer precision and the FP16 flag; a weakly typed one
  with Q/DQ layers needs the INT8 flag (explicit quantization: no calibrator, 8.6 and 10.x);
- TF32 is on by default in a builder config;
- an engine's first execution context has profile 0, later ones none until they select it;
  on 8.x a second context may select a profile another context holds only when the engine was
  built with PreviewFeature.PROFILE_SHARING_0806 (NvInfer.h 8.6.1: "defaults to false"; always
  on from TensorRT 10);
- "execution" computes map = mean over BGR / 255 and score = max of the map.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx

from uniad_edge.trt.cuda_api import CudaApi
from uniad_edge.trt.parser_contract import CONTRACT, UNNAMED, OpImport, release_of
from uniad_edge.trt.sidecar import GpuInfo

SURFACE_DIR = Path(__file__).parent / "data" / "trt_surfaces"
RELEASES = ("8.6", "10.3", "10.16", "11.4")
FLAG_BITS = {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1, "STRONGLY_TYPED": 1}
NP_TYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int8": np.int8,
            "uint8": np.uint8, "bool": np.bool_}  # fmt: skip
ONNX_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
              onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.BOOL: "bool",
              onnx.TensorProto.INT8: "int8"}  # fmt: skip


def load_surface(release: str) -> dict[str, Any]:
    return json.loads((SURFACE_DIR / f"trt-{release}.json").read_text())


class Member:
    """An enum member: compares by identity, `int()` gives its value, `.name` its name."""

    def __init__(self, owner: str, name: str, value: int) -> None:
        self.owner, self.name, self.value = owner, name, value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"{self.owner}.{self.name}"


def _enum(owner: str, names: list[str]) -> type:
    members = {n: Member(owner, n, FLAG_BITS.get(n, i)) for i, n in enumerate(names)}
    return type(owner, (), members)


def _restrict(full: type, allowed: list[str], name: str) -> type:
    """A class with `full`'s private machinery and only the `allowed` public names."""
    body = {k: v for k, v in full.__dict__.items() if k.startswith("_") or k in allowed}
    public = set(allowed)

    def __setattr__(self: Any, key: str, value: Any) -> None:  # noqa: N807 - dunder
        if not key.startswith("_") and key not in public:
            raise AttributeError(f"'{name}' object has no attribute '{key}'")
        object.__setattr__(self, key, value)

    body["__setattr__"] = __setattr__
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    return type(name, (), body)


class _Tensor:
    def __init__(self, name: str, shape: tuple[int, ...], dtype: Any, output: bool) -> None:
        self._name, self._shape, self._dtype, self._output = name, shape, dtype, output

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def _get_dtype(self) -> Any:
        return self._dtype

    def _set_dtype(self, value: Any) -> None:
        self._dtype = value

    dtype = property(_get_dtype, _set_dtype)

    @property
    def is_network_output(self) -> bool:
        return self._output


class _Layer:
    def __init__(self, network: Any, name: str, outputs: list[Any], inputs: list[Any]) -> None:
        self._network, self._name, self._outputs, self._inputs = network, name, outputs, inputs
        self._precision: Any = None
        self._output_types: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    def get_input(self, index: int) -> Any:
        return self._inputs[index]

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, index: int) -> Any:
        return self._outputs[index]

    def _refuse_if_typed(self, what: str) -> None:
        if self._network._strongly_typed:
            raise RuntimeError(f"{what} is not allowed on a strongly typed network")

    def _get_precision(self) -> Any:
        return self._precision

    def _set_precision(self, value: Any) -> None:
        self._refuse_if_typed("ILayer.precision")
        self._precision = value

    precision = property(_get_precision, _set_precision)

    @property
    def precision_is_set(self) -> bool:
        return self._precision is not None

    def reset_precision(self) -> None:
        self._precision = None

    def set_output_type(self, index: int, dtype: Any) -> None:
        self._refuse_if_typed("ILayer.set_output_type")
        self._output_types[index] = dtype


class _Network:
    def __init__(self, trt: Any, flags: int) -> None:
        self._trt, self._flags = trt, flags
        creation = trt.NetworkDefinitionCreationFlag
        typed = getattr(creation, "STRONGLY_TYPED", None)
        self._strongly_typed = not hasattr(trt.BuilderFlag, "FP16") or bool(
            typed is not None and flags & (1 << int(typed))
        )
        explicit = getattr(creation, "EXPLICIT_BATCH", None)
        self._explicit = explicit is None or bool(flags & (1 << int(explicit)))
        self._layers: list[Any] = []
        self._qdq = False  # explicit quantization: the parser made Q/DQ layers
        self._inputs: list[Any] = []
        self._outputs: list[Any] = []

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_layer(self, index: int) -> Any:
        return self._layers[index]

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    def get_input(self, index: int) -> Any:
        return self._inputs[index]

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, index: int) -> Any:
        return self._outputs[index]


class _Parser:
    def __init__(self, network: Any, logger: Any) -> None:
        self._network, self._logger = network, logger
        self._errors: list[str] = []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]

    def parse(self, model: bytes, path: str | None = None) -> bool:
        return self._parse(onnx.load_from_string(bytes(model)))

    def parse_from_file(self, path: str) -> bool:
        return self._parse(onnx.load(path))

    def supports_operator(self, op_type: str) -> bool:
        return True

    def _parse(self, model: onnx.ModelProto) -> bool:
        network, trt = self._network, self._network._trt
        if not network._explicit:
            self._errors.append("network must have explicit batch (EXPLICIT_BATCH)")
            return False
        graph = onnx.shape_inference.infer_shapes(model).graph
        types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info]}
        types.update({v.name: v.type.tensor_type.elem_type for v in graph.output})
        outputs = {o.name for o in graph.output}
        initializers = {t.name: t for t in graph.initializer}
        tensors: dict[str, Any] = {}
        for value in graph.input:
            if value.name in initializers:
                continue
            dims = _dims(value.type.tensor_type.shape)
            kind = getattr(trt, ONNX_TYPES[value.type.tensor_type.elem_type])
            tensors[value.name] = _make(trt, "ITensor", value.name, dims, kind, False)
            network._inputs.append(tensors[value.name])
        values = [*graph.input, *graph.value_info, *graph.output]
        shapes = {v.name: v.type.tensor_type.shape for v in values}
        importer = _Importer(network, release_of(trt.__version__), initializers, shapes)
        for node in graph.node:
            made = []
            for name in node.output:
                kind = types.get(name, onnx.TensorProto.INT64)
                if kind == onnx.TensorProto.UINT8 and name not in outputs:
                    self._errors.append(
                        f"{node.name}: TensorRT does not support UINT8 types for intermediate "
                        "tensors!"
                    )
                    return False
                dtype = getattr(trt, ONNX_TYPES.get(kind, "int32"))
                dims = _dims(shapes[name]) if name in shapes else ()
                made.append(_make(trt, "ITensor", name, dims, dtype, name in outputs))
            error = importer.add(node, [tensors.get(name) for name in node.input], made)
            if error:
                self._errors.append(error)
                return False
            tensors.update(zip(node.output, made, strict=True))
            network._outputs += [t for t in made if t.name in outputs]
            network._qdq |= node.op_type in ("QuantizeLinear", "DequantizeLinear")
        network._outputs.sort(key=lambda t: [o.name for o in graph.output].index(t.name))
        return True


class _Importer:
    """onnx-tensorrt's importers as `uniad_edge.trt.parser_contract` records them for one release:
    the layers each node becomes and their names (registerLayer after the node, `name_N` when
    taken, TensorRT's default name otherwise), and what an ignored attribute does: a Shape whose
    `start`/`end` 8.6 ignores yields the whole shape, and a consumer expecting fewer elements
    fails (8.6-GA: Resize `sizes` longer than the input's rank, an Expand of the wrong rank)."""

    def __init__(self, network: Any, release: str, constants: dict[str, Any], shapes: dict) -> None:
        self._network, self._release, self._constants = network, release, constants
        self._shapes = shapes
        self._taken: set[str] = set()
        self._counter = 0
        self._lengths: dict[str, int] = {}  # shape-valued tensors: elements TensorRT computes

    def _register(self, name: str) -> str:
        candidate = name
        while candidate in self._taken:
            candidate = f"{name}_{self._counter}"
            self._counter += 1
        self._taken.add(candidate)
        return candidate

    def _unnamed(self, kind: str) -> str:
        return f"(Unnamed Layer* {len(self._network._layers)}) [{kind}]"

    def _layer(self, name: str, inputs: list[Any], outputs: list[Any]) -> None:
        trt = self._network._trt
        self._network._layers.append(_make(trt, "ILayer", self._network, name, outputs, inputs))

    def _constant(self, name: str) -> Any:
        trt = self._network._trt
        dims = tuple(self._constants[name].dims)
        tensor = _make(trt, "ITensor", name, dims, trt.float32, False)
        self._layer(self._register(name), [], [tensor])
        return tensor

    def _scratch(self, like: Any) -> Any:
        trt = self._network._trt
        return _make(trt, "ITensor", f"(Unnamed tensor {len(self._network._layers)})",
                     like.shape, like.dtype, False)  # fmt: skip

    def add(self, node: Any, inputs: list[Any], outputs: list[Any]) -> str | None:
        row = CONTRACT[self._release].get(node.op_type, OpImport())
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        error = self._shape_values(node, attributes, row)
        if error or node.op_type == "Constant":
            return error  # a Constant becomes weights, not a layer
        if row.broadcasts:  # convertToTensor: weights become a constant layer named after them
            inputs = [self._constant(n) if t is None and n in self._constants else t
                      for n, t in zip(node.input, inputs, strict=True)]  # fmt: skip
        present = [t for t in inputs if t is not None]
        if row.broadcasts and present:
            rank = max(len(t.shape) for t in present)
            for i, tensor in enumerate(inputs):
                if tensor is not None and len(tensor.shape) < rank:
                    inputs[i] = self._scratch(tensor)
                    self._layer(self._unnamed("Shuffle"), [tensor], [inputs[i]])
        main = self._register(node.name) if row.named else self._unnamed(node.op_type)
        after = row.after if not row.after_when or row.after_when & set(attributes) else ()
        feed = [t for t in inputs if t is not None]
        chain = [main] + [self._register(node.name) if k != UNNAMED else "" for k in after]
        for index, name in enumerate(chain):
            last = index == len(chain) - 1
            made = outputs if last else [self._scratch(outputs[0])]
            self._layer(name or self._unnamed("Shuffle"), feed, made)
            feed = made
        return None

    def _shape_values(self, node: Any, attributes: dict[str, Any], row: OpImport) -> str | None:
        """Track how many elements each shape tensor has in this release; refuse a consumer
        whose shape input differs from what the ONNX graph says (the real parse or build fails
        there, far from the Shape node that caused it)."""
        out = node.output[0] if node.output else ""
        if node.op_type == "Shape":
            rank = len(self._shapes[node.input[0]].dim) if node.input[0] in self._shapes else 4
            start, end = 0, rank
            if "start" in row.reads:
                start = attributes.get("start", 0) % (rank + 1)
                end = attributes.get("end", rank)
                end = end + rank if end < 0 else min(end, rank)
            self._lengths[out] = max(0, end - start)
        elif node.op_type == "Concat" and any(n in self._lengths for n in node.input):
            sizes = [self._lengths.get(n, self._constant_length(n)) for n in node.input]
            self._lengths[out] = sum(sizes)
        elif node.op_type in ("Cast", "Identity") and node.input[0] in self._lengths:
            self._lengths[out] = self._lengths[node.input[0]]
        passing = node.op_type in ("Concat", "Cast", "Identity")  # any length goes through
        for name in () if passing else node.input:
            if name in self._lengths and name in self._shapes:
                dims = self._shapes[name].dim
                expected = dims[0].dim_value if dims and dims[0].HasField("dim_value") else None
                if expected is not None and self._lengths[name] != expected:
                    return (
                        f"{node.name} ({node.op_type}): input {name} has {self._lengths[name]} "
                        f"elements, the graph expects {expected} (TensorRT {self._release} "
                        "computed the Shape it came from without its start/end)"
                    )
        return None

    def _constant_length(self, name: str) -> int:
        tensor = self._constants.get(name)
        return int(np.prod(tensor.dims)) if tensor is not None else 0


def _dims(shape: Any) -> tuple[int, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in shape.dim)


class _TimingCache:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def serialize(self) -> bytes:
        return self._data or b"fresh-timing-cache"


class _Config:
    def __init__(self, trt: Any) -> None:
        self._trt = trt
        self._flags = {trt.BuilderFlag.TF32} if hasattr(trt.BuilderFlag, "TF32") else set()
        self._pools: dict[Any, int] = {}
        self._cache: Any = None
        self._profiles: list[Any] = []
        self._preview: set[Any] = set()

    def set_preview_feature(self, feature: Any, enable: bool) -> None:
        (self._preview.add if enable else self._preview.discard)(feature)

    def get_preview_feature(self, feature: Any) -> bool:
        return feature in self._preview

    def set_flag(self, flag: Any) -> None:
        self._flags.add(flag)

    def clear_flag(self, flag: Any) -> None:
        self._flags.discard(flag)

    def get_flag(self, flag: Any) -> bool:
        return flag in self._flags

    def set_memory_pool_limit(self, pool: Any, nbytes: int) -> None:
        self._pools[pool] = nbytes

    def create_timing_cache(self, data: bytes) -> Any:
        return _make(self._trt, "ITimingCache", bytes(data))

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        """Like TensorRT: a cache from another device/version is refused by returning False."""
        if cache._data.startswith(b"foreign") and not ignore_mismatch:
            return False
        self._cache = cache
        return True

    def get_timing_cache(self) -> Any:
        return self._cache

    def add_optimization_profile(self, profile: Any) -> int:
        self._profiles.append(profile)
        return len(self._profiles) - 1


class _Profile:
    def __init__(self) -> None:
        self._shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002
        self._shapes[name] = (tuple(min), tuple(opt), tuple(max))


class _Builder:
    platform_has_fast_fp16 = True
    platform_has_tf32 = True

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._trt = logger._trt_module

    def create_network(self, flags: int = 0) -> Any:
        return _make(self._trt, "INetworkDefinition", self._trt, flags)

    def create_builder_config(self) -> Any:
        return _make(self._trt, "IBuilderConfig", self._trt)

    def create_optimization_profile(self) -> Any:
        return _make(self._trt, "IOptimizationProfile")

    def build_serialized_network(self, network: Any, config: Any) -> bytes | None:
        trt = self._trt
        severity = trt.ILogger.Severity
        names = {m.name for m in config._flags}
        if network._strongly_typed and names & {"FP16", "INT8", "BF16"}:
            self._logger.log(severity.ERROR, "precision flags are not allowed when strongly typed")
            return None
        if network._qdq and not network._strongly_typed and "INT8" not in names:
            # TensorRT 8.6/10.x weakly typed: Q/DQ layers set int8 precision, which the
            # builder refuses unless INT8 is configured (network.cpp::validate, Error Code 4).
            self._logger.log(
                severity.ERROR,
                "Int8 precision has been set for a layer or layer output, but int8 is not "
                "configured in the builder",
            )
            return None
        dynamic = any(d < 0 for t in network._inputs for d in t.shape)
        if dynamic and not config._profiles:
            self._logger.log(severity.ERROR, "dynamic input needs an optimization profile")
            return None
        self._logger.log(severity.WARNING, "fake builder: no real kernels were timed")
        self._logger.log(severity.INFO, "fake builder: info message")
        pinned = [layer.name for layer in network._layers if layer._precision is not None]
        record = {
            "version": trt.__version__,
            "strongly_typed": network._strongly_typed,
            "flags": sorted(names),
            "preview": sorted(m.name for m in config._preview),
            "pinned": pinned,
            "tensors": [
                {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name, "input": True}
                for t in network._inputs
            ]
            + [
                {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name, "input": False}
                for t in network._outputs
            ],
            "profiles": [
                {k: [list(s) for s in v] for k, v in p._shapes.items()} for p in config._profiles
            ],
            "workspace": {m.name: n for m, n in config._pools.items()},
        }
        return json.dumps(record).encode()


class _Engine:
    def __init__(self, trt: Any, record: dict[str, Any]) -> None:
        self._trt, self._record, self._contexts = trt, record, 0
        self._tensors = record["tensors"]
        self._profile_holders: dict[int, set[int]] = {}

    @property
    def num_io_tensors(self) -> int:
        return len(self._tensors)

    def get_tensor_name(self, index: int) -> str:
        return self._tensors[index]["name"]

    def _tensor(self, name: str) -> dict[str, Any]:
        return next(t for t in self._tensors if t["name"] == name)

    def get_tensor_mode(self, name: str) -> Any:
        mode = self._trt.TensorIOMode
        return mode.INPUT if self._tensor(name)["input"] else mode.OUTPUT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._tensor(name)["shape"])

    def get_tensor_dtype(self, name: str) -> Any:
        return getattr(self._trt, self._tensor(name)["dtype"])

    @property
    def num_optimization_profiles(self) -> int:
        return max(len(self._record["profiles"]), 1)

    def create_execution_context(self) -> Any:
        self._contexts += 1
        return _make(self._trt, "IExecutionContext", self, self._contexts)

    def _may_share_profiles(self) -> bool:
        major = int(str(self._record["version"]).split(".")[0])
        return major >= 10 or "PROFILE_SHARING_0806" in self._record.get("preview", [])

    def get_binding_shape(self, index: int) -> tuple[int, ...]:
        return tuple(self._tensors[index]["shape"])


class _Context:
    def __init__(self, engine: Any, number: int) -> None:
        self._engine, self._number = engine, number
        self._profile = 0 if number == 1 else -1
        if number == 1:
            engine._profile_holders.setdefault(0, set()).add(number)
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}
        self._executions = 0

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        engine = self._engine
        if not 0 <= index < engine.num_optimization_profiles:
            return False
        others = engine._profile_holders.get(index, set()) - {self._number}
        if others and not engine._may_share_profiles():
            return False  # 8.6: "profile already in use by another execution context"
        engine._profile_holders.get(self._profile, set()).discard(self._number)
        engine._profile_holders.setdefault(index, set()).add(self._number)
        self._profile = index
        return True

    @property
    def active_optimization_profile(self) -> int:
        return self._profile

    def set_input_shape(self, name: str, shape: Any) -> bool:
        self._shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        self._addresses[name] = address
        return True

    def set_binding_shape(self, index: int, shape: Any) -> bool:
        return self.set_input_shape(self._engine.get_tensor_name(index), shape)

    def execute_async_v3(self, stream: int) -> bool:
        """Mean over BGR / 255 as the map and its max as the score, in the fake device memory."""
        if self._profile < 0:
            return False  # TensorRT: "no optimization profile selected" (an error, no result)
        memory = self._engine._trt._memory
        inputs = [t for t in self._engine._tensors if t["input"]]
        image = inputs[0]
        shape = self._shapes.get(image["name"], tuple(image["shape"]))
        if any(d < 0 for d in shape):
            return False
        frames = memory.view(self._addresses[image["name"]], shape, np.uint8)
        maps = frames.astype(np.float32).mean(-1) / 255.0
        memory.view(self._addresses["anomaly_map"], maps.shape, np.float32)[:] = maps
        memory.view(self._addresses["score"], (shape[0],), np.float32)[:] = maps.max((1, 2))
        self._executions += 1
        return True


class _Runtime:
    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> Any:
        trt = self._logger._trt_module
        try:
            record = json.loads(bytes(data))
        except ValueError:
            return None
        return _make(trt, "ICudaEngine", trt, record)


class _ILogger:
    def __init__(self, min_severity: Any = None) -> None:
        pass

    def log(self, severity: Any, msg: str) -> None:
        pass


FULL = {
    "ITensor": _Tensor, "ILayer": _Layer, "INetworkDefinition": _Network, "OnnxParser": _Parser,
    "ITimingCache": _TimingCache, "IBuilderConfig": _Config, "IOptimizationProfile": _Profile,
    "Builder": _Builder, "ICudaEngine": _Engine, "IExecutionContext": _Context,
    "Runtime": _Runtime,
}  # fmt: skip


def _make(trt: Any, cls: str, *args: Any) -> Any:
    return getattr(trt, f"_{cls}")(*args)


class FakeMemory:
    """Device memory of the fake CUDA: pointers are keys into a dict of byte buffers."""

    def __init__(self) -> None:
        self.buffers: dict[int, bytearray] = {}
        self.next = 0x1000

    def malloc(self, nbytes: int) -> int:
        ptr = self.next
        self.buffers[ptr] = bytearray(nbytes)
        self.next += nbytes + 256
        return ptr

    def view(self, ptr: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        count = int(np.prod(shape))
        return np.frombuffer(self.buffers[ptr], dtype, count=count).reshape(shape)


def fake_tensorrt(release: str, memory: FakeMemory | None = None) -> ModuleType:
    """A `tensorrt` module of `release` ('8.6', '10.3', '10.16', '11.4'): its names only."""
    surface = load_surface(release)
    trt = ModuleType("tensorrt")
    trt.__version__ = surface["version"]
    trt._memory = memory or FakeMemory()
    for owner in ("NetworkDefinitionCreationFlag", "BuilderFlag", "MemoryPoolType", "TensorIOMode",
                  "PreviewFeature"):  # fmt: skip
        if owner in surface:
            setattr(trt, owner, _enum(owner, surface[owner]))
    for name in ("float32", "float16", "int32", "int8", "uint8", "bool"):
        if name in surface["module"]:
            setattr(trt, name, Member("DataType", name, len(name)))
    severity = _enum("Severity", surface["ILogger.Severity"])

    def logger_init(self: Any, min_severity: Any = None) -> None:
        self._trt_module = trt
        self._min_severity = min_severity

    trt.ILogger = type("ILogger", (), {**_ILogger.__dict__, "__init__": logger_init,
                                        "Severity": severity})  # fmt: skip
    members = {m: getattr(severity, m) for m in surface["ILogger.Severity"]}
    trt.Logger = type("Logger", (trt.ILogger,), members)
    for public, full in FULL.items():
        restricted = _restrict(full, surface.get(public, []), public)
        setattr(trt, f"_{public}", restricted)
        setattr(trt, public, restricted)

    def nptype(dtype: Any) -> Any:
        return NP_TYPES[dtype.name]

    if "nptype" in surface["module"]:
        trt.nptype = nptype
    return trt


class FakeCuda(CudaApi):
    """A CUDA binding over `FakeMemory` with real stream semantics where they can bite: copies
    are queued on their stream and run (reading or writing the host array then, as a DMA does)
    only when that stream is synchronized or an event recorded after them is waited for. So a
    backend that reads results without waiting, or refills a pinned buffer a queued copy still
    reads, gets wrong numbers here as it would on a GPU. The fake engine runs at enqueue: what
    it reads must have been made visible by `wait_event` on the copy's event first.

    Like pycuda, CUDA objects belong to a context: a stream or event is destroyed when its last
    reference goes, and that (or a free) outside `activate()` on the releasing thread fails:
    pycuda warns and leaks it ("cannot activate out-of-thread context"). Each such release is
    recorded in `out_of_context`, which a correct backend leaves empty."""

    name = "fake-cuda"

    def __init__(self, memory: FakeMemory) -> None:
        self.memory = memory
        self.streams = 0
        self.freed: list[int] = []
        self.queues: dict[int, list[Any]] = {}
        self.allocations = 0  # malloc and pinned_empty calls: none may happen per batch
        self.pinned: list[np.ndarray] = []
        self.out_of_context: list[str] = []
        self._thread = threading.local()

    def in_context(self) -> bool:
        """Whether the calling thread is inside `activate()`."""
        return getattr(self._thread, "depth", 0) > 0

    def released(self, what: str) -> None:
        """A CUDA object is released now, on this thread: record it unless in context."""
        if not self.in_context():
            self.out_of_context.append(f"{what} on thread {threading.current_thread().name}")

    def device_count(self) -> int:
        return 1

    def gpu_info(self) -> GpuInfo:
        return GpuInfo("Orin", (8, 7))

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        self._thread.depth = getattr(self._thread, "depth", 0) + 1
        try:
            yield
        finally:
            self._thread.depth -= 1

    def create_stream(self) -> Any:
        self.streams += 1
        self.queues[self.streams] = []
        return FakeStream(self, self.streams)

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        """pycuda has no destroy: the stream goes with its last reference (`FakeStream`)."""
        self.queues.pop(int(stream), None)

    def _run(self, stream: Any, until: Any = None) -> None:
        """Run `stream`'s queued work, all of it or up to the recording of event `until`."""
        queue = self.queues.setdefault(int(stream), [])
        while queue:
            op = queue.pop(0)
            if isinstance(op, FakeEvent):
                op.happened = True
                if op is until:
                    return
            else:
                op()

    def synchronize(self, stream: Any) -> None:
        self._run(stream)

    def create_event(self) -> Any:
        return FakeEvent(self)

    def destroy_event(self, event: Any) -> None:
        assert isinstance(event, FakeEvent)

    def record_event(self, event: Any, stream: Any) -> None:
        event.stream, event.happened = int(stream), False
        self.queues.setdefault(int(stream), []).append(event)

    def wait_event(self, stream: Any, event: Any) -> None:
        if event.stream is not None and not event.happened:
            self._run(event.stream, until=event)

    def synchronize_event(self, event: Any) -> None:
        self.wait_event(None, event)

    def malloc(self, nbytes: int) -> int:
        self.allocations += 1
        return self.memory.malloc(nbytes)

    def free(self, ptr: int) -> None:
        self.released(f"device memory {ptr:#x}")
        self.freed.append(ptr)

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        self.allocations += 1
        array = np.empty(shape, dtype)
        self.pinned.append(array)
        return array

    def free_pinned(self, array: np.ndarray) -> None:
        self.released("pinned host memory")

    def _check_pinned(self, array: np.ndarray) -> None:
        """Async copies need page-locked memory (pageable ones are silently synchronous)."""
        assert any(np.shares_memory(array, p) for p in self.pinned), "copy from pageable memory"

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._check_pinned(src)

        def copy() -> None:
            self.memory.buffers[dst][: src.nbytes] = np.ascontiguousarray(src).tobytes()

        self.queues.setdefault(int(stream), []).append(copy)

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._check_pinned(dst)

        def copy() -> None:
            flat = np.frombuffer(self.memory.buffers[src], dst.dtype, count=dst.size)
            dst[...] = flat.reshape(dst.shape)

        self.queues.setdefault(int(stream), []).append(copy)


class FakeStream:
    """A pycuda-like stream: a number (its queue's key) destroyed with its last reference."""

    def __init__(self, cuda: FakeCuda, number: int) -> None:
        self._cuda, self._number = cuda, number

    def __int__(self) -> int:
        return self._number

    def __del__(self) -> None:
        self._cuda.released(f"stream {self._number}")


class FakeEvent:
    """A CUDA event: where in which stream it was recorded, and whether that point was passed;
    destroyed with its last reference, like a pycuda Event."""

    def __init__(self, cuda: FakeCuda) -> None:
        self._cuda = cuda
        self.stream: int | None = None
        self.happened = False

    def __del__(self) -> None:
        self._cuda.released("event")

"""Issue 26: the export's measurements run in bounded memory.

The float16 range contract measures every float tensor of the graph. ONNX Runtime's default
execution order ran the whole model before the first probe, so every intermediate of a chunk of
frames was alive at once (21.8 GB at mvtec-512); the probes now run right after each producer,
one frame at a time. Each measurement runs in a child process whose own peak (ru_maxrss) is
read, under an address-space limit so a regression cannot take the machine's memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from uniad_edge.export.fp16_range import tensor_ranges
from uniad_edge.metadata import INPUT_NAME

CHAIN = 40
HEIGHT, WIDTH = 1024, 2048
TENSOR_MB = HEIGHT * WIDTH * 3 * 4 / 2**20  # 24 MiB per float tensor of one frame
AS_LIMIT = 6 << 30


def chain_model(length: int = CHAIN) -> onnx.ModelProto:
    """uint8 frames -> Cast -> `length` Adds: one full-size float tensor per node."""
    nodes = [helper.make_node("Cast", [INPUT_NAME], ["x0"], to=TensorProto.FLOAT, name="cast")]
    inits = []
    for i in range(length):
        inits.append(numpy_helper.from_array(np.array(i + 1.0, np.float32), f"c{i}"))
        nodes.append(helper.make_node("Add", [f"x{i}", f"c{i}"], [f"x{i + 1}"], name=f"add{i}"))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", HEIGHT, WIDTH, 3])],
        [helper.make_tensor_value_info(f"x{length}", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


CHILD = textwrap.dedent(
    f"""
    import json, resource, sys
    import numpy as np, onnx
    from uniad_edge.export.fp16_range import tensor_ranges
    model = onnx.load(sys.argv[1])
    frames = np.full((int(sys.argv[2]), {HEIGHT}, {WIDTH}, 3), 7, np.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ranges = tensor_ranges(model, frames, None)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"grown_mb": (after - before) / 1024, "last": ranges["x{CHAIN}"]}}))
    """
)


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def measure_in_child(model_path: str, frames: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, model_path, str(frames)],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_address_space,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_range_contract_frees_each_tensor_after_its_probe(tmp_path) -> None:
    """40 full-size tensors (24 MiB each) per frame: the old order kept them all, in chunks of
    4 frames (measured 3.4 GB for 3 frames); probes next to their producers, one frame at a
    time, keep a handful (measured 0.23 GB)."""
    path = tmp_path / "chain.onnx"
    onnx.save(chain_model(), path)
    result = measure_in_child(str(path), frames=3)
    assert result["last"] == 7.0 + CHAIN * (CHAIN + 1) / 2
    assert result["grown_mb"] < 20 * TENSOR_MB, result


def test_range_contract_values_are_the_float32_maxima() -> None:
    """The reordered probes still measure every tensor: each Add's max over all frames."""
    model = chain_model(3)
    small = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", 4, 4, 3])
    model.graph.input[0].CopyFrom(small)
    frames = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (3, 200, 9)])
    ranges = tensor_ranges(model, frames, None)
    assert [ranges[f"x{i}"] for i in range(4)] == [200.0, 201.0, 203.0, 206.0]

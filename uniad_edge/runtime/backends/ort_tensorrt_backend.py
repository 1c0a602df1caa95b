"""ONNX Runtime's TensorRT execution provider, float32, with engine and timing caches under
engines/.

A second GPU path that needs neither Python TensorRT nor pycuda (on a Jetson, onnxruntime-gpu
from the Jetson Zoo links JetPack's TensorRT). Without options the provider rebuilds its engine
at every start (minutes on an Orin); with a cache folder it builds once per model, GPU and
TensorRT, like `export --format engine`. ORT's engine id hashes the model's file name and its
tensor names, never its weights, so the engine folder is keyed on the ONNX file's sha256: a
retrained model exported to the same path gets its own engine, not the old one.

FP16 is off under this provider: it cannot pin single layers to float32, and keeping the
distance head's op types out of TensorRT (`trt_op_types_to_exclude`) would exclude Reshape,
Concat and Resize everywhere (the transformer and the neck use them dozens of times), cutting
the engine into pieces. The FP16 GPU path with a float32 head is the `tensorrt` backend.

An INT8 export (`--precision int8`, explicit Q/DQ) turns on `trt_int8_enable` with no
calibration table: TensorRT takes each scale from the graph, and refuses Q/DQ layers without its
INT8 flag; the layers the export left float (the distance head among them) run float32.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UniadError
from ...fileio import sha256_file
from ...metadata import DEFAULT_ENGINE_DIR, DEFAULT_MAX_BATCH, DEFAULT_WORKSPACE_GIB, GIB
from ...trt.onnx_info import read_onnx_info
from .onnxruntime_backend import OnnxRuntimeBackend, choose_providers

TRT_PROVIDER = "TensorrtExecutionProvider"
PROVIDERS = ("tensorrt", "cuda", "cpu")
CACHE_SUBDIR = "ort-trt"


def engine_cache_dir(model: str | Path, engine_dir: str | Path = DEFAULT_ENGINE_DIR) -> Path:
    """`engine_dir/ort-trt/<sha256 of the ONNX file>`: one folder per model's weights (the
    file is hashed in 1 MiB blocks, once per load)."""
    return Path(engine_dir) / CACHE_SUBDIR / sha256_file(model)


def tensorrt_ep_options(
    model: str | Path,
    engine_dir: str | Path = DEFAULT_ENGINE_DIR,
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> dict[str, str]:
    """Provider options: float32, INT8 for a Q/DQ export (see the module doc), the engine cache in
    `engine_cache_dir`, the timing cache (weights do not change timings) in
    `engine_dir/ort-trt`, and the batch profile."""
    info = read_onnx_info(model)
    options = {
        "trt_fp16_enable": "False",
        "trt_int8_enable": str(info.precision == "int8"),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(engine_cache_dir(model, engine_dir)),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(Path(engine_dir) / CACHE_SUBDIR),
        "trt_max_workspace_size": str(int(workspace_gib * GIB)),
    }
    if info.batch is None:
        h, w = info.input_size
        for key, batch in (("min", 1), ("opt", 1), ("max", max_batch)):
            options[f"trt_profile_{key}_shapes"] = f"{info.input_name}:{batch}x{h}x{w}x3"
    return options


class OrtTensorRTBackend(OnnxRuntimeBackend):
    """An ONNX model on ONNX Runtime's TensorRT provider (CUDA, then CPU for what it leaves)."""

    name = "ort-tensorrt"

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        engine_dir: str | Path = DEFAULT_ENGINE_DIR,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        try:
            providers = choose_providers(PROVIDERS)
        except UniadError as exc:
            raise UniadError(
                f"{exc}: the ort-tensorrt backend needs onnxruntime-gpu built with TensorRT "
                "(on a Jetson, the Jetson Zoo wheel); or use --backend onnxruntime or tensorrt"
            ) from None
        options = tensorrt_ep_options(path, engine_dir, max_batch=max_batch)
        Path(options["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        super().__init__(
            path, providers=providers, threads=threads, provider_options={TRT_PROVIDER: options}
        )

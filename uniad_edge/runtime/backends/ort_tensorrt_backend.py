"""ONNX Runtime's TensorRT execution provider with FP16, engine and timing caches under engines/.

A second GPU path that needs neither Python TensorRT nor pycuda (on a Jetson, onnxruntime-gpu
from the Jetson Zoo links JetPack's TensorRT). Without options the provider rebuilds its engine
at every start (minutes on an Orin); with a cache folder it builds once per model, GPU and
TensorRT, like `export --format engine`. The provider cannot pin single layers to FP32, so the
distance head is protected only by TensorRT's own choice: `bench` and the GPU test compare it
with ONNX Runtime on the CPU.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UniadError
from ...metadata import DEFAULT_ENGINE_DIR, DEFAULT_MAX_BATCH, DEFAULT_WORKSPACE_GIB
from ...trt.onnx_info import read_onnx_info
from .onnxruntime_backend import OnnxRuntimeBackend, choose_providers

TRT_PROVIDER = "TensorrtExecutionProvider"
PROVIDERS = ("tensorrt", "cuda", "cpu")
CACHE_SUBDIR = "ort-trt"
GIB = 1 << 30


def tensorrt_ep_options(
    model: str | Path,
    engine_dir: str | Path = DEFAULT_ENGINE_DIR,
    fp16: bool = True,
    max_batch: int = DEFAULT_MAX_BATCH,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> dict[str, str]:
    """Provider options: FP16, engine + timing cache in `engine_dir/ort-trt`, batch profile."""
    info = read_onnx_info(model)
    cache = str(Path(engine_dir) / CACHE_SUBDIR)
    options = {
        "trt_fp16_enable": str(fp16),
        "trt_layer_norm_fp32_fallback": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": cache,
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
        Path(engine_dir, CACHE_SUBDIR).mkdir(parents=True, exist_ok=True)
        super().__init__(
            path, providers=providers, threads=threads, provider_options={TRT_PROVIDER: options}
        )

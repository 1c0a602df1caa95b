"""ONNX Runtime backend: the embedded default (CPU), and GPUs through the TensorRT/CUDA EPs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ...artifacts import edited_sidecar_note, model_metadata
from ...errors import UniadError
from ...metadata import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE, ModelMetadata
from .base import Backend

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)
DENORMAL_AS_ZERO = "session.set_denormal_as_zero"
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The providers to use, fastest first: the requested ones (aliases allowed) or all usable.

    Requested providers that this onnxruntime build lacks are an error rather than a silent
    fallback to CPU, which would hide a broken GPU install behind a 50x slowdown.
    """
    available = ort.get_available_providers()
    if not requested:
        return [p for p in PREFERRED_PROVIDERS if p in available] or ["CPUExecutionProvider"]
    chosen = [PROVIDER_ALIASES.get(p.strip().lower(), p.strip()) for p in requested if p.strip()]
    missing = [p for p in chosen if p not in available]
    if missing:
        raise UniadError(
            f"onnxruntime provider(s) {', '.join(missing)} not available in this install; "
            f"available: {', '.join(available)}"
        )
    return chosen


GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def check_started(path: Path, asked: Sequence[str], running: Sequence[str]) -> None:
    """A GPU provider that was asked for but did not start is an error, not a silent CPU run.

    ONNX Runtime drops a provider whose libraries or options it cannot use (missing CUDA or
    TensorRT libraries, `trt_timing_cache_path` before 1.17) with only a log warning.
    """
    missing = [p for p in asked if p in GPU_PROVIDERS and p not in running]
    if missing:
        raise UniadError(
            f"{path}: onnxruntime did not start {', '.join(missing)} (running: "
            f"{', '.join(running) or 'none'}); check onnxruntime-gpu >= 1.17 and the CUDA/"
            "TensorRT libraries it needs, or choose the cpu provider"
        )


class OnnxRuntimeBackend(Backend):
    """One InferenceSession over a fused uniad-edge graph."""

    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        provider_options: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UniadError(f"model {self.path} not found; run `uniad-edge export` to create it")
        options = ort.SessionOptions()
        # A trained reconstruction produces float32 denormals that stall x86 CPUs: flushing them
        # to zero took a demo model from 67 to 38 ms per frame (benchmarks/README.md); values
        # under 1e-38 cannot change a score.
        options.add_session_config_entry(DENORMAL_AS_ZERO, "1")
        self.flushes_denormals = True
        if threads is not None:
            if threads < 1:
                raise UniadError(f"threads must be >= 1, got {threads}")
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.providers = choose_providers(providers)
        per_provider = [dict((provider_options or {}).get(p, {})) for p in self.providers]
        try:
            self.session = ort.InferenceSession(
                str(self.path),
                sess_options=options,
                providers=self.providers,
                provider_options=per_provider,
            )
        except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UniadError(
                f"cannot load ONNX model {self.path}: {first}; the file is corrupt or not a "
                "uniad-edge export, re-run `uniad-edge export`"
            ) from None
        if providers:  # the automatic choice may still run on what actually started
            check_started(self.path, self.providers, self.session.get_providers())
        super().__init__(self._read_metadata())
        self._check_signature()

    def _read_metadata(self) -> ModelMetadata:
        props = self.session.get_modelmeta().custom_metadata_map
        metadata, source = model_metadata(self.path, props)
        note = edited_sidecar_note(self.path, metadata, source)
        if note:
            log.warning("%s", note)
        return metadata

    def _check_signature(self) -> None:
        """Refuse graphs that do not take uint8 NHWC BGR, so frames are never mis-scored."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        image = inputs.get(INPUT_NAME)
        if image is None or image.type != "tensor(uint8)" or {OUTPUT_MAP, OUTPUT_SCORE} - outputs:
            raise UniadError(
                f"{self.path} is not a fused uniad-edge graph (expects uint8 input '{INPUT_NAME}' "
                f"and outputs '{OUTPUT_MAP}', '{OUTPUT_SCORE}'); re-run `uniad-edge export`"
            )
        batch = image.shape[0]
        if isinstance(batch, int) and batch > 0:
            self.metadata.batch = batch
        h, w = self.metadata.graph_input_size
        if list(image.shape[1:]) != [h, w, 3]:
            raise UniadError(
                f"{self.path}: input shape {image.shape} does not match the metadata's input "
                f"size {h}x{w}; the sidecar belongs to another model"
            )

    @property
    def device_type(self) -> str:
        return "cpu" if self.providers[0] == "CPUExecutionProvider" else "cuda"

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps, scores = self.session.run([OUTPUT_MAP, OUTPUT_SCORE], {INPUT_NAME: images})
        return maps, scores

    def close(self) -> None:
        self.session = None

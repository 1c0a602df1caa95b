"""Triton Python-backend model that runs the fused ONNX beside it with ONNX Runtime.

`uniad-edge export --format triton --triton-backend python` copies this file verbatim to
`<repo>/<name>/<version>/model.py`, for Triton servers without the onnxruntime backend (the
`tritonserver` bundled in nvidia-pytriton has only the Python one). Its Python needs numpy and
onnxruntime. It imports nothing from uniad-edge, so a server needs only the repository.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import onnxruntime as ort

INPUT_NAME = "image"
OUTPUTS = ("anomaly_map", "score")
THREADS_PARAMETER = "ort_intra_op_threads"


def _quiet_dlpack_rename(hook: Any) -> Any:
    """The stub renames a consumed DLPack capsule to "used_dlpack" where numpy expects
    "used_dltensor", so numpy's capsule destructor reports a ValueError after the data has been
    handed over (nothing leaks: the stub frees the tensor). Drop that one report, keep others."""

    def filtered(unraisable: Any) -> None:
        value = unraisable.exc_value
        if isinstance(value, ValueError) and "PyCapsule_GetPointer" in str(value):
            return
        hook(unraisable)

    return filtered


sys.unraisablehook = _quiet_dlpack_rename(sys.unraisablehook)


class TritonPythonModel:
    """One ONNX Runtime session per model instance; each `execute` runs all queued requests
    (Triton's dynamic batcher hands several over at once) as one batch."""

    def initialize(self, args: dict[str, str]) -> None:
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        parameters = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        threads = int(parameters.get(THREADS_PARAMETER) or 0)
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers: list[Any] = ["CPUExecutionProvider"]
        gpu = args.get("model_instance_kind") == "GPU"
        if gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            device = int(args.get("model_instance_device_id") or 0)
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device}))
        folder = os.path.join(args["model_repository"], args["model_version"])
        self.session = ort.InferenceSession(
            os.path.join(folder, "model.onnx"), sess_options=options, providers=providers
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        pb = self._pb
        try:
            # DLPack both ways: the stub's pybind11 numpy bridge (as_numpy, pb.Tensor(name,
            # array)) reads numpy 1.x dtype structs and garbles data under numpy 2.
            images = [np.from_dlpack(pb.get_input_tensor_by_name(r, INPUT_NAME)) for r in requests]
            maps, scores = self.session.run(list(OUTPUTS), {INPUT_NAME: np.concatenate(images)})
        except Exception as exc:  # noqa: BLE001 - every request gets the error, none is dropped
            return [pb.InferenceResponse(error=pb.TritonError(str(exc))) for _ in requests]
        responses = []
        start = 0
        for image in images:
            stop = start + len(image)
            tensors = [
                pb.Tensor.from_dlpack(name, np.ascontiguousarray(array[start:stop]))
                for name, array in zip(OUTPUTS, (maps, scores), strict=True)
            ]
            responses.append(pb.InferenceResponse(output_tensors=tensors))
            start = stop
        return responses

    def finalize(self) -> None:
        self.session = None

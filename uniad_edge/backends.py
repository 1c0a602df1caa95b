"""The backends whose code lives above the runtime, as rows for the runtime's one table
(`uniad_edge.runtime.backends.registry.BACKENDS`).

PyTorch eager runs a checkpoint with `uniad_edge.model`, which the lean runtime never imports.
So its row is declared here, torch-free (the description `--help` shows and the one-line error
when torch is missing need no torch), and its factory imports the model package only when a
checkpoint is opened. The layers that may reach the model add it with `register_model_backends`
before they open models: the CLI, `bench` (and its worker processes), `calibrate` and
`uniad_edge.Detector`.
Imports flow one way: this module uses the runtime, the runtime never names this one.
"""

from __future__ import annotations

from .runtime.backends import registry
from .runtime.backends.base import Backend


def _torch() -> type[Backend]:
    from .model.torch_backend import TorchBackend

    return TorchBackend


TORCH = registry.BackendSpec(
    "torch",
    _torch,
    "checkpoint",
    "PyTorch eager on a checkpoint (the reference bench measures against)",
    precisions=("fp32", "fp16"),  # int8 exists only as an exported Q/DQ graph
    options=("threads", "precision"),
    unavailable=(
        "cannot run checkpoint {path}: PyTorch backend unavailable ({exc}); install "
        "`uniad-edge[train]`, or export the checkpoint with `uniad-edge export` and run the .onnx"
    ),
)


def register_model_backends() -> None:
    """Add PyTorch eager to the runtime's table (again: no change)."""
    registry.register(TORCH)

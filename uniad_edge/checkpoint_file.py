"""Reading a PyTorch checkpoint file's payload safely: `torch.load(weights_only=True)` with a
one-line error for every way a file can be bad. A file holding pickled Python objects is
refused without running them.

Below the model package on purpose: `artifacts` reads a checkpoint's recorded thresholds with
it, and the model builds a network from the same payload. torch is imported inside the reader,
so importing this module (and `artifacts`, which the lean runtime uses) needs no torch.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from .errors import UniadError
from .fileio import require_file


def read_checkpoint_file(path: str | os.PathLike[str]) -> Any:
    """torch.load with weights_only=True and one-line errors for every way a file can be bad."""
    file = Path(path)
    require_file(file, "check the path or train one first", "checkpoint")
    try:
        import torch
    except ImportError as exc:
        raise UniadError(
            f"{file}: reading a PyTorch checkpoint needs torch ({exc}); install "
            "`uniad-edge[train]`, or export the checkpoint and use the .onnx"
        ) from None
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler names a class it will not import ("Unsupported global")
        # for real pickled objects; any other complaint means the bytes are not a pickle.
        if "unsupported global" in str(exc).lower():
            raise UniadError(
                f"{file}: refused: it holds pickled Python objects that could run code; "
                "load only checkpoints of tensors (re-save its state_dict) from sources you trust"
            ) from None
        raise _not_a_checkpoint(file) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UniadError(
            f"{file}: unreadable checkpoint (truncated or corrupt: {reason}); "
            "re-download or re-train it"
        ) from None
    except Exception:  # noqa: BLE001  (garbage bytes make the unpickler raise KeyError and kin)
        raise _not_a_checkpoint(file) from None


def _not_a_checkpoint(file: Path) -> UniadError:
    return UniadError(f"{file}: not a PyTorch checkpoint (corrupt or another kind of file)")

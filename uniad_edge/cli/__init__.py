"""Command-line entry point: `uniad-edge COMMAND`.

Command modules import their heavy dependencies (torch, onnx) inside the command, so that
`uniad-edge run` works on a device that has only the lean runtime installed.
"""

from __future__ import annotations

import sys

from rich.console import Console

from ..errors import UniadError
from . import bench as _bench  # noqa: F401
from . import eval as _eval  # noqa: F401
from . import export as _export  # noqa: F401
from . import info, run, synth  # noqa: F401  (each import registers its commands on `app`)
from . import train as _train  # noqa: F401
from .app import app


def main() -> None:
    try:
        app()
    except UniadError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)

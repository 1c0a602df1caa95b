"""Command-line entry point: `uniad-edge COMMAND`.

Command modules import their heavy dependencies (torch, onnx) inside the command, so that
`uniad-edge run` works on a device that has only the lean runtime installed.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

from ..errors import UniadError
from . import (  # noqa: F401  (each import registers its commands on `app`)
    adopt,
    bench,
    calibrate,
    cameras,
    demo,
    export,
    info,
    run,
    serve,
    synth,
    train,
)
from . import eval as eval_command  # noqa: F401  (a module named like the builtin)
from .app import app


def main() -> None:
    try:
        app()
    except UniadError as exc:
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)

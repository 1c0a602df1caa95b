"""`uniad-edge cameras`: the GenICam cameras (GigE Vision, USB3 Vision) Aravis finds, with what
a `gige://` source needs to know of each."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..runtime.capture.gige import discover
from .app import app
from .options import default, defaults, given


@app.command()
def cameras(
    details: Annotated[
        bool | None,
        typer.Option(
            "--details/--no-details",
            help="Open each camera for its pixel formats and trigger sources (seconds each).",
            show_default=default(discover, "details"),
        ),
    ] = None,
) -> None:
    """List the GenICam cameras found: vendor, model, serial, protocol, address, pixel formats
    and trigger sources; the DEVICE column is what `--source cam=gige://DEVICE` takes."""
    found = discover(**given(details=details))
    if details is None:
        details = defaults(discover)["details"]
    console = Console()
    if not found:
        console.print(
            "no GenICam camera found (GigE Vision: on a subnet of this host's interfaces; "
            "USB3 Vision: Aravis's udev rules installed)"
        )
        return
    table = Table(title=f"{len(found)} GenICam camera{'s' * (len(found) != 1)}")
    for column in ("device", "vendor", "model", "serial", "protocol", "address"):
        table.add_column(column, overflow="fold")
    if details:
        table.add_column("pixel formats", overflow="fold")
        table.add_column("trigger sources", overflow="fold")
    for info in found:
        row = [info.device, info.vendor, info.model, info.serial, info.protocol, info.address]
        if details:
            formats = ", ".join(info.pixel_formats) or info.note
            row += [formats, ", ".join(info.trigger_sources)]
        table.add_row(*(escape(value) for value in row))
    console.print(table)

"""What one export format step made (`FormatOutput`), apart from the formats table: the step
modules (`engine`, `triton_repo`) return it, and the table imports them, so neither side
imports the other in a circle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FormatOutput:
    """A file or folder a format step wrote (`path`), or None with why not (`note`) and the
    command that makes it elsewhere (`command`)."""

    kind: str
    path: Path | None
    note: str = ""
    command: str = ""

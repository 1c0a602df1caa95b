"""One rule for a user-typed name that becomes a file or folder name (`export --name`, a Triton
model): a single path component of safe characters, checked before any work is done, so that
`--name ../../evil` can never write outside the folder the user chose."""

from __future__ import annotations

import re

from .errors import UniadError

MAX_NAME = 128
PLAIN_NAME = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
"""Letters, digits, `.`, `_` and `-`, not starting with `.` (no `..`, no hidden file), no `/`."""


def check_name(value: str, what: str) -> str:
    """`value` when it is one plain path component, else the one-line error naming `what`."""
    if not PLAIN_NAME.fullmatch(value):
        raise UniadError(
            f"{what} {value!r} must be one plain file name: up to {MAX_NAME} letters, digits, "
            "'.', '_' or '-', not starting with '.' (no folders, no '..')"
        )
    return value

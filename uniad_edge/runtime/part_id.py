"""One rule for part ids, wherever they come from (the API, stdin, MQTT triggers): at most
`MAX_LENGTH` characters of printable text, surrounding blanks dropped, blank meaning "none".
Control characters (CR, LF, NUL, ...) would split a log line, cut an HTTP header or end a
field early in another reader, so they are refused before anything is scored."""

from __future__ import annotations

import unicodedata

from ..errors import UniadError

MAX_LENGTH = 200
REFUSED_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}  # controls, lone surrogates, line breaks


def check_part_id(value: str | None) -> str | None:
    """The part id to record (None for none or blank), or a `UniadError` saying what is wrong."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_LENGTH:
        raise UniadError(f"part id is {len(text)} characters long; at most {MAX_LENGTH}")
    bad = next((ch for ch in text if unicodedata.category(ch) in REFUSED_CATEGORIES), None)
    if bad is not None:
        raise UniadError(
            f"part id contains the control character U+{ord(bad):04X}; send printable text"
        )
    return text

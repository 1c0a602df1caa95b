"""Credentials in URLs (`rtsp://user:secret@10.0.0.5/s`, `mqtt://u:p@broker/t`, a Triton URL)
shown as `rtsp://***@10.0.0.5/s`: the one rule every output follows (JSONL records, the API,
metrics, console lines, error messages). Names are redacted where they are made (a capture
source's description, an address's error), so every consumer gets the redacted form; the real
URL is still what connects."""

from __future__ import annotations

import re

# scheme://userinfo@ : userinfo runs to the last "@" before the host's "/", a space or a quote
# (a password may hold "@"; a URL inside a message or a repr ends at a space or a quote)
USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/'\"<>]*@")
HIDDEN = "***"


def redact_url(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by `***`."""
    return USERINFO.sub(rf"\g<1>{HIDDEN}@", text)

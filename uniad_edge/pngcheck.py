"""Find what is wrong with a damaged PNG before OpenCV decodes it.

libpng reports a broken file by printing `libpng error: ...` straight to the process's stderr
and OpenCV then returns None; checking the chunks and the compressed stream first lets every
caller say one clean line instead (no torch, no OpenCV: the lean runtime uses it too).
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(data: bytes | bytearray | memoryview) -> str | None:
    """Why these PNG bytes are broken (truncated, bad CRC, corrupt image data), else None.

    Bytes that are not a PNG at all return None: OpenCV decides about other formats.
    """
    view = memoryview(data).cast("B")
    if bytes(view[: len(SIGNATURE)]) != SIGNATURE:
        return None
    pos = len(SIGNATURE)
    inflater = zlib.decompressobj()
    while pos + 8 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, pos)
        name = kind.decode("latin-1")
        end = pos + 12 + length
        if end > len(view):
            return f"truncated in its {name} chunk"
        body = view[pos + 8 : end - 4]
        (crc,) = struct.unpack_from(">I", view, end - 4)
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            return f"{name} chunk fails its CRC check"
        if kind == b"IDAT":
            try:
                inflater.decompress(body)
            except zlib.error:
                return "its compressed image data is corrupt"
        if kind == b"IEND":
            return None if inflater.eof else "its compressed image data ends early"
        pos = end
    return "truncated before its IEND chunk"

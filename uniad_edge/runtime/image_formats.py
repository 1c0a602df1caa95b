"""The encoded image formats a station scores: one rule for `run`'s image folders, globs and
files and for `serve`'s uploads, so the same file gets the same verdict both ways.

GIF is refused although OpenCV decodes it: its 256-colour palette dithers away the fine texture a
defect is, and an animated GIF would be scored as its first frame only. HEIC/AVIF/JPEG XL/SVG
OpenCV cannot decode at all. Such a file in a folder is not skipped silently: it becomes an ERROR
record naming the file and the formats to send instead.
"""

from __future__ import annotations

SUPPORTED = "PNG, JPEG, BMP, TIFF, WebP, PGM or PPM"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
REFUSED_SUFFIXES = {
    ".gif": "GIF",
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".avif": "AVIF",
    ".jxl": "JPEG XL",
    ".svg": "SVG",
}
SIGNATURES = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"\xff\x0a": "JPEG XL"}
FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}


def refused_format(data: bytes | memoryview) -> str | None:
    """Why an image in a format that is not scored is refused (read from its first bytes, so a
    GIF named .png is caught too), or None for a format that may be decoded."""
    head = bytes(data[:12])
    name = next((n for sig, n in SIGNATURES.items() if head.startswith(sig)), None)
    if name is None and head[4:8] == b"ftyp":
        name = FTYP_BRANDS.get(head[8:12])
    return None if name is None else f"{name} images are not scored; send {SUPPORTED}"

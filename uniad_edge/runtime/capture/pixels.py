"""GenICam pixel formats as the camera sends them, turned into frames the detector takes.

A machine-vision camera sends raw sensor data named by its PFNC pixel format code: grey
(Mono8..16), a Bayer mosaic (8 to 16 bits), or RGB/BGR. Mono and Bayer data deeper than 8 bits
arrive unpacked in 16-bit little-endian words; they stay uint16 when the station has a
`bit_depth` (the detector scales them, as it does 16-bit PNGs) and are shifted to 8 bits by
the format's own depth otherwise. Packed formats (Mono12p, Mono12Packed, ...) are refused at
start: the camera offers the unpacked one beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PixelFormat:
    """One format this runtime reads: its name, PFNC code, bits per pixel value, channels
    as sent (1 or 3) and the OpenCV conversion to BGR (None: grey, kept as is)."""

    name: str
    code: int
    depth: int
    channels: int
    to_bgr: int | None


# OpenCV names a Bayer conversion by the mosaic's top-left 2x2 block (PFNC BayerRG = RGGB)
BAYER_TO_BGR = {
    "RG": cv2.COLOR_BayerRGGB2BGR,
    "GB": cv2.COLOR_BayerGBRG2BGR,
    "GR": cv2.COLOR_BayerGRBG2BGR,
    "BG": cv2.COLOR_BayerBGGR2BGR,
}


def _bayer(pattern: str, code8: int, wide: dict[int, int]) -> list[PixelFormat]:
    conversion = BAYER_TO_BGR[pattern]
    formats = [PixelFormat(f"Bayer{pattern}8", code8, 8, 1, conversion)]
    formats += [PixelFormat(f"Bayer{pattern}{d}", c, d, 1, conversion) for d, c in wide.items()]
    return formats


# PFNC codes (GenICam Pixel Format Naming Convention), the values the camera reports
FORMATS: dict[str, PixelFormat] = {
    f.name: f
    for f in [
        PixelFormat("Mono8", 0x01080001, 8, 1, None),
        PixelFormat("Mono10", 0x01100003, 10, 1, None),
        PixelFormat("Mono12", 0x01100005, 12, 1, None),
        PixelFormat("Mono14", 0x01100025, 14, 1, None),
        PixelFormat("Mono16", 0x01100007, 16, 1, None),
        PixelFormat("RGB8", 0x02180014, 8, 3, cv2.COLOR_RGB2BGR),
        PixelFormat("BGR8", 0x02180015, 8, 3, None),
        *_bayer("GR", 0x01080008, {10: 0x0110000C, 12: 0x01100010, 16: 0x0110002E}),
        *_bayer("RG", 0x01080009, {10: 0x0110000D, 12: 0x01100011, 16: 0x0110002F}),
        *_bayer("GB", 0x0108000A, {10: 0x0110000E, 12: 0x01100012, 16: 0x01100030}),
        *_bayer("BG", 0x0108000B, {10: 0x0110000F, 12: 0x01100013, 16: 0x01100031}),
    ]
}
BY_CODE = {f.code: f for f in FORMATS.values()}
ALIASES = {"RGB8Packed": "RGB8", "BGR8Packed": "BGR8"}  # GigE Vision 1.x names


def pixel_format(name: str) -> PixelFormat | None:
    """The format called `name` (PFNC or its GigE Vision 1.x alias), or None if unsupported."""
    return FORMATS.get(ALIASES.get(name, name))


def check_depth(fmt: PixelFormat, bit_depth: int | None) -> str | None:
    """Why `fmt` cannot be read with the station's `bit_depth` (None: it can)."""
    if bit_depth is None or fmt.depth == 8 or bit_depth == fmt.depth:
        return None
    return (
        f"pixel_format {fmt.name} carries {fmt.depth} bits but bit_depth is {bit_depth}: set "
        f"bit_depth = {fmt.depth}, or leave it out to score the frames as 8 bits"
    )


def to_frame(
    data: bytes, code: int, width: int, height: int, bit_depth: int | None
) -> np.ndarray | str:
    """The frame in `data` (grey HxW or BGR HxWx3; uint16 when `bit_depth` is given and the
    format is deeper than 8 bits), or why it cannot be read."""
    fmt = BY_CODE.get(code)
    if fmt is None:
        return f"pixel format 0x{code:08x} is not one this runtime reads ({', '.join(FORMATS)})"
    itemsize = 1 if fmt.depth == 8 else 2
    row = width * fmt.channels * itemsize
    if width < 1 or height < 1 or len(data) < row * height:
        return f"{fmt.name} frame of {width}x{height} needs {row * height} bytes, got {len(data)}"
    stride = len(data) // height  # rows may be padded
    raw = np.frombuffer(data, np.uint8, count=stride * height).reshape(height, stride)[:, :row]
    pixels = (
        raw.copy()
        .view("<u2" if itemsize == 2 else np.uint8)
        .astype(np.uint16 if itemsize == 2 else np.uint8, copy=False)
    )
    pixels = pixels.reshape(height, width, fmt.channels) if fmt.channels == 3 else pixels
    if fmt.to_bgr is not None:
        pixels = cv2.cvtColor(pixels, fmt.to_bgr)
    if itemsize == 2 and bit_depth is None:
        pixels = (pixels >> (fmt.depth - 8)).astype(np.uint8)
    return pixels

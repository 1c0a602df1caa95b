"""Issue 14 bug 6: bad files and interruptions end in one clear line, never a misleading one.

Random bytes are "not a PyTorch checkpoint" (not "pickled objects"); Ctrl-C in training says
how to resume; a corrupt PNG gives the clean error without libpng's own stderr line first;
"1 class", not "1 classes". (Export onto a full disk: tests/test_export_onnx.py.)
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import default_signals, end, run_main
from onnx_fixtures import build_model as build_fixture_model
from runtime_helpers import write_folder

from uniad_edge.data import open_dataset
from uniad_edge.data.synth import generate
from uniad_edge.errors import UniadError
from uniad_edge.model import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "content",
    [np.random.default_rng(0).bytes(4096), b"hello, not a checkpoint\n"],
    ids=["random-bytes", "text"],
)
def test_random_bytes_are_not_a_pytorch_checkpoint(tmp_path, content: bytes) -> None:
    path = tmp_path / "noise.pth"
    path.write_bytes(content)
    with pytest.raises(UniadError, match="not a PyTorch checkpoint") as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "pickled" not in message and str(path) in message and "\n" not in message


def corrupt_png(path: Path, seed: int = 0) -> Path:
    """A PNG whose IDAT stream is damaged but whose CRC is recomputed: it passes a chunk check,
    so only the decoder notices (libpng prints 'incorrect data check' on its own)."""
    rng = np.random.default_rng(seed)
    ok, encoded = cv2.imencode(".png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    data = bytearray(encoded.tobytes())
    start = data.find(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    for k in range(start + 20, start + 40):
        data[k] ^= 0x55
    crc = zlib.crc32(bytes(data[start : start + 4 + length])) & 0xFFFFFFFF
    data[start + 4 + length : start + 8 + length] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def crc_broken_png(path: Path) -> Path:
    ok, encoded = cv2.imencode(".png", np.full((32, 32, 3), 90, np.uint8))
    data = bytearray(encoded.tobytes())
    data[data.find(b"IDAT") + 6] ^= 0x55
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", [corrupt_png, crc_broken_png])
def test_corrupt_png_in_a_dataset_is_one_clean_line(tmp_path, capfd, damage) -> None:
    data = tmp_path / "data"
    generate(data, classes=1, train_per_class=2, test_per_class=2, size=32, seed=0)
    victim = sorted((data / "fabric" / "train" / "good").glob("*.png"))[0]
    damage(victim)
    capfd.readouterr()
    dataset = open_dataset(data, "train")
    with pytest.raises(UniadError, match="not a readable image"):
        list(dataset.records())
    captured = capfd.readouterr()
    assert "libpng" not in captured.err + captured.out


@pytest.mark.parametrize("damage", [corrupt_png, crc_broken_png])
def test_corrupt_png_in_a_run_folder_is_skipped_without_libpng_noise(
    tmp_path, capfd, caplog, damage
) -> None:
    model = tmp_path / "m.onnx"
    build_fixture_model(model)
    folder = write_folder(tmp_path / "imgs", good=2, bad=0)
    damage(folder / "a_good_001.png")
    capfd.readouterr()
    assert run_main("run", "--model", model, "--source", folder, "--log", tmp_path / "l") == 0
    captured = capfd.readouterr()
    assert "libpng" not in captured.err + captured.out
    assert "unreadable frames" in captured.out
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "a_good_001.png" in warning and ("CRC" in warning or "corrupt" in warning)


def gif_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., ::-1]).save(buffer, format="GIF")
    return buffer.getvalue()


def test_a_gif_in_a_run_folder_is_an_error_record_not_skipped(tmp_path, caplog) -> None:
    """OpenCV decodes GIF, but a 256-colour palette is not what the camera saw: the GIF (and one
    named .png) is an ERROR record naming the file and the formats to send, with a warning."""
    model = tmp_path / "m.onnx"
    build_fixture_model(model)
    folder = write_folder(tmp_path / "imgs", good=2, bad=0)
    frame = cv2.imread(str(folder / "a_good_000.png"))
    (folder / "c_part.gif").write_bytes(gif_bytes(frame))
    (folder / "d_named.png").write_bytes(gif_bytes(frame))
    (folder / "notes.txt").write_text("not an image")
    log = tmp_path / "l.jsonl"
    assert run_main("run", "--model", model, "--source", folder, "--log", log) == 0
    records = {r["name"]: r for r in map(json.loads, log.read_text().splitlines())}
    assert set(records) == {"a_good_000.png", "a_good_001.png", "c_part.gif", "d_named.png"}
    for name in ("c_part.gif", "d_named.png"):
        assert records[name]["verdict"] == "ERROR" and records[name]["score"] is None
        assert "GIF images are not scored" in records[name]["error"]
        assert "PNG, JPEG" in records[name]["error"] and name in records[name]["error"]
        assert any(name in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_one_class_is_singular(tmp_path) -> None:
    data = tmp_path / "data"
    generate(data, classes=1, train_per_class=2, test_per_class=2, size=32, seed=0)
    summary = open_dataset(data, "test").summary()
    assert "1 class" in summary and "1 classes" not in summary


def test_ctrl_c_in_training_exits_130_and_says_resume(tmp_path) -> None:
    data = tmp_path / "data"
    generate(data, classes=1, train_per_class=6, test_per_class=2, size=32, seed=0)
    out = tmp_path / "run"
    command = [sys.executable, "-c", "from uniad_edge.cli import main; main()", "train",
               "--data", str(data), "--out", str(out), "--preset", "mvtec-224", "--epochs", "500",
               "--random-backbone", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_signals
    )
    try:
        deadline = time.monotonic() + 600  # generous: the machine may be busy
        while not (out / "last.pth").is_file() and proc.poll() is None:
            assert time.monotonic() < deadline, "training never saved a checkpoint"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        end(proc)
    assert proc.returncode == 130, stderr.decode()
    message = stderr.decode()
    assert "--resume" in message and "Traceback" not in message
    assert "".join(str(out).split()) in "".join(message.split())


@pytest.mark.parametrize("compression", [0, 3, 9])
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((40, 30), np.uint8), ((40, 30, 3), np.uint8), ((40, 30, 4), np.uint8),
     ((40, 30, 3), np.uint16), ((700, 900, 3), np.uint8)],
)  # fmt: skip
def test_valid_pngs_pass_the_check(shape, dtype, compression) -> None:
    """No false alarms: grey, colour, alpha, 16-bit, and a large image split over many IDATs."""
    from uniad_edge.pngcheck import png_problem

    rng = np.random.default_rng(1)
    image = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    data = encoded.tobytes()
    assert png_problem(data) is None
    assert png_problem(data[: len(data) - 20]) is not None  # and a cut one is caught
    assert png_problem(b"\xff\xd8\xff\xe0 a JPEG header") is None  # other formats: OpenCV decides


def test_a_png_from_another_encoder_passes_the_check() -> None:
    """Pillow writes ancillary chunks (text, gamma) and splits IDAT its own way."""
    import io

    from PIL import Image, PngImagePlugin

    from uniad_edge.pngcheck import png_problem

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "test")
    buffer = io.BytesIO()
    pixels = np.random.default_rng(2).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG", pnginfo=info, optimize=True)
    assert png_problem(buffer.getvalue()) is None

"""A GenICam camera through Aravis (`gige://`): frame rate and trigger-to-verdict latency,
against Aravis's GigE Vision simulator on 127.0.0.1 (real GVCP/GVSP over loopback).

    python benchmarks/gige_camera.py [--model export/model.onnx] [--fps 100] [--frames 300]
                                     [--triggers 50] [--width 512 --height 512]

1. Capture alone: a free-running camera at `--fps`, frames per second through `FrameStream`
   (what the Aravis stream, the copy out of its buffer and the pixel conversion sustain) and
   the frames lost (incomplete, or ids that never came).
2. The station free-running on it: verdicts per second, dropped (replaced before scoring) and
   lost frames.
3. Software triggers: the station in trigger mode, `--triggers` parts one after the other;
   `trigger_ms` (from the trigger call to the verdict: TriggerSoftware over GVCP, exposure and
   transfer over GVSP, scoring) as median, p90 and maximum.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _fixture import TESTS, add_model_arguments, describe_model, model_or_fixture

sys.path.insert(0, str(TESTS))
from gige_helpers import DEVICE, FakeGigeCamera  # noqa: E402

from uniad_edge.runtime.capture import FrameStream, make_reader  # noqa: E402
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig  # noqa: E402


def capture_rate(url: str, seconds: float) -> tuple[float, int, int]:
    stream = FrameStream(make_reader(url)).start()
    try:
        first = stream.get(timeout=10)
        assert first is not None, "no frame from the camera"
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            if stream.get(timeout=2) is not None:
                count += 1
        elapsed = time.perf_counter() - started
    finally:
        stream.stop()
        stream.join(10)
    return count / elapsed, stream.reader.lost, stream.dropped


def station_rate(url: str, model: Path, frames: int, threads: int | None) -> dict[str, float]:
    config = StationConfig(
        cameras=[CameraConfig("cam", url)], model=model, max_frames=frames, threads=threads
    )
    station = Station(config)
    try:
        started = time.perf_counter()
        summary = station.run()
        elapsed = time.perf_counter() - started
        state = summary.states["cam"]
        lost = station.cameras["cam"].stream.reader.lost
    finally:
        station.close()
    return {"fps": summary.frames / elapsed, "dropped": state.dropped, "lost": lost}


def trigger_latency(url: str, model: Path, triggers: int, threads: int | None) -> list[float]:
    config = StationConfig(
        cameras=[CameraConfig("cam", url)], model=model, trigger_only=True, threads=threads
    )
    station = Station(config).start()
    latencies = []
    try:
        station.trigger("cam", "warm-up", timeout=10)
        for i in range(triggers):
            record = station.trigger("cam", f"P-{i}", timeout=10)
            assert record["verdict"] != "ERROR", record.get("error")
            latencies.append(float(record["trigger_ms"]))
    finally:
        station.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--fps", type=float, default=100.0, help="the camera's frame rate")
    parser.add_argument("--frames", type=int, default=300, help="frames the station scores")
    parser.add_argument("--seconds", type=float, default=5.0, help="capture-alone duration")
    parser.add_argument("--triggers", type=int, default=50)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = model_or_fixture(args.model, work, args.size, args.extra_work)
        camera = FakeGigeCamera(work)
        try:
            roi = f"roi=0,0,{args.width},{args.height}"
            free = f"gige://{DEVICE}?{roi}&fps={args.fps:g}&pixel_format=Mono8"
            print(f"model: {describe_model(args)}; camera: {DEVICE}, {args.width}x"
                  f"{args.height} Mono8 at {args.fps:g} fps asked")  # fmt: skip
            rate, lost, dropped = capture_rate(free, args.seconds)
            print(f"capture alone: {rate:.1f} frames/s, lost {lost}, dropped {dropped}")
            scored = station_rate(free, model, args.frames, args.threads)
            print(
                f"station free-running: {scored['fps']:.1f} verdicts/s, dropped "
                f"{scored['dropped']:.0f}, lost {scored['lost']:.0f}"
            )
            triggered = f"gige://{DEVICE}?{roi}&pixel_format=Mono8"
            ms = sorted(trigger_latency(triggered, model, args.triggers, args.threads))
            p90 = ms[int(0.9 * (len(ms) - 1))]
            print(
                f"software trigger -> verdict over {len(ms)} parts: median "
                f"{statistics.median(ms):.1f} ms, p90 {p90:.1f} ms, max {ms[-1]:.1f} ms"
            )
        finally:
            camera.close()


if __name__ == "__main__":
    main()

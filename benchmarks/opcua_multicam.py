"""OPC UA under load: 4 cameras at 30 fps for 30 s with a subscribed asyncua client.

    python benchmarks/opcua_multicam.py [--cameras 4] [--fps 30] [--seconds 30] [--size 224]

Reports per camera the frames scored, frames dropped by the camera (a stall would drop them),
the longest gap between two consecutive verdicts, the data changes the client received, and the
OPC UA summary counts (verdicts written, superseded). A stall shows as drops and a gap well
above one frame period (33 ms at 30 fps).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from _fixture import TESTS

from uniad_edge.runtime.opcua.config import NAMESPACE_URI, OpcuaConfig
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported .onnx (default: fixture)")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--port", type=int, default=48400)
    parser.add_argument("--no-opcua", action="store_true", help="baseline: the same, no server")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    from runtime_helpers import PacedCamera

    names = [f"cam{i}" for i in range(args.cameras)]
    url = f"opc.tcp://127.0.0.1:{args.port}/uniad"
    changes: dict[str, int] = defaultdict(int)
    subscribed, done = threading.Event(), threading.Event()

    class Handler:
        def datachange_notification(self, node, _value, _data) -> None:
            changes[node.nodeid.Identifier.split(".")[1]] += 1

    async def subscriber() -> None:
        from asyncua import Client

        async with Client(url) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            subscription = await client.create_subscription(50, Handler())
            nodes = [
                client.get_node(f"ns={idx};s=Cameras.{n}.{v}")
                for n in names
                for v in ("Verdict", "Score", "FrameIndex")
            ]
            await subscription.subscribe_data_change(nodes)
            subscribed.set()
            while not done.is_set():
                await asyncio.sleep(0.1)

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model = Path(args.model)
        else:
            sys.path.insert(0, str(TESTS))
            from onnx_fixtures import build_model

            model = Path(tmp) / "fixture.onnx"
            build_model(model, input_size=(args.size, args.size))
        times: dict[str, list[float]] = defaultdict(list)
        config = StationConfig(
            cameras=[CameraConfig(n, PacedCamera(args.fps, (args.size,) * 2)) for n in names],
            model=model,
            opcua=None if args.no_opcua else OpcuaConfig(url),
        )
        with Station(config) as station:
            station.subscribe(lambda v: times[v.camera].append(v.frame.timestamp))
            station.start()
            client = threading.Thread(target=lambda: asyncio.run(subscriber()), daemon=True)
            if not args.no_opcua:
                client.start()
                subscribed.wait(60)
            time.sleep(args.seconds)
            done.set()
            if client.is_alive():
                client.join(30)
            station.stop()
            summary = station.wait(120)
    assert summary is not None
    what = "no OPC UA (baseline)" if args.no_opcua else "OPC UA server and a subscriber"
    print(f"{args.cameras} cameras at {args.fps:g} fps for {args.seconds:g} s, {what}")
    for name in names:
        stamps = times[name]
        gap = max((b - a for a, b in zip(stamps, stamps[1:], strict=False)), default=0.0)
        state = summary.states[name]
        print(
            f"  {name}: {summary.cameras[name].frames} frames, {state.dropped} dropped, "
            f"longest gap {gap * 1e3:.0f} ms, {changes[name]} data changes received"
        )
    print("  " + ", ".join(f"{k} {v}" for k, v in summary.sinks.items() if "OPC UA" in k))


if __name__ == "__main__":
    main()

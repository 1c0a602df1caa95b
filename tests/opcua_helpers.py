"""OPC UA test helpers: a station with an OPC UA server on a free loopback port, asyncua client
reads and subscriptions, and the node-opcua client script under tests/opcua_node/."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("asyncua", reason="the OPC UA tests need asyncua: pip install asyncua")

from uniad_edge.runtime.opcua.config import NAMESPACE_URI  # noqa: E402
from uniad_edge.runtime.opcua.values import CAMERA_VARIABLES, VERDICT_VARIABLES  # noqa: E402

NODE_DIR = Path(__file__).parent / "opcua_node"


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def seconds(stamp: datetime | None) -> float:
    assert stamp is not None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def kind(record: dict[str, Any]) -> str:
    """The counter a JSONL record goes to: OK, NG, UNSCORED (no threshold) or ERROR."""
    if "error" in record or record["verdict"] == "ERROR":
        return "ERROR"
    return "UNSCORED" if record["verdict"] is None else record["verdict"]


def expected_values(record: dict[str, Any]) -> dict[str, Any]:
    """What the OPC UA variables must read for this JSONL record (counters aside)."""
    verdict = kind(record)
    nan = float("nan")
    return {
        "Verdict": verdict,
        "IsOK": verdict == "OK",
        "Score": nan if record["score"] is None else record["score"],
        "NormalizedScore": nan
        if record["normalized_score"] is None
        else record["normalized_score"],
        "Threshold": nan if record["threshold"] is None else record["threshold"],
        "PartId": record.get("part_id") or "",
        "SourceTimestamp": record["timestamp"],
        "FrameIndex": record["index"],
        "ModelId": record.get("model") or "",
    }


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=2e-6)  # DateTime: 100 ns ticks
    return a == b


def assert_matches(values: dict[str, Any], record: dict[str, Any]) -> None:
    for name, want in expected_values(record).items():
        assert same(values[name], want), (name, values[name], want, record)


def counts_until(records: list[dict], camera: str, index: int) -> dict[str, int]:
    """OkCount/NgCount/ErrorCount/UnscoredCount after `camera`'s frame `index`, from the log."""
    names = {"OK": "OkCount", "NG": "NgCount", "ERROR": "ErrorCount", "UNSCORED": "UnscoredCount"}
    counts = dict.fromkeys([*names.values(), "LostCount"], 0)  # these sources lose no frame
    for record in records:
        if record["camera"] != camera:
            continue
        counts[names[kind(record)]] += 1
        if record["index"] == index:
            return counts
    raise AssertionError(f"no record of {camera} frame {index}")


async def namespace(client: Any) -> int:
    return await client.get_namespace_index(NAMESPACE_URI)


async def read_camera(client: Any, idx: int, camera: str) -> dict[str, Any]:
    """All of a camera's variables in one Read service call; DateTime as epoch seconds."""
    names = list(CAMERA_VARIABLES)
    nodes = [client.get_node(f"ns={idx};s=Cameras.{camera}.{n}") for n in names]
    values = dict(zip(names, await client.read_values(nodes), strict=True))
    values["SourceTimestamp"] = seconds(values["SourceTimestamp"])
    return values


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Collector:
    """asyncua subscription handler: every data change with its source timestamp."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, Any, float]] = []

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        stamp = data.monitored_item.Value.SourceTimestamp
        key = node.nodeid.Identifier
        self.changes.append((key, value, seconds(stamp) if stamp else math.nan))


async def subscribe(client: Any, handler: Any, node_ids: list[str], interval_ms: int = 10) -> Any:
    """A subscription delivering every data change of `node_ids` to `handler`."""
    subscription = await client.create_subscription(interval_ms, handler)
    await subscription.subscribe_data_change([client.get_node(n) for n in node_ids])
    return subscription


def node_client_or_skip() -> list[str]:
    """The node-opcua read script's command, or skip with the reason."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed; the node-opcua client tests need it")
    if not (NODE_DIR / "node_modules" / "node-opcua-client").is_dir():
        pytest.skip(f"node-opcua is not installed: run `npm install` in {NODE_DIR}")
    return [node, str(NODE_DIR / "read.js")]


def _node_result(script: str, *args: str) -> dict[str, Any]:
    node = node_client_or_skip()[0]
    done = subprocess.run(
        [node, str(NODE_DIR / script), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout + done.stderr
    return json.loads(lines[-1].removeprefix("RESULT "))


def node_read(url: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    return _node_result("read.js", url, NAMESPACE_URI, *keys)["values"]


def node_trigger(url: str, camera: str, arguments: list[tuple[str, Any]]) -> dict[str, Any]:
    """node-opcua calls `camera`'s Trigger with (data type, value) arguments: its status and
    each argument's status."""
    typed = [{"dataType": kind, "value": value} for kind, value in arguments]
    return _node_result("call.js", url, NAMESPACE_URI, camera, json.dumps(typed))


__all__ = ["CAMERA_VARIABLES", "VERDICT_VARIABLES"]

"""Sinks see a narrow `SinkContext`, never the `Station`: no import of the station package from
`runtime/sinks`, not even a type-only one, and every table entry builds from a context alone."""

from __future__ import annotations

import ast
from concurrent.futures import Future
from pathlib import Path

from uniad_edge.runtime import sinks
from uniad_edge.runtime.sinks import SINKS, SinkContext
from uniad_edge.runtime.station import StationConfig
from uniad_edge.runtime.station.config import CameraConfig

SINKS_DIR = Path(sinks.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (relative ones resolved within uniad_edge.runtime.sinks)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ["uniad_edge", "runtime", "sinks"][: 3 - node.level + 1] if node.level else []
            found.add(".".join([*base, node.module or ""]).strip("."))
    return found


def test_no_sink_module_imports_the_station():
    for path in sorted(SINKS_DIR.glob("*.py")):
        station = {m for m in imported_modules(path) if "station" in m.split(".")}
        assert not station, f"{path.name} imports {station}: a sink must see only SinkContext"


def test_every_sink_builds_from_a_context_alone(tmp_path):
    config = StationConfig(cameras=[CameraConfig("top", str(tmp_path))], log=tmp_path / "l.jsonl")
    stopped: list[str] = []
    context = SinkContext(
        config=config,
        cameras=("top",),
        counters=lambda: {"top": {"frames": 0}},
        model_id=lambda: "m@0",
        threshold_provenance=lambda: "",
        subscribe=lambda callback: lambda: None,
        trigger=lambda camera, part: Future(),
        stop=stopped.append,
    )
    made = {name: make(context) for name, make in SINKS.items()}
    assert made["jsonl"] is not None and made["images"] is None and made["mqtt"] is None
    assert made["display"] is None and made["callback"] is not None and made["opcua"] is None
    for sink in made.values():
        if sink is not None:
            sink.close()

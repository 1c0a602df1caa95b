"""The runtime and `uniad-edge run` work with torch and efficientnet_pytorch unimportable."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from onnx_fixtures import build_model
from runtime_helpers import write_video

import uniad_edge


def test_runtime_imports_and_runs_without_torch(tmp_path):
    model = tmp_path / "m.onnx"
    build_model(model)
    video = write_video(tmp_path / "v.mp4", good=3, bad=3)
    log = tmp_path / "out.jsonl"
    script = textwrap.dedent(f"""
        import sys
        for name in ("torch", "efficientnet_pytorch"):
            sys.modules[name] = None
        import numpy as np
        from uniad_edge import Detector
        det = Detector({str(model)!r})
        frame = np.full((40, 50, 3), (90, 120, 150), np.uint8)
        frame[10:30, 10:30] = 255
        assert det(frame).verdict == "NG", det(frame)
        from uniad_edge.cli import main
        sys.argv = ["uniad-edge", "run", "--model", {str(model)!r}, "--source",
                    {str(video)!r}, "--log", {str(log)!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        bad = [m for m in ("torch", "efficientnet_pytorch") if sys.modules.get(m) is not None]
        assert not bad, bad
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(Path(log).read_text().splitlines()) == 6
    assert all(json.loads(line)["score"] >= 0 for line in log.read_text().splitlines())


def test_import_uniad_edge_stays_light():
    code = "import sys, uniad_edge; print(sorted({'cv2','onnxruntime','torch'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


RUNTIME = Path(uniad_edge.__file__).parent / "runtime"
FORBIDDEN = {"model", "train", "export", "cli", "evaluate", "demo", "bench"}
HEAVY = ("torch", "efficientnet_pytorch")


def _imported_modules(source: str, package: tuple[str, ...]) -> set[str]:
    """Absolute names of everything `source` (a module of `package`) imports, at module level
    or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.update(f"{stem}.{alias.name}" for alias in node.names)
            names.add(stem)
    return names


def _package(path: Path) -> tuple[str, ...]:
    return ("uniad_edge", *path.relative_to(RUNTIME.parent).parent.parts)


def test_runtime_imports_flow_one_way():
    files = sorted(RUNTIME.rglob("*.py"))
    assert any(f.name == "registry.py" for f in files)
    bad = {
        f"{path.name}: {name}"
        for path in files
        for name in _imported_modules(path.read_text(), _package(path))
        if name.split(".")[0] in HEAVY
        or (name.startswith("uniad_edge.") and name.split(".")[1] in FORBIDDEN)
    }
    assert not bad, sorted(bad)


def test_the_import_check_sees_lazy_and_relative_imports():
    source = "import torch.nn\ndef f():\n    from ..model.torch_backend import T\n"
    found = _imported_modules(source, ("uniad_edge", "runtime"))
    assert {"torch.nn", "uniad_edge.model.torch_backend"} <= found


def test_every_runtime_module_imports_without_torch():
    modules = sorted(
        "uniad_edge.runtime." + ".".join(p.relative_to(RUNTIME).with_suffix("").parts)
        for p in RUNTIME.rglob("*.py")
        if p.name != "__init__.py"
    )
    code = textwrap.dedent(f"""
        import importlib, sys
        import uniad_edge.runtime
        for name in {modules!r}:
            importlib.import_module(name)
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

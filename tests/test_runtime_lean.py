"""The runtime and `uniad-edge run` work with torch and efficientnet_pytorch unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from onnx_fixtures import build_model
from runtime_helpers import write_video


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

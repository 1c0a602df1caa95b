"""Issue 14 bug 5: paths with `[` and `]` reach the terminal verbatim from every command.

rich reads `[red]` as a style (silently dropped) and `[/x]` as a closing tag (MarkupError
traceback); every folder below holds both. One test per command family, on real files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_main
from onnx_fixtures import build_model as build_fixture_model
from runtime_helpers import write_folder

from uniad_edge.data.synth import generate
from uniad_edge.demo.steps import DemoResult, _print_summary
from uniad_edge.model import build_model, save_checkpoint


def odd(root: Path) -> Path:
    """`root/odd[/x]/[red]`: a closing-tag look-alike and a style name in one path."""
    folder = root / "odd[" / "x]" / "[red]"
    folder.mkdir(parents=True)
    return folder


def flat(text: str) -> str:
    """Terminal output without the line breaks and padding rich adds to fit the width."""
    return "".join(text.split())


def seen(path: Path, text: str) -> bool:
    return flat(str(path)) in flat(text)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return odd(tmp_path_factory.mktemp("esc"))


@pytest.fixture(scope="module")
def checkpoint(folder, small_preset) -> Path:
    return save_checkpoint(folder / "m.pth", build_model(small_preset, pretrained=False))


@pytest.fixture(scope="module")
def dataset(folder) -> Path:
    data = folder / "data"
    generate(data, classes=1, train_per_class=4, test_per_class=4, size=64, seed=0)
    return data


def test_error_messages_print_paths_verbatim(folder, capsys) -> None:
    missing = folder / "missing.pth"
    assert run_main("info", missing) == 2
    assert seen(missing, capsys.readouterr().err)


def test_info(checkpoint, capsys) -> None:
    assert run_main("info", checkpoint) == 0
    assert seen(checkpoint, capsys.readouterr().out)


def test_synth(folder, capsys) -> None:
    out = folder / "synth"
    args = ("--classes", 1, "--train-per-class", 1, "--test-per-class", 2, "--size", 32)
    assert run_main("synth", "--out", out, *args) == 0
    assert seen(out, capsys.readouterr().out)


def test_eval(checkpoint, dataset, folder, capsys) -> None:
    metrics = folder / "metrics.json"
    assert run_main("eval", "--ckpt", checkpoint, "--data", dataset, "--json", metrics) == 0
    printed = capsys.readouterr().out
    assert seen(metrics, printed) and seen(checkpoint, printed)


def test_train(dataset, folder, capsys) -> None:
    out = folder / "run"
    args = ("--preset", "mvtec-224", "--epochs", 1, "--random-backbone", "--no-progress")
    assert run_main("train", "--data", dataset, "--out", out, *args) == 0
    assert seen(out, capsys.readouterr().out)


def test_run(folder, capsys) -> None:
    model = folder / "fixture.onnx"
    build_fixture_model(model)
    images = write_folder(folder / "imgs", good=2, bad=2)
    log = folder / "log.jsonl"
    assert run_main("run", "--model", model, "--source", images, "--log", log) == 0
    assert log.is_file()
    assert run_main("run", "--model", model, "--source", folder / "nope.avi") == 2
    assert seen(folder / "nope.avi", capsys.readouterr().err)


def test_bench(folder, capsys) -> None:
    model = folder / "bench.onnx"
    build_fixture_model(model)
    report = folder / "bench.json"
    args = ("--backends", "onnxruntime", "--runs", 2, "--warmup", 1, "--no-e2e")
    assert run_main("bench", "--model", model, *args, "--json", report) == 0
    assert seen(report, capsys.readouterr().out)


def test_demo_summary(folder, capsys) -> None:
    from rich.console import Console

    html = folder / "report.html"
    result = DemoResult(
        folder, folder / "report.md", html, False, 0.5, "EfficientNet-B4", [("step", 1.0)]
    )
    _print_summary(result, Console(width=400))
    assert seen(html, capsys.readouterr().out)

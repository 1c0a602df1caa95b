"""Each default lives once, in the config dataclass or function that uses it: the CLI passes
what the user left unset through as None. Before, `train` overrode a preset file's jitter with
its own 20.0/1.0, and `info` described mvtec-512 while train and demo used mvtec-224."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest
import typer
from cli_helpers import run_main
from model_helpers import TINY

import uniad_edge.train
from uniad_edge.bench import BenchConfig
from uniad_edge.cli import app
from uniad_edge.cli.options import default, defaults
from uniad_edge.data.synth import generate
from uniad_edge.demo.config import DemoConfig
from uniad_edge.export import formats
from uniad_edge.model import load_checkpoint
from uniad_edge.presets import DEFAULT_PRESET
from uniad_edge.train import TrainConfig

CLI_ONLY = {("train", "progress")}  # how to display, not what to compute


def test_no_command_holds_a_default_of_its_own():
    own = {
        (command.callback.__name__, name, param.default)
        for command in app.registered_commands
        for name, param in inspect.signature(command.callback).parameters.items()
        if param.default not in (inspect.Parameter.empty, None, False)
        and (command.callback.__name__, name) not in CLI_ONLY
    }
    assert not own, sorted(own, key=str)


def test_train_keeps_a_preset_files_jitter(tmp_path):
    data = tmp_path / "data"
    generate(data, classes=2, train_per_class=6, test_per_class=2, size=64, seed=0)
    preset = TINY.replace(name="jitter-5", jitter_scale=5.0, jitter_prob=0.5)
    preset_file = tmp_path / "preset.json"
    preset_file.write_text(json.dumps(preset.to_dict()))
    out = tmp_path / "run"
    args = ("--data", data, "--out", out, "--epochs", "1", "--random-backbone", "--no-progress")
    assert run_main("train", "--preset", preset_file, "--jitter-prob", "0.25", *args) == 0
    trained = load_checkpoint(out / "last.pth").preset
    assert (trained.jitter_scale, trained.jitter_prob) == (5.0, 0.25)  # file's, then the flag's


def test_one_default_preset_for_train_demo_and_info(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(uniad_edge.train, "train", lambda config, **_: seen.update(c=config))
    assert run_main("train", "--data", tmp_path, "--out", tmp_path / "o") == 0
    assert seen["c"].resolved_preset().name == DEFAULT_PRESET
    assert DemoConfig().preset == DEFAULT_PRESET == TrainConfig(tmp_path, tmp_path).preset
    monkeypatch.setattr("typer.echo", lambda text: seen.update(info=json.loads(text)))
    assert run_main("info", "--json") == 0
    assert seen["info"]["preset"] == DEFAULT_PRESET


def test_export_and_bench_pass_only_what_was_given(tmp_path, monkeypatch):
    calls = []

    def fake_export(ckpt, **options):
        calls.append(options)
        raise SystemExit(0)

    monkeypatch.setattr(formats, "export", fake_export)
    assert run_main("export", "--ckpt", tmp_path / "m.pth") == 0
    assert set(calls[-1]) == {"progress"}  # every other setting: ExportOptions' default
    assert run_main("export", "--ckpt", tmp_path / "m.pth", "--no-verify", "--opset", "19") == 0
    assert {k: v for k, v in calls[-1].items() if k != "progress"} == {"verify": False, "opset": 19}

    def fake_bench(config, progress=None):
        calls.append(config)
        raise SystemExit(0)

    monkeypatch.setattr("uniad_edge.cli.bench.run_bench", fake_bench)
    model = Path(tmp_path / "m.onnx")
    assert run_main("bench", "--model", model) == 0
    assert calls[-1] == BenchConfig(model=model)


@pytest.mark.parametrize("command", ["train", "export", "bench", "demo"])
def test_help_shows_the_dataclass_defaults(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per option
    assert run_main(command, "--help") == 0
    text = capsys.readouterr().out
    expected = {
        "train": str(TrainConfig.epochs),
        "export": "export",
        "bench": "1280x720",
        "demo": str(DemoConfig.out),
    }[command]
    assert f"(default: {expected}" in text.replace("[default: (", "(default: ")


def _sources() -> dict[str, tuple[object, ...]]:
    """Where each command's defaults live (dataclasses, or the function the command calls)."""
    from uniad_edge.calibrate.config import CalibrateConfig
    from uniad_edge.data.synth import generate
    from uniad_edge.evaluate import evaluate
    from uniad_edge.export.options import ExportOptions, TritonOptions
    from uniad_edge.runtime.station import StationConfig
    from uniad_edge.serve.config import ServeConfig

    return {
        "run": (StationConfig,),
        "serve": (ServeConfig, StationConfig),
        "train": (TrainConfig,),
        "export": (ExportOptions, TritonOptions),
        "bench": (BenchConfig,),
        "calibrate": (CalibrateConfig,),
        "demo": (DemoConfig,),
        "eval": (evaluate,),
        "synth": (generate,),
        "info": (),
    }


# An option whose name differs from the field it sets.
FIELD_OF = {
    ("run", "batch"): "max_batch",
    ("run", "write_retry"): "write_retry_s",
    ("serve", "allowed_host"): "allowed_hosts",
    ("bench", "precision"): "precisions",
    ("bench", "batch"): "batches",
    ("bench", "frame_size"): "frame_wh",
    ("export", "workspace"): "workspace_gib",
    ("export", "max_batch"): "max_batch_size",
    ("export", "triton_backend"): "backend",
    ("export", "instances"): "instance_count",
    ("export", "preferred_batch"): "preferred_batch_sizes",
}
# Options whose field default is None or a rule, not a value (the help describes it).
DESCRIBED = {
    ("run", "model"),
    ("serve", "model"),
    ("run", "reconnect_tries"),
    ("serve", "allowed_host"),
    ("bench", "backends"),
    ("bench", "frame_size"),
    ("export", "format"),
    ("export", "instance_kind"),
    ("export", "calib_data"),  # None means "the provenance's calibration folder", said in words
    ("train", "jitter_scale"),
    ("train", "jitter_prob"),
    ("run", "station"),  # a station file, not the `station` field
    ("serve", "station"),
}
# eval's defaults live in `evaluate()`, whose package imports torch: reading them for --help
# would make every command import torch; eval is being moved onto the runtime's Detector.
NOT_YET = {("eval", "batch_size"), ("eval", "device"), ("eval", "workers")}
HARD_CODED = re.compile(r"\[[^\]]*\]\s*$|default:?\s*[\d\[]")


def _defaults_of(owner: object) -> dict[str, object]:
    if dataclasses.is_dataclass(owner):
        return {
            f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(owner)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
    return defaults(owner)


def _options(command: str) -> list:
    group = typer.main.get_command(app)
    return [p for p in group.commands[command].params if type(p).__name__.endswith("Option")]


@pytest.mark.parametrize("command", sorted(_sources()))
def test_every_help_default_is_its_dataclass_field(command):
    """Each option that sets a field with a default shows that default, read from the field
    (`options.default`), and no help text carries a hard-coded one like `[8080]`."""
    sources = _sources()[command]
    problems = []
    for option in _options(command):
        key = (command, option.name)
        field = FIELD_OF.get(key, option.name)
        owner = next((o for o in sources if field in _defaults_of(o)), None)
        value = None if owner is None else _defaults_of(owner)[field]
        shown = option.show_default if isinstance(option.show_default, str) else None
        if HARD_CODED.search(option.help or ""):
            problems.append(f"--{option.name}: help hard-codes a default: {option.help!r}")
        if key in DESCRIBED | NOT_YET or isinstance(value, bool) or owner is None:
            continue
        if value is None:
            if shown is not None:
                problems.append(f"--{option.name}: shows {shown!r}, the field's default is None")
            continue
        if shown != default(owner, field):
            problems.append(
                f"--{option.name}: shows {shown!r}, {field} is {default(owner, field)!r}"
            )
    assert not problems, "\n".join(problems)


def test_serve_config_is_http_settings_plus_a_station_config():
    """No setting twice: the model, backend, batching and outputs live in `StationConfig`."""
    from uniad_edge.runtime.station import StationConfig
    from uniad_edge.serve.config import ServeConfig

    serve = {f.name for f in dataclasses.fields(ServeConfig)}
    station = {f.name for f in dataclasses.fields(StationConfig)}
    assert not serve & station, sorted(serve & station)
    config = ServeConfig.from_options(model="m.onnx", max_batch=4, port=9000)
    assert (config.station.model, config.station.max_batch, config.port) == ("m.onnx", 4, 9000)

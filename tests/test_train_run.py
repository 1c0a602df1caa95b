"""Training runs on a tiny synthetic set and preset: resume, torchrun/gloo, cache, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import run_main
from model_helpers import TINY

from uniad_edge.data.synth import generate
from uniad_edge.model import load_checkpoint
from uniad_edge.train import TrainConfig, train
from uniad_edge.train import trainer as trainer_module


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, classes=2, train_per_class=6, test_per_class=4, size=64, seed=0)
    return root


def _config(data: Path, out: Path, **changes) -> TrainConfig:
    settings = {"preset": TINY, "epochs": 3, "batch_size": 4, "random_backbone": True, "seed": 1}
    return TrainConfig(data=data, out=out, **{**settings, **changes})


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory) -> Path:
    """An uninterrupted 3-epoch run keeping every epoch's checkpoint."""
    out = tmp_path_factory.mktemp("straight")
    train(_config(data, out, save_every=1), show_progress=False)
    return out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def test_resume_after_interruption_equals_uninterrupted(
    data, straight, tmp_path, monkeypatch
) -> None:
    steps = {"n": 0}
    real_step = trainer_module.train_step

    def power_cut(*args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 6:  # epoch 3 (8 images, 2 batches per epoch), second batch
            raise RuntimeError("power cut")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "train_step", power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        train(_config(data, tmp_path / "cut"), show_progress=False)
    monkeypatch.setattr(trainer_module, "train_step", real_step)
    assert load_checkpoint(tmp_path / "cut" / "last.pth").meta["epoch"] == 2
    train(_config(data, tmp_path / "cut", resume=True), show_progress=False)

    expected = _weights(straight / "last.pth")
    resumed = _weights(tmp_path / "cut/last.pth")
    assert expected.keys() == resumed.keys()
    for key, value in expected.items():
        assert torch.equal(value, resumed[key]), key
    a = load_checkpoint(straight / "last.pth")
    b = load_checkpoint(tmp_path / "cut/last.pth")
    assert a.meta["thresholds"] == b.meta["thresholds"]
    assert a.training["optimizer"]["state"][0]["exp_avg"].equal(
        b.training["optimizer"]["state"][0]["exp_avg"]
    )


def test_checkpoint_meta_and_training_state(straight) -> None:
    assert {p.name for p in straight.glob("*.pth")} == {
        "last.pth",
        "best.pth",
        "epoch_0001.pth",
        "epoch_0002.pth",
        "epoch_0003.pth",
    }
    ckpt = load_checkpoint(straight / "last.pth")
    meta = ckpt.meta
    assert ckpt.class_names == ["fabric", "wood"]
    assert set(ckpt.thresholds["per_class"]) == {"fabric", "wood"}
    assert ckpt.thresholds["global"] > 0 and "percentile" in ckpt.thresholds["rule"]
    assert meta["epoch"] == 3 and meta["backbone_pretrained"] is False
    assert "random-init" in meta["backbone_warning"]
    assert meta["training_config"]["lr"] == 1e-4 and meta["training_config"]["clip"] == 0.1
    assert meta["dataset"]["per_class"]["fabric"] == {"train": 4, "holdout": 2}
    assert ckpt.training["epoch"] == 3 and ckpt.training["rng"]["cpu"].dtype == torch.uint8
    assert (
        load_checkpoint(straight / "best.pth").training is None
    )  # best.pth: deployable, not resumable


def test_disk_cache_is_reused_then_rebuilt_when_data_changes(data, tmp_path) -> None:
    copy = tmp_path / "data"
    generate(copy, classes=1, train_per_class=4, test_per_class=2, size=64, seed=3)
    out = tmp_path / "run"
    train(_config(copy, out, epochs=1, cache="disk"), show_progress=False)
    first = list((out / "cache").glob("features-*.npy"))
    assert len(first) == 1
    stamp = first[0].stat().st_mtime_ns
    train(_config(copy, out, epochs=2, cache="disk", resume=True), show_progress=False)
    assert first[0].stat().st_mtime_ns == stamp  # reused, not recomputed
    extra = copy / "fabric/train/good/extra.png"
    extra.write_bytes((copy / "fabric/train/good/000.png").read_bytes())
    train(_config(copy, out, epochs=3, cache="disk", resume=True), show_progress=False)
    second = list((out / "cache").glob("features-*.npy"))
    assert len(second) == 1 and second[0] != first[0]  # new key, stale file pruned


def test_two_process_gloo_run_with_torchrun(data, tmp_path) -> None:
    preset_file = tmp_path / "tiny.json"
    preset_file.write_text(json.dumps(TINY.to_dict()))
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "uniad_edge.train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--preset",
        str(preset_file),
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--random-backbone",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es)" in done.stdout
    ckpt = load_checkpoint(out / "last.pth")
    assert ckpt.training["world_size"] == 2
    assert ckpt.training["rng"]["cpu"].shape[0] == 2  # one random stream per rank
    assert ckpt.meta["epoch"] == 2 and ckpt.class_names == ["fabric", "wood"]
    assert list((out / "cache").glob("features-*.npy"))  # torchrun uses the shared disk cache


def _one_line_error(capsys, code: int, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error:") and needle in err
    assert "Traceback" not in err


def test_bad_inputs_are_one_line_errors(data, tmp_path, capsys) -> None:
    base = ("--epochs", "1", "--random-backbone", "--no-progress")
    code = run_main("train", "--data", tmp_path / "nope", "--out", tmp_path / "o", *base)
    _one_line_error(capsys, code, "does not exist")
    empty = tmp_path / "empty"
    (empty / "widget/train/good").mkdir(parents=True)
    code = run_main("train", "--data", empty, "--out", tmp_path / "o", *base)
    _one_line_error(capsys, code, "has no images")
    code = run_main("train", "--data", data, "--out", tmp_path / "fresh", "--resume", *base)
    _one_line_error(capsys, code, "last.pth does not exist")
    code = run_main("train", "--data", data, "--out", tmp_path / "o", "--cache", "ram", *base)
    _one_line_error(capsys, code, "cache must be one of")
    code = run_main("train", "--data", data, "--out", tmp_path / "o", "--preset", "huge", *base)
    _one_line_error(capsys, code, "unknown preset")
    code = run_main("eval", "--ckpt", tmp_path / "none.pth", "--data", data)
    _one_line_error(capsys, code, "no such checkpoint")


def test_ctrl_c_leaves_no_exit_time_collection_to_wait_for(data, tmp_path, monkeypatch) -> None:
    """Issue 21: under load, Ctrl-C took over a minute to end training, spent in the
    interpreter's exit-time garbage collection over torch's object graph. An interrupted run
    freezes the live objects out of the collector, so the process ends as soon as the message
    is printed."""
    import gc

    calls = []
    real_step = trainer_module.train_step

    def step_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(trainer_module, "train_step", step_then_interrupt)
    assert gc.get_freeze_count() == 0
    try:
        with pytest.raises(KeyboardInterrupt):
            train(_config(data, tmp_path / "run"), show_progress=False)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

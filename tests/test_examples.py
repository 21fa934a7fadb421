"""Every example runs offline with its small-data flag and writes the views it promises."""

from __future__ import annotations

import os
import runpy
import sys

import keras
import pytest
from util import read_run

import keras_vizcallbacks as kv

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(name: str, *args: str, monkeypatch) -> int:
    """Run ``examples/<name>`` as a script (``__main__``) with ``args``; return its exit code."""
    path = os.path.join(EXAMPLES, name)
    monkeypatch.setattr(sys, "argv", [path, *args])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(path, run_name="__main__")
    return exc.value.code


def groups(log_dir: str) -> set[str]:
    return {tag.split("/")[0] for tag in read_run(log_dir)}


def test_every_example_is_tested():
    scripts = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py"))
    assert scripts == [
        "custom_view.py",
        "distributed_jax.py",  # run by tests/test_distributed_jax.py (it starts processes of its own)
        "distributed_mirrored.py",  # run by tests/test_distributed_tf.py (logical devices: a fresh process)
        "finetune_nested_resnet.py",
        "multi_output.py",
        "seed_cifar10_airplane_car.py",
        "signals_1d.py",
        "tfdata_pipeline.py",
        "two_moons_decision_boundary.py",
    ]


def test_signals_1d_small(tmp_path, monkeypatch, capsys):
    log_dir = str(tmp_path / "signals")
    assert run_example("signals_1d.py", "--small", "--logdir", log_dir, monkeypatch=monkeypatch) == 0
    run = read_run(log_dir)
    tags = ["grad_cam/conv2", "saliency/smoothgrad", "feature_maps/conv1", "feature_maps/conv2", "filters/conv1"]
    for tag in [*tags, "filters/conv2"]:
        assert [r.step for r in run[tag]] == [0, 1], tag
    for tag in tags[:2]:  # one panel per recording, the picture as wide as the 1-D layout
        assert run[tag][-1].width == 560, tag
    assert "validation accuracy" in capsys.readouterr().out


def test_seed_cifar10_small_uses_every_view(tmp_path, monkeypatch, capsys):
    log_dir = str(tmp_path / "seed")
    assert run_example("seed_cifar10_airplane_car.py", "--small", "--logdir", log_dir, monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "not CIFAR-10" in out  # says what --small trains on
    run = read_run(log_dir)
    expected = {"filters", "feature_maps", "grad_cam", "saliency", "decision_boundary", "confusion_matrix"}
    assert expected <= groups(log_dir), sorted(run)
    for tag, records in run.items():
        assert [r.step for r in records] == ([1] if tag.endswith("/evolution") else [0, 1]), tag
    assert "filters/conv2d/evolution" in run


def test_seed_cifar10_without_small_explains_offline(tmp_path, monkeypatch, capsys):
    def offline():
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    log_dir = str(tmp_path / "seed")
    assert run_example("seed_cifar10_airplane_car.py", "--logdir", log_dir, monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert "Could not load CIFAR-10" in err and "--small" in err


def test_finetune_nested_resnet_small(tmp_path, monkeypatch, capsys):
    log_dir = str(tmp_path / "resnet")
    assert run_example("finetune_nested_resnet.py", "--small", "--logdir", log_dir, monkeypatch=monkeypatch) == 0
    run = read_run(log_dir)
    # Two phases of 1 epoch: the second fit continues at step 1.
    for tag in [
        "filters/resnet50/conv1_conv",
        "feature_maps/resnet50/conv1_conv",
        "feature_maps/resnet50/conv3_block4_out",
    ]:
        assert [r.step for r in run[tag]] == [0, 1], tag
    assert [r.step for r in run["grad_cam/resnet50/conv4_block6_out"]] == [0, 1]


def test_multi_output_small(tmp_path, monkeypatch, capsys):
    log_dir = str(tmp_path / "multi")
    assert run_example("multi_output.py", "--small", "--logdir", log_dir, monkeypatch=monkeypatch) == 0
    run = read_run(log_dir)
    for tag in ("grad_cam/conv2d_1", "grad_cam_area/conv2d_1", "saliency_area/smoothgrad", "confusion_matrix"):
        assert [r.step for r in run[tag]] == [0, 1], sorted(run)
    assert any(t.startswith("feature_maps/") for t in run)


def test_two_moons_small(tmp_path, monkeypatch, capsys):
    log_dir = str(tmp_path / "moons")
    assert run_example("two_moons_decision_boundary.py", "--small", "--logdir", log_dir, monkeypatch=monkeypatch) == 0
    run = read_run(log_dir)
    assert [r.step for r in run["decision_boundary/input"]] == [0, 1, 2]
    assert [r.step for r in run["decision_boundary/input/evolution"]] == [2]


def test_examples_write_a_new_log_dir_per_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert run_example("two_moons_decision_boundary.py", "--small", monkeypatch=monkeypatch) == 0
    runs = sorted(os.listdir(tmp_path / "logs"))
    assert len(runs) == 2 and all(r.startswith("two_moons-") for r in runs), runs
    for r in runs:  # each run its own directory, with its own three steps
        assert [rec.step for rec in read_run(str(tmp_path / "logs" / r))["decision_boundary/input"]] == [0, 1, 2]
    single_process = [
        "custom_view.py",
        "finetune_nested_resnet.py",
        "multi_output.py",
        "seed_cifar10_airplane_car.py",
        "signals_1d.py",
        "tfdata_pipeline.py",
        "two_moons_decision_boundary.py",
    ]
    for name in single_process:  # each defaults to a new directory
        assert run_example(name, "--help", monkeypatch=monkeypatch) == 0
        assert "new logs/" in " ".join(capsys.readouterr().out.split()), name


def test_tfdata_pipeline_small(tmp_path, monkeypatch):
    log_dir = str(tmp_path / "tfdata")
    assert run_example("tfdata_pipeline.py", "--small", "--logdir", log_dir, monkeypatch=monkeypatch) == 0
    run = read_run(log_dir)
    expected = {"filters", "feature_maps", "grad_cam", "saliency", "decision_boundary", "confusion_matrix"}
    assert groups(log_dir) == expected
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1], tag
    # FeatureMaps took its first 4 samples (max_samples=4) from the validation dataset.
    assert "for 4 fixed samples" in kv.writers.read_descriptions(os.path.join(log_dir, "viz"))["feature_maps/conv2d"]


def test_custom_view_small(tmp_path, monkeypatch):
    log_dir = str(tmp_path / "custom")
    assert run_example("custom_view.py", "--small", "--logdir", log_dir, monkeypatch=monkeypatch) == 0
    run = read_run(log_dir)
    tags = ["activation_histograms/conv2d", "activation_histograms/conv2d_1"]
    assert sorted(run) == sorted([*tags, *(t + "/evolution" for t in tags)])
    for tag in tags:
        assert [r.step for r in run[tag]] == [0, 1] and [r.step for r in run[tag + "/evolution"]] == [1]

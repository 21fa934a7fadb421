"""python -m keras_vizcallbacks.demo: options, output, what it writes; the CIFAR-10 path without the internet."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from util import read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import demo

SMALL = ["--epochs", "2", "--n-train", "128", "--n-val", "32", "--samples", "3", "--verbose", "0"]


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--dataset", "--out", "--views", "--samples", "shapes", "cifar10"):
        assert option in out


def test_demo_writes_every_available_view_and_prints_the_tensorboard_command(tmp_path, capsys):
    out_dir = str(tmp_path / "demo")
    assert demo.main([*SMALL, "--out", out_dir]) == 0
    out = capsys.readouterr().out
    assert f"tensorboard --logdir {out_dir} --samples_per_plugin=images=1000 --host 127.0.0.1" in out
    run = read_run(out_dir)
    views = {tag.split("/")[0] for tag in run}
    for name in demo.VIEWS:  # every view wrote something
        assert name in views, f"{name} wrote nothing; tags: {sorted(run)}"
    assert {"filters", "feature_maps"} <= views
    assert "saliency/smoothgrad" in run  # SmoothGrad, as the README shows
    for tag, records in run.items():
        steps = [r.step for r in records]
        assert steps == ([1] if tag.endswith("/evolution") else [0, 1]), (tag, steps)
        assert tag in out  # the summary names every tag
    event_bytes = sum(
        os.path.getsize(os.path.join(out_dir, "viz", f))
        for f in os.listdir(os.path.join(out_dir, "viz"))
        if ".tfevents." in f  # not the dashboard's manifest
    )
    assert f"event file {event_bytes / 2**20:.1f} MiB" in out or f"event file {event_bytes / 1024:.0f} KiB" in out
    assert os.path.isdir(os.path.join(out_dir, "train")) and os.path.isdir(os.path.join(out_dir, "validation"))


def test_views_option_selects_and_rejects(tmp_path, capsys):
    out_dir = str(tmp_path / "filters_only")
    assert demo.main([*SMALL, "--out", out_dir, "--views", "filters", "--no-evolution"]) == 0
    assert sorted(read_run(out_dir)) == ["filters/conv2d", "filters/conv2d_1"]
    assert demo.main([*SMALL, "--out", str(tmp_path / "x"), "--views", "filters,nonsense"]) == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "feature_maps" in err


def test_default_out_dir_is_timestamped(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert demo.main([*SMALL, "--epochs", "1", "--views", "filters", "--no-evolution"]) == 0
    (name,) = os.listdir(tmp_path / "logs")
    assert name.startswith("demo-") and name[5:13].isdigit()
    assert f"--logdir logs/{name} " in capsys.readouterr().out


def test_new_log_dir_is_timestamped_and_new(tmp_path):
    first = demo.new_log_dir("run", root=str(tmp_path))
    os.makedirs(first)
    second = demo.new_log_dir("run", root=str(tmp_path))  # the same second: a suffix, not the same directory
    assert os.path.basename(first).startswith("run-") and os.path.basename(first)[4:12].isdigit()
    assert second != first and not os.path.exists(second) and second.startswith(first)


def test_cifar10_offline_gives_a_clear_message(tmp_path, monkeypatch, capsys):
    def offline():
        raise OSError("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    assert demo.main([*SMALL, "--dataset", "cifar10", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "Could not load CIFAR-10" in err and "--dataset shapes" in err
    assert not os.path.exists(tmp_path / "c")


def test_cifar10_airplane_vs_car_when_loadable(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)

    def fake_load():  # CIFAR-10's layout: uint8 images, labels (N, 1) over 10 classes
        x = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
        y = (np.arange(60) % 10).reshape(-1, 1).astype(np.uint8)
        return (x, y), (x[:30], y[:30])

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake_load)
    out_dir = str(tmp_path / "c")
    assert demo.main([*SMALL, "--dataset", "cifar10", "--out", out_dir, "--views", "filters,feature_maps"]) == 0
    out = capsys.readouterr().out
    assert "12 training and 6 validation images" in out and "airplane, car" in out
    assert "feature_maps/conv2d" in read_run(out_dir)


def test_fixed_samples_cover_the_classes():
    data = kv.datasets.shapes(40, seed=5)
    x, y = demo.fixed_samples(data.images, data.labels, 6)
    assert len(x) == 6 and sorted(set(y.tolist())) == [0, 1, 2, 3]
    assert len(set(y[:4].tolist())) == 4  # one of each class first

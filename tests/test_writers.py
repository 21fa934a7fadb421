"""writers/: one shared writer per run, flushed after each write, closed at train end."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import compiled, random_data, small_sequential
from util import assert_steps, image, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import writers


def test_callbacks_share_one_writer_and_close_it(log_dir):
    model = compiled(small_sequential())
    x, y = random_data()
    seen = []

    class Spy(kv.FilterGrid):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self._writer)
            super().on_epoch_end(epoch, logs)

    cbs = [Spy(log_dir, layers=["c1"]), kv.FeatureMaps(log_dir, samples=x[:2])]
    model.fit(x, y, epochs=2, verbose=0, callbacks=cbs)
    assert seen[0] is seen[1]
    assert writers.open_writers() == []
    files = [f for f in os.listdir(os.path.join(log_dir, "viz")) if "tfevents" in f]
    assert len(files) == 1
    assert_steps(read_run(log_dir), ["filters/c1", "feature_maps/c1", "feature_maps/c2"], [0, 1])


def test_images_are_on_disk_after_each_epoch(log_dir):
    """Flush after every write: a reader sees epoch 0 while training is still running."""
    model = compiled(small_sequential())
    x, y = random_data()
    seen_during_training = []

    class Reader(kv.FilterGrid):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            seen_during_training.append([r.step for r in read_run(log_dir).get("filters/c1", [])])

    model.fit(x, y, epochs=2, verbose=0, callbacks=[Reader(log_dir, layers=["c1"])])
    assert seen_during_training == [[0], [0, 1]]


def test_png_dir_mirrors_the_event_file(log_dir, tmp_path):
    model = compiled(small_sequential())
    x, y = random_data()
    png_dir = tmp_path / "png"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[kv.FilterGrid(log_dir, layers=["c2"], png_dir=str(png_dir))])
    from PIL import Image

    for step, rec in enumerate(read_run(log_dir)["filters/c2"]):
        on_disk = np.asarray(Image.open(png_dir / "filters__c2" / f"step_{step:06d}.png").convert("RGB"))
        np.testing.assert_array_equal(on_disk, image(rec))
    assert "Conv2D `c2`" in (png_dir / "filters__c2" / "description.md").read_text()


def test_writer_rejects_non_uint8(tmp_path):
    w = writers.TensorBoardWriter(str(tmp_path))
    with pytest.raises(TypeError, match="uint8"):
        w.write("x", np.zeros((4, 4, 3), np.float32), 0)
    w.close()


def test_custom_run_name(log_dir):
    model = compiled(small_sequential())
    x, y = random_data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FilterGrid(log_dir, layers=["c1"], run_name="kernels")])
    assert sorted(read_run(log_dir, "kernels")) == ["filters/c1"]

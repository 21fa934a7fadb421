"""Input mistakes that used to slip through: each is a clear ValueError before the first batch.

Every case is run through ``model.fit`` with a spy callback after the view: the spy records
whether a training batch began, so "before the first batch" is checked, not assumed.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from util import compiled, random_data, read_run, small_sequential

import keras_vizcallbacks as kv


class _FirstBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.reached = False

    def on_train_batch_begin(self, batch, logs=None):
        self.reached = True


def _fit_raises(view, match, x=None, y=None):
    model = compiled(small_sequential())
    if x is None:
        x, y = random_data(8)
    spy = _FirstBatch()
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[view, spy])
    assert not spy.reached, "the error came after training had started"


@pytest.mark.parametrize("bad", [None, "", "   "])
def test_log_dir_none_or_empty(bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"log_dir must be a directory path .*got " + repr(bad).replace("'", "'")):
        kv.FilterGrid(bad)
    assert not os.path.exists(tmp_path / "None")  # nothing created in the working directory


def test_log_dir_accepts_a_path(tmp_path):
    model = compiled(small_sequential())
    x, y = random_data(8)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FilterGrid(tmp_path / "logs", layers=["c1"])])
    assert "filters/c1" in read_run(str(tmp_path / "logs"))


@pytest.mark.parametrize("bad", [-5, 0, 2.5, True, "8"])
def test_batch_size_must_be_a_positive_integer(bad, log_dir):
    x, y = random_data(8)
    for make in (
        lambda: kv.ConfusionMatrix(log_dir, (x, y), batch_size=bad),
        lambda: kv.DecisionBoundary(log_dir, (x, y), batch_size=bad),
        lambda: kv.TopActivations(log_dir, x, batch_size=bad),
    ):
        with pytest.raises(ValueError, match=f"batch_size must be an integer >= 1, got {bad!r}"):
            make()


def test_numpy_integers_are_integers(log_dir):
    """np.int64 (from a config file, an array's shape) is as good as an int; the values are ints after."""
    x, y = random_data(8)
    views = [
        kv.FilterGrid(log_dir, layers=["c1"], every_n_epochs=np.int64(1)),
        kv.ConfusionMatrix(log_dir, (x, y), batch_size=np.int32(4), max_points=np.int64(8)),
        kv.GradCAM(log_dir, samples=(x[:2], y[:2]), max_samples=np.int64(2), queue_size=np.int16(1)),
    ]
    assert views[0].schedule.every_n_epochs == 1 and type(views[0].schedule.every_n_epochs) is int
    assert type(views[1].batch_size) is int and type(views[1].max_points) is int
    model = compiled(small_sequential())
    model.fit(x, y, epochs=1, verbose=0, callbacks=views)
    assert all(v.failures == [] for v in views)
    assert {"filters/c1", "confusion_matrix", "grad_cam/c2"} <= set(read_run(log_dir))


def test_integrated_gradients_baseline_of_the_wrong_shape(log_dir):
    x, y = random_data(8)
    view = kv.Saliency(
        log_dir, samples=(x[:4], y[:4]), method="integrated_gradients", method_options={"baseline": np.zeros((8, 8, 3))}
    )
    _fit_raises(view, r"baseline of shape \(8, 8, 3\) does not broadcast to the images \(4, 16, 16, 3\)")


def test_integrated_gradients_baselines_that_broadcast_are_fine(log_dir):
    x, y = random_data(8)
    for baseline in (0.5, np.zeros((16, 16, 3)), np.zeros((4, 16, 16, 3)), np.zeros((1, 1, 3))):
        view = kv.Saliency(
            log_dir, samples=(x[:4], y[:4]), method="integrated_gradients", method_options={"baseline": baseline}
        )
        compiled(small_sequential()).fit(x, y, epochs=1, verbose=0, callbacks=[view])
        assert view.failures == []


def test_a_single_image_is_reported_with_its_own_shape(log_dir):
    x, _ = random_data(8)
    _fit_raises(kv.GradCAM(log_dir, samples=x[0]), r"has shape \(16, 16, 3\) \(rank 3\).*x\[None\] for a single image")


def test_a_python_list_of_images_suggests_np_stack(log_dir):
    x, _ = random_data(8)
    _fit_raises(
        kv.Saliency(log_dir, samples=[x[0], x[1], x[2]]), r"a Python list of 3 arrays of shape \(16, 16, 3\).*np\.stack"
    )


def test_feature_maps_on_a_subclassed_model_says_what_works(log_dir):
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)
            self.flat = keras.layers.Flatten()
            self.out = keras.layers.Dense(3)

        def call(self, t):
            return self.out(self.flat(self.conv(t)))

    model = Sub()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = random_data(8)
    spy = _FirstBatch()
    with pytest.raises(ValueError) as info:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FeatureMaps(log_dir, samples=x[:2]), spy])
    message = str(info.value)
    assert "subclassed" in message and "functional or Sequential" in message
    assert "spatial outputs: ." not in message  # not the empty list it used to print
    assert not spy.reached


def _channels_first_model(rank: int) -> keras.Model:
    """A classifier that reads its input channels-first: (batch, 2, 64) signals or (batch, 3, 16, 16) images."""
    conv = keras.layers.Conv1D if rank == 1 else keras.layers.Conv2D
    pool = keras.layers.GlobalAveragePooling1D if rank == 1 else keras.layers.GlobalAveragePooling2D
    inp = keras.Input((2, 64) if rank == 1 else (3, 16, 16))
    h = conv(4, 3, activation="relu", data_format="channels_first", name="c1")(inp)
    h = conv(4, 3, activation="relu", data_format="channels_first", name="c2")(h)
    out = keras.layers.Dense(3, activation="softmax")(pool(data_format="channels_first")(h))
    return compiled(keras.Model(inp, out, name=f"cf{rank}d"))


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("view", ["FeatureMaps", "GradCAM", "Saliency", "TopActivations", "ActivationMaximization"])
def test_channels_first_input_is_refused_by_the_views_that_draw_it(rank, view, log_dir):
    """Drawn as (batch, ..., channels), a channels-first (2, 64) signal became 2 steps of 64 channels."""
    if view in ("TopActivations", "ActivationMaximization") and rank == 1:
        pytest.skip(f"{view} draws 2-D image inputs only")
    model = _channels_first_model(rank)
    x = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
    y = np.arange(8) % 3
    made = {
        "FeatureMaps": lambda: kv.FeatureMaps(log_dir, x[:2]),
        "GradCAM": lambda: kv.GradCAM(log_dir, x[:2]),
        "Saliency": lambda: kv.Saliency(log_dir, x[:2]),
        "TopActivations": lambda: kv.TopActivations(log_dir, x, layer="c2"),
        "ActivationMaximization": lambda: kv.ActivationMaximization(log_dir, layer="c2"),
    }[view]()
    spy = _FirstBatch()
    with pytest.raises(ValueError) as e:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[made, spy])
    msg = str(e.value)
    assert msg.startswith(view) and "channels-first" in msg and "'c1'" in msg and "channels_last" in msg
    assert not spy.reached, "the error came after training had started"

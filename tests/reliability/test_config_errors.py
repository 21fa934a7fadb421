"""Configuration errors: ValueError in on_train_begin, before the first batch, naming the fix."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import viewset
from util import compiled, random_data, small_functional, small_sequential

import keras_vizcallbacks as kv


class BatchCounter(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.batches += 1


def fails_before_first_batch(model, callback, match: str, x=None, y=None) -> ValueError:
    """Fit with ``callback``: a ValueError matching ``match``, no batch run, no writer left open."""
    if x is None:
        x, y = random_data(8)
    counter = BatchCounter()
    before = kv.writers.open_writers()
    with pytest.raises(ValueError, match=match) as info:
        model.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[counter, callback])
    assert counter.batches == 0
    assert kv.writers.open_writers() == before, "a failed on_train_begin left its writer open"
    return info.value


@pytest.fixture
def model():
    return compiled(small_functional())


@pytest.fixture
def xy():
    return random_data(8)


# ------------------------------------------------------------------ layers


@pytest.mark.parametrize("name", ["FilterGrid", "FeatureMaps"])
def test_unknown_layer_names_what_exists(model, log_dir, xy, name):
    x, y = xy
    cb = viewset.build(name, log_dir, x[:2], y[:2], layers=["conv_nope"])
    err = fails_before_first_batch(model, cb, "conv_nope")
    assert "c1" in str(err) and "c2" in str(err), str(err)


def test_gradcam_unknown_layer(model, log_dir, xy):
    x, y = xy
    cb = viewset.build("GradCAM", log_dir, x[:2], y[:2], layer="conv_nope")
    err = fails_before_first_batch(model, cb, "conv_nope")
    assert "c2" in str(err), str(err)


def test_dense_layer_for_filter_grid(model, log_dir):
    err = fails_before_first_batch(model, kv.FilterGrid(log_dir, layers=["out"]), "not a convolution layer")
    assert "Dense" in str(err) and "c1" in str(err)


def test_dense_layer_for_feature_maps(model, log_dir, xy):
    x, _ = xy
    err = fails_before_first_batch(model, kv.FeatureMaps(log_dir, x[:2], layers=["out"]), "no spatial output")
    assert "c1" in str(err) and "p1" in str(err), str(err)


def test_gradcam_dense_layer(model, log_dir, xy):
    x, y = xy
    cb = viewset.build("GradCAM", log_dir, x[:2], y[:2], layer="out")
    err = fails_before_first_batch(model, cb, "out")
    assert "c2" in str(err) or "c1" in str(err), str(err)


def dense_only():
    return compiled(
        keras.Sequential(
            [keras.Input((16, 16, 3)), keras.layers.Flatten(name="flat"), keras.layers.Dense(3, name="out")],
            name="mlp",
        )
    )


def test_no_conv_layer_filter_grid(log_dir):
    err = fails_before_first_batch(dense_only(), kv.FilterGrid(log_dir), "no convolution layer")
    assert "flat" in str(err) and "out" in str(err)


def test_no_conv_layer_feature_maps(log_dir, xy):
    x, _ = xy
    fails_before_first_batch(dense_only(), kv.FeatureMaps(log_dir, x[:2]), "no convolution layer")


def test_no_conv_layer_gradcam(log_dir, xy):
    x, y = xy
    fails_before_first_batch(dense_only(), viewset.build("GradCAM", log_dir, x[:2], y[:2]), "conv|spatial")


# ------------------------------------------------------------------ samples

SAMPLE_VIEWS = [n for n in viewset.available() if n != "FilterGrid"]


@pytest.mark.parametrize("name", SAMPLE_VIEWS)
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda x: x[0], r"rank"),  # one image without its batch axis
        (lambda x: x[:, :8, :8], r"\(N, 16, 16, 3\)"),  # wrong size
        (lambda x: x[..., :1], r"\(N, 16, 16, 3\)"),  # wrong channel count
        (lambda x: x[:0], r"empty"),
    ],
    ids=["rank", "size", "channels", "empty"],
)
def test_bad_samples(model, log_dir, xy, name, make, match):
    x, y = xy
    bad = make(x)
    cb = viewset.build(name, log_dir, bad, y[: len(bad)] if bad.ndim == 4 else y[:1])
    fails_before_first_batch(model, cb, match)


@pytest.mark.parametrize("name", SAMPLE_VIEWS)
def test_labels_do_not_match_samples(model, log_dir, xy, name):
    x, y = xy
    cb = viewset.build(name, log_dir, x[:4], y[:3])
    fails_before_first_batch(model, cb, r"4 inputs but 3 labels")


@pytest.mark.parametrize("name", SAMPLE_VIEWS)
def test_class_index_out_of_range(model, log_dir, xy, name):
    x, _ = xy
    cb = viewset.build(name, log_dir, x[:4], np.array([0, 1, 7, 2]), class_names=["a", "b", "c"])
    err = fails_before_first_batch(model, cb, r"7")
    assert "3" in str(err), str(err)


@pytest.mark.parametrize("name", SAMPLE_VIEWS)
def test_more_class_names_than_outputs(model, log_dir, xy, name):
    x, y = xy
    cb = viewset.build(name, log_dir, x[:4], y[:4], class_names=["a", "b", "c", "d", "e"])
    err = fails_before_first_batch(model, cb, r"class_names")
    assert "5" in str(err) and "3" in str(err), str(err)


@pytest.mark.parametrize("name", SAMPLE_VIEWS)
def test_fewer_class_names_than_outputs(model, log_dir, xy, name):
    """One rule for every view: exactly one class name per class (labels 0 and 1 fit two names, still an error)."""
    x, _ = xy
    y = np.array([0, 1, 0, 1])
    cb = viewset.build(name, log_dir, x[:4], y, class_names=["a", "b"])
    err = fails_before_first_batch(model, cb, r"class_names has 2 names but the model scores 3 classes")
    assert "one name per class" in str(err), str(err)


@pytest.mark.parametrize("name", SAMPLE_VIEWS)
def test_one_class_name_per_class_is_accepted(model, log_dir, xy, name):
    x, y = xy
    cb = viewset.build(name, log_dir, x[:4], y[:4], class_names=["a", "b", "c"])
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[cb])
    assert cb.failures == [] and len(cb.written) >= 1


# ------------------------------------------------------------------ log_dir, run_name


def test_log_dir_is_a_file(model, tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a directory")
    fails_before_first_batch(model, kv.FilterGrid(str(path)), "is a file")


def test_log_dir_under_a_file(model, tmp_path):
    (tmp_path / "a_file").write_text("x")
    fails_before_first_batch(model, kv.FilterGrid(str(tmp_path / "a_file" / "logs")), "cannot be created.*is a file")


def test_log_dir_parent_cannot_be_created(model):
    # /proc refuses new directories even for root, where chmod-based tricks do not work.
    fails_before_first_batch(model, kv.FilterGrid("/proc/kv_no_such_dir/logs"), "cannot be created")


def test_log_dir_unwritable(model):
    # An existing directory in which no file can be created, even by root.
    assert os.path.isdir("/proc/self/fdinfo")
    fails_before_first_batch(model, kv.FilterGrid("/proc/self", run_name="fdinfo"), "not writable")


@pytest.mark.parametrize("run_name", ["a/b", "../viz", "", ".."])
def test_run_name_with_path_separator(log_dir, run_name):
    with pytest.raises(ValueError, match="run_name"):
        kv.FilterGrid(log_dir, run_name=run_name)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"on_error": "ignore"}, "on_error"),
        ({"max_overhead": 0}, "max_overhead"),
        ({"max_overhead": 5}, "max_overhead"),
        ({"queue_size": 0}, "queue_size"),
    ],
)
def test_bad_base_options(log_dir, options, match):
    with pytest.raises(ValueError, match=match):
        kv.FilterGrid(log_dir, **options)


# ------------------------------------------------------------------ subclassed models


class Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__(name="subclassed")
        self.c1 = keras.layers.Conv2D(4, 3, activation="relu", name="c1")
        self.gap = keras.layers.GlobalAveragePooling2D(name="gap")
        self.out = keras.layers.Dense(3, activation="softmax", name="out")

    def call(self, x):
        return self.out(self.gap(self.c1(x)))


def subclassed_model():
    model = compiled(Subclassed())
    model(np.zeros((1, 16, 16, 3), np.float32))  # build the layers
    return model


@pytest.mark.parametrize("name", viewset.graph_views())
def test_subclassed_model_graph_views_say_what_they_need(log_dir, xy, name):
    x, y = xy
    cb = viewset.build(name, log_dir, x[:2], y[:2])
    err = fails_before_first_batch(subclassed_model(), cb, "(functional or Sequential|Sequential or functional)")
    assert name in str(err) or type(cb).__name__ in str(err), str(err)


def test_subclassed_model_filter_grid_works(log_dir, xy):
    x, y = xy
    cb = kv.FilterGrid(log_dir)
    subclassed_model().fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert cb.failures == []
    from util import assert_steps, read_run

    assert_steps(read_run(log_dir), ["filters/c1"], [0, 1])


def test_sequential_model_config_error_message_lists_layers(log_dir, xy):
    model = compiled(small_sequential())
    err = fails_before_first_batch(model, kv.FilterGrid(log_dir, layers="gap"), "not a convolution layer")
    assert "c1" in str(err)

"""ConfusionMatrix / explain.confusion_matrix."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from util import FiguresMade, assert_steps, image, random_data, read_run, small_sequential

import keras_vizcallbacks as kv
from keras_vizcallbacks import writers
from keras_vizcallbacks.explain import confusion_matrix, normalize_confusion
from keras_vizcallbacks.render.confusion import SIZE, confusion_image


def reference_counts(t, p, n):
    m = np.zeros((n, n), dtype=np.int64)
    for a, b in zip(t, p):
        m[a, b] += 1
    return m


def test_counts_equal_a_loop_reference():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, 300)
    p = np.where(rng.random(300) < 0.6, t, rng.integers(0, 5, 300))
    got = kv.explain.confusion_matrix(t, p, 5)
    np.testing.assert_array_equal(got, reference_counts(t, p, 5))
    assert got.sum() == 300 and np.trace(got) == np.sum(t == p)
    # one-hot / probability rows are reduced by argmax; n_classes may exceed the classes seen
    onehot = np.eye(5)[t]
    probs = rng.random((300, 5)) + 3 * np.eye(5)[p]
    np.testing.assert_array_equal(confusion_matrix(onehot, probs, 5), got)
    wide = confusion_matrix(t, p, 7)
    assert wide.shape == (7, 7) and wide[5:].sum() == 0 and wide[:, 5:].sum() == 0
    np.testing.assert_array_equal(confusion_matrix(t, p), got)  # inferred: 5 classes


def test_normalizations():
    c = np.array([[5, 3, 0], [0, 0, 0], [2, 0, 8]])
    rows = normalize_confusion(c, "true")
    np.testing.assert_allclose(rows, [[5 / 8, 3 / 8, 0], [0, 0, 0], [0.2, 0, 0.8]])  # empty row -> 0, not NaN
    cols = normalize_confusion(c, "pred")
    np.testing.assert_allclose(cols, [[5 / 7, 1, 0], [0, 0, 0], [2 / 7, 0, 1]])
    np.testing.assert_allclose(normalize_confusion(c, "all"), c / 18)
    np.testing.assert_array_equal(normalize_confusion(c, None), c)
    np.testing.assert_array_equal(normalize_confusion(np.zeros((2, 2)), "all"), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalize_confusion(c, "rows")


def test_bad_indices_raise():
    with pytest.raises(ValueError, match="out of range"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match=">= 0"):
        confusion_matrix([0, -1], [0, 1], 3)
    with pytest.raises(ValueError, match="integer class indices"):
        confusion_matrix([0.5, 1.0], [0, 1], 3)
    with pytest.raises(ValueError, match="must match"):
        confusion_matrix([0, 1, 2], [0, 1], 3)


def test_callback_counts_equal_model_predictions(log_dir):
    x, y = random_data(60, n_classes=3)
    model = small_sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = kv.ConfusionMatrix(log_dir, (x, y), class_names=["red", "green", "blue"])
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    run = read_run(log_dir)
    assert_steps(run, ["confusion_matrix"], [0, 1, 2])
    img = image(run["confusion_matrix"][2])
    assert img.shape == (SIZE[1], SIZE[0], 3) and img.dtype == np.uint8
    pred = np.argmax(model.predict(x, verbose=0), axis=1)
    np.testing.assert_array_equal(cb.counts, reference_counts(y, pred, 3))  # the last epoch's matrix
    assert cb.shared.forward.fn.traces == 1  # one compiled (shared) pass per epoch, traced once
    desc = writers.read_descriptions(os.path.join(log_dir, "viz"))["confusion_matrix"]
    assert "row = true class" in desc and "| red |" in desc and "60 fixed examples" in desc


def test_callback_binary_sigmoid_and_dataset(log_dir):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    cb = kv.ConfusionMatrix(log_dir, ds, max_points=30, normalize=None)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert_steps(read_run(log_dir), ["confusion_matrix"], [0, 1])
    pred = (model.predict(x[:30], verbose=0)[:, 0] > 0.5).astype(int)
    np.testing.assert_array_equal(cb.counts, reference_counts(y[:30], pred, 2))


def test_configuration_errors_raise_before_first_batch(log_dir):
    x, y = random_data(16, n_classes=3)
    model = small_sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    batches = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: batches.append(b))
    bad = [
        (kv.ConfusionMatrix(log_dir, x), "no labels"),
        (kv.ConfusionMatrix(log_dir, (x, y), class_names=["a", "b", "c", "d"]), "class_names has 4 names"),
        (kv.ConfusionMatrix(log_dir, (x, np.full(16, 7))), "label 7 is out of range"),
        (kv.ConfusionMatrix(log_dir, (x[:, :8], y)), "shape"),
    ]
    for cb, message in bad:
        with pytest.raises(ValueError, match=message):
            model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[cb, spy])
    assert batches == []
    with pytest.raises(ValueError, match="normalize must be one of"):
        kv.ConfusionMatrix(log_dir, (x, y), normalize="row")


def test_image_has_no_leak_and_handles_many_classes():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 12, 400)
    c = confusion_matrix(t, t, 12)
    with FiguresMade() as made:
        for _ in range(5):
            img = confusion_image(c, normalize_confusion(c), class_names=[f"c{k}" for k in range(12)], title="t")
    assert made.total >= 5 and made.alive() == 0  # a figure per call, none kept
    assert img.shape == (SIZE[1], SIZE[0], 3)
    # an empty matrix renders too (no division by zero)
    assert confusion_image(np.zeros((3, 3), int), normalize_confusion(np.zeros((3, 3)))).shape == (SIZE[1], SIZE[0], 3)


def test_reused_figure_draws_the_same_pixels_as_a_fresh_one():
    from keras_vizcallbacks.render.confusion import ConfusionFigure

    rng = np.random.default_rng(3)
    fig = ConfusionFigure()
    try:
        for k in range(3):
            c = confusion_matrix(rng.integers(0, 4, 200), rng.integers(0, 4, 200), 4)
            rates = normalize_confusion(c) if k != 1 else None
            kwargs = dict(class_names=["a", "b", "c", "d"], title=f"epoch {k}", subtitle=f"sub {k}")
            np.testing.assert_array_equal(fig.image(c, rates, **kwargs), confusion_image(c, rates, **kwargs))
    finally:
        fig.close()

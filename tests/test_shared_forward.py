"""The data pass shared by the views that read the same model and data (explain/_shared.py)."""

from __future__ import annotations

import keras
import numpy as np
from util import random_data, small_sequential

import keras_vizcallbacks as kv
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain import Predictor, _shared, classes_and_confidence, confusion_matrix

EPOCHS = 3


def counted(forward: _shared.SharedForward) -> list[int]:
    """Count the calls of the pass's compiled function (one per batch)."""
    calls = [0]
    fn = forward.fn

    def wrapper(*args):
        calls[0] += 1
        return fn(*args)

    forward.fn = wrapper
    return calls


class Snapshot(keras.callbacks.Callback):
    """After the views of each epoch: the predictions of a separate, unshared pass."""

    def __init__(self, x):
        super().__init__()
        self.x = x
        self.predictions = []

    def on_epoch_end(self, epoch, logs=None):
        probs = Predictor(self.model).probabilities(self.x)
        self.predictions.append(classes_and_confidence(probs)[0])


def test_two_views_on_the_same_data_run_one_pass_per_epoch(log_dir):
    x, y = random_data(40, n_classes=3)
    model = small_sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    db = kv.DecisionBoundary(log_dir, (x, y), grid_resolution=10)
    cm = kv.ConfusionMatrix(log_dir, (x, y))
    seen: dict[int, tuple] = {}

    def record(epoch, logs):
        seen[epoch] = (cm.counts.copy(), db.last.predictions.copy())

    after = keras.callbacks.LambdaCallback(on_epoch_end=record)
    snap = Snapshot(x)

    class Count(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # the views have registered (their on_train_begin ran first)
            (forward,) = _shared.shared_passes(self.model)
            self.forward, self.runs0 = forward, forward.runs
            self.calls = counted(forward)

    count = Count()
    model.fit(x, y, epochs=EPOCHS, batch_size=8, verbose=0, callbacks=[db, cm, count, after, snap])
    (forward,) = _shared.shared_passes(model)
    assert forward is count.forward and forward.runs - count.runs0 == EPOCHS  # once per epoch for both views
    assert count.calls[0] == EPOCHS  # 40 rows: one batch per pass
    assert sorted(forward.names) == sorted(["out:input", L.OUTPUT])
    assert db.failures == [] and cm.failures == []
    for epoch in range(EPOCHS):
        counts, db_pred = seen[epoch]
        # identical to a separate computation with the same weights
        np.testing.assert_array_equal(counts, confusion_matrix(y, snap.predictions[epoch], 3))
        np.testing.assert_array_equal(db_pred, snap.predictions[epoch])


def test_different_data_gets_separate_passes_and_views_work_alone(log_dir):
    x, y = random_data(40, n_classes=3)
    x2, y2 = random_data(30, n_classes=3, seed=1)
    model = small_sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    db = kv.DecisionBoundary(log_dir, (x, y), grid_resolution=10)
    cm = kv.ConfusionMatrix(log_dir, (x2, y2))
    model.fit(x, y, epochs=EPOCHS, batch_size=8, verbose=0, callbacks=[db, cm])
    passes = _shared.shared_passes(model)
    assert len(passes) == 2
    by_rows = {len(p.x): p for p in passes}
    assert by_rows[40].names == ["out:input", L.OUTPUT] and by_rows[30].names == [L.OUTPUT]
    assert by_rows[30].runs == EPOCHS  # the confusion matrix alone: one pass per epoch
    assert by_rows[40].runs == EPOCHS + 1  # DecisionBoundary alone: + the pass at train begin (axis limits)
    probs = Predictor(model).probabilities(x2)
    np.testing.assert_array_equal(cm.counts, confusion_matrix(y2, classes_and_confidence(probs)[0], 3))
    assert db.failures == [] and cm.failures == []


def test_same_values_share_and_rereading_without_an_epoch_recomputes():
    x, _ = random_data(20, n_classes=3)
    model = small_sequential()
    a = _shared.register(model, x, batch_size=8)
    b = _shared.register(model, x.copy(), paths=["gap"], batch_size=8)  # equal values, another array
    assert a.forward is b.forward and a.forward.names == ["gap", L.OUTPUT]
    c = _shared.register(model, x + 1, batch_size=8)
    assert c.forward is not a.forward
    out = a.outputs(0)
    assert b.outputs(0) is out and a.forward.runs == 1  # same epoch, same weights: read from the cache
    a.outputs(0)  # the same view asks again (e.g. compute() called twice): a fresh pass
    assert a.forward.runs == 2
    b.outputs(None)
    assert a.forward.runs == 3  # no epoch: never cached
    np.testing.assert_allclose(out[L.OUTPUT], model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert out["gap"].shape == (20, 6)


def test_data_pass_batches_keep_the_largest_layer_output_within_the_cache_budget():
    """Rows per batch of a data pass: about 2**21 input values, fewer when the largest layer output of a
    batch would pass CACHE_BUDGET (never below 32); a model without layer shapes keeps the input rule."""
    from keras_vizcallbacks.explain import _batches, _memory

    cnn = kv.models.reference_cnn()  # conv2d: 30x30x32 floats an image (115 KB)
    x = np.zeros((1000, 32, 32, 3), np.float32)
    largest = _memory.largest_output_values(cnn)
    assert largest == 30 * 30 * 32
    rows = _batches.batch_size_for(x, None, cnn)
    assert rows == 256 and rows * 4 * largest <= _batches.CACHE_BUDGET < 2 * rows * 4 * largest
    assert _batches.batch_size_for(x) == 512  # without the model: the input rule alone
    assert _batches.batch_size_for(x, 100, cnn) == 100  # given: kept
    wide = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(256, 3, padding="same")])
    assert _batches.batch_size_for(np.zeros((10, 64, 64, 3), np.float32), None, wide) == 32  # the floor
    flat = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16), keras.layers.Dense(3)])
    assert _batches.batch_size_for(np.zeros((10, 2), np.float32), None, flat) == 4096
    # the views' data pass uses it: one pass over 1,000 images of the reference CNN in batches of 256
    view = _shared.register(cnn, x, batch_size=Predictor(cnn).batch_size_for(x))
    assert view.forward.batch_size == 256

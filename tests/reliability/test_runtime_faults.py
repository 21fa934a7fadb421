"""Runtime faults: training goes on, a warning once with the cause, later epochs still render,
and at the end every expected image is in the event files exactly once."""

from __future__ import annotations

import errno
import os
import warnings

import keras
import numpy as np
import pytest
import viewset
from util import compiled, image, random_data, read_run, small_functional

import keras_vizcallbacks as kv
from keras_vizcallbacks.writers.tensorboard import TensorBoardWriter

CLASSES = ["a", "b", "c"]


def expected_images(callbacks, steps) -> dict[str, list[int]]:
    """{tag: steps} each view promised, learned from what it reports it wrote."""
    tags = sorted({tag for cb in callbacks for tag, _ in cb.written})
    return {tag: list(steps) for tag in tags}


def assert_run(log_dir, expected: dict[str, list[int]], run: str = "viz") -> dict:
    """Every tag has exactly the expected steps, each once, and every image decodes."""
    records = read_run(log_dir, run)
    images = {t: r for t, r in records.items() if not t.endswith("/evolution")}
    assert sorted(images) == sorted(expected), f"tags {sorted(images)} != {sorted(expected)}"
    for tag, steps in expected.items():
        got = [r.step for r in images[tag]]
        assert got == steps, f"{tag}: steps {got}, expected {steps} (missing or duplicated)"
        for r in images[tag]:
            pixels = image(r)
            assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[-1] == 3
    return images


def every_view(log_dir, x, y, **options):
    return viewset.build_all(log_dir, x[:4], y[:4], CLASSES, **options)


def written_steps(cb) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for tag, step in cb.written:
        out.setdefault(tag, []).append(step)
    return out


@pytest.fixture
def data():
    return random_data(24)


def viz_warnings(record) -> list[warnings.WarningMessage]:
    return [w for w in record if issubclass(w.category, kv.VizWarning)]


# ------------------------------------------------------------------ NaN / Inf, dead ReLU, dtype


def test_diverging_learning_rate_nan_weights(log_dir, data):
    x, y = data
    model = small_functional()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e30), loss="sparse_categorical_crossentropy")
    cbs = every_view(log_dir, x, y)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=cbs)
    kernel = model.get_layer("c1").kernel.numpy()
    assert not np.isfinite(kernel).all(), "precondition: the learning rate should have made the weights non-finite"
    failing = [type(cb).__name__ for cb in cbs if cb.failures]
    assert failing == [], f"views failed on NaN/Inf instead of rendering it: {failing}: {[cb.failures for cb in cbs]}"
    assert viz_warnings(record) == []
    images = assert_run(log_dir, expected_images(cbs, [0, 1, 2]))
    last = image(images["filters/c1"][-1])
    assert (last == kv.render.MARKER).all(axis=-1).any(), "NaN/Inf kernels should be drawn in the marker colour"


def test_dead_relu_all_zero_maps(log_dir, data):
    x, y = data
    model = small_functional()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    for name in ("c1", "c2"):
        layer = model.get_layer(name)
        layer.bias.assign(np.full(layer.bias.shape, -1e3, np.float32))
    maps = kv.explain.feature_maps(model, x[:4])
    assert all(np.all(v == 0) for v in maps.values()), "precondition: every ReLU map is zero"
    cbs = every_view(log_dir, x, y)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=cbs)
    assert [cb.failures for cb in cbs] == [[] for _ in cbs]
    assert_run(log_dir, expected_images(cbs, [0, 1]))


def test_mixed_precision_dtype_change(log_dir, data):
    x, y = data
    before = keras.mixed_precision.global_policy().name
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        model = compiled(small_functional())
        assert model.get_layer("c1").compute_dtype == "float16"
        cbs = every_view(log_dir, x, y)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=cbs)
    finally:
        keras.mixed_precision.set_global_policy(before)
    assert [cb.failures for cb in cbs] == [[] for _ in cbs]
    assert_run(log_dir, expected_images(cbs, [0, 1]))


# ------------------------------------------------------------------ an exception inside a view


def inject(cb, epochs: set[int], exc: type[Exception] = RuntimeError):
    """Make ``cb`` fail at the given epochs (the instance's compute, as a broken view would)."""
    original = cb.compute

    def broken(epoch):
        if epoch in epochs:
            raise exc(f"injected failure at epoch {epoch}")
        return original(epoch)

    cb.compute = broken
    return cb


def test_view_exception_warn_fit_completes_others_keep_writing(log_dir, data):
    x, y = data
    model = compiled(small_functional())
    cbs = every_view(log_dir, x, y)
    inject(cbs[0], {1, 2})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=cbs)
    assert len(history.history["loss"]) == 4
    warned = viz_warnings(record)
    assert len(warned) == 1, [str(w.message) for w in warned]
    assert "injected failure at epoch 1" in str(warned[0].message)
    assert [e for e, _ in cbs[0].failures] == [1, 2]
    expected = expected_images(cbs[1:], [0, 1, 2, 3])
    expected.update({tag: [0, 3] for tag in written_steps(cbs[0])})
    assert_run(log_dir, expected)
    assert kv.writers.open_writers() == []


def test_view_exception_raise_propagates(log_dir, data):
    x, y = data
    model = compiled(small_functional())
    cbs = every_view(log_dir, x, y, on_error="raise")
    inject(cbs[0], {1})
    with pytest.raises(RuntimeError, match="injected failure at epoch 1"):
        model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=cbs)
    for cb in cbs:
        cb.close()  # Keras skips on_train_end when fit raises
    assert kv.writers.open_writers() == []
    images = read_run(log_dir)
    for tag in written_steps(cbs[0]):
        assert [r.step for r in images[tag]] == [0]


# ------------------------------------------------------------------ interrupt


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch: int, batch: int = 1) -> None:
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("async_write", [False, True], ids=["sync", "async"])
def test_keyboard_interrupt_mid_epoch_keeps_finished_epochs(log_dir, data, async_write):
    x, y = data
    model = compiled(small_functional())
    cbs = every_view(log_dir, x, y, async_write=async_write)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[*cbs, InterruptAt(2)])
    if async_write:
        for cb in cbs:
            cb.close()  # waits for the queued images of finished epochs
    # Sync: read before any cleanup: every write was flushed when it happened.
    assert_run(log_dir, expected_images(cbs, [0, 1]))
    for cb in cbs:
        cb.close()
    assert kv.writers.open_writers() == []


def test_interrupted_callbacks_can_fit_again(log_dir, data):
    x, y = data
    model = compiled(small_functional())
    cbs = every_view(log_dir, x, y)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[*cbs, InterruptAt(1)])
    model.fit(x, y, epochs=3, initial_epoch=1, batch_size=8, verbose=0, callbacks=cbs)
    assert kv.writers.open_writers() == [], "the interrupted fit's writer was not released by the next fit"
    assert_run(log_dir, expected_images(cbs, [0, 1, 2]))


# ------------------------------------------------------------------ resume, two fits


def test_resume_from_saved_model_continues_steps(log_dir, data, tmp_path):
    x, y = data
    model = compiled(small_functional())
    first = every_view(log_dir, x, y)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=first)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    second = every_view(log_dir, x, y)
    loaded.fit(x, y, epochs=6, initial_epoch=3, batch_size=8, verbose=0, callbacks=second)
    assert [cb.failures for cb in first + second] == [[] for _ in first + second]
    assert_run(log_dir, expected_images(first, range(6)))
    assert kv.writers.open_writers() == []


def test_two_fits_share_a_writer(log_dir, data):
    x, y = data
    model = compiled(small_functional())
    cbs = every_view(log_dir, x, y)
    assert len(cbs) >= 2
    seen: list[object] = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append({id(cb._writer) for cb in cbs})

    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[*cbs, Spy()])
    assert kv.writers.open_writers() == []
    model.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0, callbacks=[*cbs, Spy()])
    assert all(len(s) == 1 for s in seen), "callbacks with one log_dir should share one writer"
    assert kv.writers.open_writers() == []
    assert_run(log_dir, expected_images(cbs, [0, 1, 2, 3]))
    assert len([f for f in os.listdir(os.path.join(log_dir, "viz")) if "tfevents" in f]) == 2


def test_two_models_two_runs_one_log_dir(log_dir, data):
    x, y = data
    a, b = compiled(small_functional()), compiled(small_functional())
    cbs_a = every_view(log_dir, x, y, run_name="a")
    cbs_b = every_view(log_dir, x, y, run_name="b")
    a.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=cbs_a)
    b.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=cbs_b)
    assert_run(log_dir, expected_images(cbs_a, [0, 1]), run="a")
    assert_run(log_dir, expected_images(cbs_b, [0, 1, 2]), run="b")
    assert kv.writers.open_writers() == []


# ------------------------------------------------------------------ disk full


@pytest.mark.parametrize("async_write", [False, True], ids=["sync", "async"])
def test_disk_full_warns_and_training_continues(log_dir, data, monkeypatch, async_write):
    x, y = data
    model = compiled(small_functional())
    cbs = every_view(log_dir, x, y, async_write=async_write)
    real_write = TensorBoardWriter.write_encoded  # every image reaches the event file through it
    full_at = {1}

    def failing_write(self, tag, png, width, height, step, description=""):
        if step in full_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, tag, png, width, height, step, description)

    monkeypatch.setattr(TensorBoardWriter, "write_encoded", failing_write)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=cbs)
    assert len(history.history["loss"]) == 3
    warned = viz_warnings(record)
    assert len(warned) == len(cbs), [str(w.message) for w in warned]  # one per view, not one per image
    assert all("No space left on device" in str(w.message) for w in warned)
    assert_run(log_dir, expected_images(cbs, [0, 2]))
    assert kv.writers.open_writers() == []

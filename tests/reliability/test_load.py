"""Load: 200 epochs of a tiny model with every view. Memory, file handles, threads and
matplotlib figures stay bounded, compiled functions trace once, and every image is there."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading

import keras
import numpy as np
import psutil
import pytest
import viewset
from util import FiguresMade, compiled, read_run

import keras_vizcallbacks as kv

EPOCHS = 200
EVERY = 8  # each view renders 26 times (0, 8, ..., 192 and the last, 199), over 200 epochs
MB = 1 << 20


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    glibc keeps freed pages of large numpy/Agg temporaries in its arenas, so raw RSS
    creeps up by tens of MB over hundreds of renders without any object being alive.
    Trimming first makes the RSS comparison measure what is still allocated.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: compare raw RSS
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def tiny_model():
    return compiled(
        keras.Sequential(
            [
                keras.Input((10, 10, 3)),
                keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
                keras.layers.MaxPooling2D(2, name="p1"),
                keras.layers.Conv2D(4, 3, activation="relu", name="c2"),
                keras.layers.GlobalAveragePooling2D(name="gap"),
                keras.layers.Dense(3, activation="softmax", name="out"),
            ],
            name="tiny",
        )
    )


class Probe(keras.callbacks.Callback):
    """Snapshots of the process after a few chosen epochs."""

    def __init__(self, at):
        super().__init__()
        self.at = set(at)
        self.snap: dict[int, dict[str, int]] = {}
        self.proc = psutil.Process()

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.at:
            release_free_memory()
            self.snap[epoch + 1] = {
                "rss": self.proc.memory_info().rss,
                "fds": self.proc.num_fds(),
                "threads": threading.active_count(),
            }


@pytest.mark.slow
def test_200_epochs_every_view_bounded(log_dir):
    rng = np.random.default_rng(0)
    x = rng.random((8, 10, 10, 3), dtype=np.float32)
    y = np.arange(8) % 3
    model = tiny_model()
    names = viewset.available()
    # every other view writes on the background thread, so both paths run under load
    cbs = [
        viewset.build(name, log_dir, x[:4], y[:4], ["a", "b", "c"], async_write=i % 2 == 1, every_n_epochs=EVERY)
        for i, name in enumerate(names)
    ]
    probe = Probe(at=(10, EPOCHS))
    with FiguresMade() as made:
        model.fit(x, y, epochs=EPOCHS, batch_size=8, verbose=0, callbacks=[*cbs, probe])

    early, late = probe.snap[10], probe.snap[EPOCHS]
    growth = (late["rss"] - early["rss"]) / MB
    assert growth < 50, f"RSS grew {growth:.1f} MB between epoch 10 and {EPOCHS}"
    assert late["fds"] <= early["fds"], f"open file handles grew: {early['fds']} -> {late['fds']}"
    assert late["threads"] <= early["threads"], f"threads grew: {early['threads']} -> {late['threads']}"
    # after the fit (background drawing finished): no matplotlib figure alive, none left to pyplot
    assert made.total > 0 and made.alive() == 0 and viewset.pyplot_figures() == 0

    assert [cb.failures for cb in cbs] == [[] for _ in cbs]
    for cb in cbs:
        traces = list(cb.trace_counts().values())
        assert all(t <= 1 for t in traces), f"{type(cb).__name__} retraced: {traces}"
    assert kv.writers.open_writers() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("kv-")]
    run = read_run(log_dir)
    tags = sorted({tag for cb in cbs for tag, _ in cb.written})
    assert len(tags) >= len(cbs)
    for tag in tags:
        expected = [*range(0, EPOCHS, EVERY), EPOCHS - 1]
        assert [r.step for r in run[tag]] == expected, f"{tag}: missing or duplicated steps"

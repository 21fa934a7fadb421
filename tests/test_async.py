"""async_write: drawing and writing on the background threads, nothing lost or reordered."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from util import compiled, random_data, read_run, small_functional

import keras_vizcallbacks as kv


class Counting(kv.VizCallback):
    """compute() returns the epoch's numbers; draw() turns them into ``n_tags`` frames."""

    view = "count"

    def __init__(self, log_dir, n_tags=3, gate=None, fail_at=(), **options):
        super().__init__(log_dir, **options)
        self.n_tags = n_tags
        self.gate = gate
        self.fail_at = set(fail_at)
        self.compute_threads: set[str] = set()
        self.draw_threads: set[str] = set()
        self.drawn: list[int] = []

    def compute(self, epoch):
        self.compute_threads.add(threading.current_thread().name)
        return np.full((4, 4), epoch, np.float32)

    def draw(self, computed, epoch):
        self.draw_threads.add(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.wait(30)
        if epoch in self.fail_at:
            raise RuntimeError(f"draw failed at epoch {epoch}")
        self.drawn.append(epoch)
        img = np.zeros((4, 4, 3), np.uint8)
        img[..., 0] = int(computed[0, 0]) % 256
        return [kv.Frame(f"{self.view}/t{i}", img, "") for i in range(self.n_tags)]


def background(names) -> bool:
    """Every name is one of the writers' shared background threads (not the training thread)."""
    return bool(names) and all(n.startswith("keras_vizcallbacks-encode") for n in names)


def settled(*cbs) -> bool:
    """Nothing of these views is still on its way (every epoch drawn and written), no thread added per view."""
    pool = [t for t in threading.enumerate() if t.name.startswith("keras_vizcallbacks-encode")]
    return all(len(cb._delivery) == 0 for cb in cbs) and len(pool) <= kv.writers.registry.ENCODER_THREADS


@pytest.fixture
def model():
    return compiled(small_functional())


def test_every_image_written_in_order(log_dir, model):
    x, y = random_data(16)
    cb = Counting(log_dir, async_write=True, queue_size=1)
    model.fit(x, y, epochs=12, batch_size=8, verbose=0, callbacks=[cb])
    run = read_run(log_dir)
    assert sorted(run) == ["count/t0", "count/t1", "count/t2"]
    for tag, records in run.items():
        assert [r.step for r in records] == list(range(12)), tag
        # the pixel carries the epoch computed on the training thread: no mix-up between epochs
        assert [int(kv.writers.decode(r)[0, 0, 0]) for r in records] == list(range(12))
    assert [s for t, s in cb.written if t == "count/t0"] == list(range(12))  # written in epoch order
    assert cb.compute_threads == {threading.main_thread().name}
    assert background(cb.draw_threads)
    assert settled(cb) and kv.writers.open_writers() == []


def test_full_queue_blocks_rather_than_drops(log_dir, model):
    gate = threading.Event()
    cb = Counting(log_dir, n_tags=1, gate=gate, async_write=True, queue_size=1)
    cb.set_model(model)
    cb.set_params({"epochs": 4, "verbose": 0})
    cb.on_train_begin()
    cb.on_epoch_end(0)  # the worker takes it and waits at the gate
    cb.on_epoch_end(1)  # fills the queue (or is taken while 0 waits)
    done = threading.Event()

    def more():
        cb.on_epoch_end(2)
        cb.on_epoch_end(3)
        done.set()

    t = threading.Thread(target=more)
    t.start()
    assert not done.wait(0.5), (
        "on_epoch_end returned while the queue was full: an epoch was dropped or queued unbounded"
    )
    assert len(cb._delivery) <= 2  # the epoch being drawn and queue_size=1 waiting
    gate.set()
    t.join(30)
    assert done.is_set()
    cb.on_train_end()
    assert cb.drawn == [0, 1, 2, 3]
    assert [r.step for r in read_run(log_dir)["count/t0"]] == [0, 1, 2, 3]
    assert settled(cb)


def test_render_only_view_works_async(log_dir, model):
    x, y = random_data(16)

    class RenderOnly(kv.VizCallback):
        view = "plain"

        def render(self, epoch):
            return [kv.Frame("plain/img", np.full((3, 3, 3), epoch, np.uint8))]

    cb = RenderOnly(log_dir, async_write=True)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb])
    assert [r.step for r in read_run(log_dir)["plain/img"]] == [0, 1, 2]


def test_foundation_views_draw_on_the_worker(log_dir, model):
    x, y = random_data(16)
    cbs = [kv.FilterGrid(log_dir, async_write=True), kv.FeatureMaps(log_dir, x[:2], async_write=True)]
    threads: list[str] = []
    for cb in cbs:
        draw = cb.draw

        def spy(computed, epoch, draw=draw):
            threads.append(threading.current_thread().name)
            return draw(computed, epoch)

        cb.draw = spy
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=cbs)
    assert background(threads) and len(threads) == 6
    run = read_run(log_dir)
    for tag in ("filters/c1", "filters/c2", "feature_maps/c1", "feature_maps/c2"):
        assert [r.step for r in run[tag]] == [0, 1, 2], tag


def test_worker_error_warns_once_and_goes_on(log_dir, model):
    x, y = random_data(16)
    cb = Counting(log_dir, n_tags=1, fail_at={1, 2}, async_write=True)
    other = kv.FilterGrid(log_dir, async_write=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[cb, other])
    warned = [w for w in record if issubclass(w.category, kv.VizWarning)]
    assert len(warned) == 1 and "draw failed at epoch 1" in str(warned[0].message)
    run = read_run(log_dir)
    assert [r.step for r in run["count/t0"]] == [0, 3]
    assert [r.step for r in run["filters/c1"]] == [0, 1, 2, 3]
    assert [e for e, _ in cb.failures] == [1, 2]


def test_worker_error_raise_propagates(log_dir, model):
    x, y = random_data(16)
    cb = Counting(log_dir, n_tags=1, fail_at={1}, async_write=True, on_error="raise")
    with pytest.raises(RuntimeError, match="draw failed at epoch 1"):
        model.fit(x, y, epochs=6, batch_size=8, verbose=0, callbacks=[cb])
    assert settled(cb) and kv.writers.open_writers() == []
    steps = [r.step for r in read_run(log_dir)["count/t0"]]
    assert steps[0] == 0 and 1 not in steps


def test_close_is_idempotent(log_dir, model):
    x, y = random_data(16)
    cb = Counting(log_dir, n_tags=1, async_write=True)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    cb.close()
    cb.close()
    model.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0, callbacks=[cb])
    assert [r.step for r in read_run(log_dir)["count/t0"]] == [0, 1, 2, 3]
    assert settled(cb)


def test_keras_model_untouched_by_worker(log_dir):
    """The worker never calls the model: FeatureMaps' forward pass stays on the training thread."""
    x, y = random_data(16)
    model = compiled(small_functional())
    cb = kv.FeatureMaps(log_dir, x[:2], async_write=True)
    calls: list[str] = []
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[cb])  # build the probe
    fn = cb.probe.fn

    class Spy:
        traces = property(lambda self: fn.traces)

        def __call__(self, *args):
            calls.append(threading.current_thread().name)
            return fn(*args)

    cb.probe.fn = Spy()
    model.fit(x, y, epochs=3, initial_epoch=1, batch_size=8, verbose=0, callbacks=[cb])
    assert calls == [threading.main_thread().name] * 2


def test_interrupted_script_exits_and_keeps_finished_epochs(tmp_path):
    """A script killed by KeyboardInterrupt with async views neither hangs nor loses the queued
    images of finished epochs (the background threads finish their work before the interpreter exits)."""
    import os
    import subprocess
    import sys
    import textwrap

    log_dir = tmp_path / "logs"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import keras
            import keras_vizcallbacks as kv
            from util import compiled, random_data, small_functional

            class Stop(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    self.epoch = epoch
                def on_train_batch_end(self, batch, logs=None):
                    if self.epoch == 2:
                        raise KeyboardInterrupt

            x, y = random_data(16)
            cbs = [kv.FilterGrid({str(log_dir)!r}, async_write=True),
                   kv.FeatureMaps({str(log_dir)!r}, x[:2], async_write=True)]
            compiled(small_functional()).fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[*cbs, Stop()])
            """
        )
    )
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_BACKEND": "tensorflow",
        "PYTHONPATH": os.pathsep.join(filter(None, [os.path.dirname(__file__), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr
    run = read_run(str(log_dir))
    for tag in ("filters/c1", "filters/c2", "feature_maps/c1", "feature_maps/c2"):
        assert [r.step for r in run[tag]] == [0, 1], tag

"""writers/: one shared writer per run, flushed after each write, closed at train end."""

from __future__ import annotations

import os

import numpy as np
import pytest
from util import assert_steps, compiled, image, random_data, read_run, small_sequential

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


def test_images_are_on_disk_before_the_next_epoch_trains(log_dir):
    """Flush after every write: a reader sees epoch N before epoch N + 1's first batch (the PNG is
    encoded in the background while the other callbacks run, and waited for in on_epoch_begin)."""
    model = compiled(small_sequential())
    x, y = random_data()
    seen_during_training = []

    class Reader(kv.FilterGrid):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                seen_during_training.append([r.step for r in read_run(log_dir).get("filters/c1", [])])

    model.fit(x, y, epochs=3, verbose=0, callbacks=[Reader(log_dir, layers=["c1"])])
    assert seen_during_training == [[], [0], [0, 1]]
    assert [r.step for r in read_run(log_dir)["filters/c1"]] == [0, 1, 2]


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


def test_png_encoding_threads_are_shared_and_bounded(log_dir):
    """The background PNG encoders are one small pool for the process, not threads per fit or view."""
    import threading

    model = compiled(small_sequential())
    x, y = random_data()
    for _ in range(3):
        cbs = [kv.FilterGrid(log_dir, layers=["c1"]), kv.FilterGrid(log_dir, layers=["c2"], run_name="other")]
        model.fit(x, y, epochs=2, verbose=0, callbacks=cbs)
        assert all(len(cb.written) == 2 for cb in cbs)  # every image accounted for after the fit
    encoders = [t for t in threading.enumerate() if t.name.startswith("keras_vizcallbacks-encode")]
    assert 1 <= len(encoders) <= kv.writers.registry.ENCODER_THREADS


def test_background_encodes_wait_while_a_view_computes(log_dir, monkeypatch):
    """An encode queued while a view computes (`writers.computing`) starts only when the computation
    ends, so the framework's threads have the cores; one longer than COMPUTE_WAIT_S lets it go."""
    import time

    from keras_vizcallbacks.writers import registry

    started = []
    real = registry.encode_png

    def recording(image):
        started.append(time.perf_counter())
        return real(image)

    monkeypatch.setattr(registry, "encode_png", recording)
    shared = writers.acquire(log_dir, "viz")
    try:
        image = np.zeros((8, 8, 3), np.uint8)
        with writers.computing():
            future = shared.write_later("gate/a", image, 0)
            time.sleep(0.4)
            assert started == [] and not future.done()
            ended = time.perf_counter()
        future.result(timeout=10)
        assert len(started) == 1 and started[0] >= ended
        # a computation that outlasts COMPUTE_WAIT_S: the encode goes ahead during it
        monkeypatch.setattr(registry, "COMPUTE_WAIT_S", 0.2)
        with writers.computing():
            future = shared.write_later("gate/a", image, 1)
            future.result(timeout=10)
            assert len(started) == 2
        # nested blocks: encodes wait for the outermost to end
        monkeypatch.setattr(registry, "COMPUTE_WAIT_S", 5.0)
        with writers.computing():
            with writers.computing():
                future = shared.write_later("gate/a", image, 2)
            time.sleep(0.3)
            assert len(started) == 2 and not future.done()
        future.result(timeout=10)
        assert len(started) == 3
    finally:
        writers.release(shared)
    assert [r.step for r in read_run(log_dir)["gate/a"]] == [0, 1, 2]


def test_a_thread_waiting_for_an_image_encodes_the_queued_ones(log_dir, monkeypatch):
    """`writers.wait` runs queued encodes on the waiting thread (oldest first) instead of idling beside
    busy encoder threads; each image is written once, in order."""
    import threading

    from keras_vizcallbacks.writers import registry

    where = []
    real = registry.encode_png

    def recording(image):
        where.append(threading.current_thread().name)
        return real(image)

    monkeypatch.setattr(registry, "encode_png", recording)
    release = threading.Event()
    blockers = [writers.run_later(release.wait, 30) for _ in range(registry.ENCODER_THREADS)]
    shared = writers.acquire(log_dir, "viz")
    try:
        image = np.zeros((8, 8, 3), np.uint8)
        futures = [shared.write_later("help/a", image + step, step) for step in range(3)]
        assert writers.wait(futures[-1]) is None  # every encoder thread is blocked: this thread encodes
        assert all(f.done() for f in futures) and where == ["MainThread"] * 3
    finally:
        release.set()
        for b in blockers:
            b.result(timeout=30)
        writers.release(shared)
    records = read_run(log_dir)["help/a"]
    assert [r.step for r in records] == [0, 1, 2]
    assert [int(writers.decode(r)[0, 0, 0]) for r in records] == [0, 1, 2]


def test_encode_failure_goes_through_the_error_policy(log_dir, monkeypatch):
    """An image that fails to encode in the background warns once (on_error='warn'), is not
    counted as written, and the next epochs are written."""
    import warnings

    from keras_vizcallbacks.writers import registry

    real = registry.encode_png
    calls = {"n": 0}

    def flaky(image):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("encoder broke")
        return real(image)

    monkeypatch.setattr(registry, "encode_png", flaky)
    model = compiled(small_sequential())
    x, y = random_data()
    cb = kv.FilterGrid(log_dir, layers=["c1"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert [step for _, step in cb.written] == [1, 2]
    assert [e for e, _ in cb.failures] == [0]
    assert sum("encoder broke" in str(w.message) for w in record) == 1
    assert [r.step for r in read_run(log_dir)["filters/c1"]] == [1, 2]


def test_scalars_go_to_the_event_file_beside_the_images(tmp_path):
    """write_scalar on the shared writer: a scalar summary in the run's event file; the PNG mirror keeps images only."""
    log_dir, png_dir = str(tmp_path / "logs"), tmp_path / "png"
    shared = writers.acquire(log_dir, "viz", str(png_dir))
    assert shared.run_dir == os.path.join(os.path.abspath(log_dir), "viz")
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    for step in range(3):
        shared.write("view/image", img, step)
        shared.write_scalar("view/accuracy", step / 8, step, "Share of images classified right.")
    writers.release(shared)
    scalars = writers.read_scalars(shared.run_dir)
    assert [(r.step, r.value) for r in scalars["view/accuracy"]] == [(0, 0.0), (1, 0.125), (2, 0.25)]
    assert writers.read_descriptions(shared.run_dir, "scalars") == {
        "view/accuracy": "Share of images classified right."
    }
    assert sorted(read_run(log_dir)) == ["view/image"]  # a scalar is not an image tag
    assert sorted(os.listdir(png_dir)) == ["view__image"]


def test_png_writer_keeps_animations_as_they_are(tmp_path):
    from keras_vizcallbacks.writers import png

    sink = writers.PNGWriter(str(tmp_path))
    frames = [np.full((3, 4, 3), v, np.uint8) for v in (0, 255)]
    apng = png.encode_apng(iter(frames), 2)
    sink.write_encoded("t/evolution", apng, 4, 3, 1, "an animation")
    assert (tmp_path / "t__evolution" / "step_000001.png").read_bytes() == apng
    assert (tmp_path / "t__evolution" / "description.md").read_text() == "an animation"

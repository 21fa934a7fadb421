"""Logs and a TensorBoard for the Viz dashboard tests (test_dashboard*.py)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator

import keras
import numpy as np

import keras_vizcallbacks as kv
from keras_vizcallbacks import writers

EPOCHS = 12  # more than TensorBoard's default 10 images per tag
SPARSE_EVERY = 4  # the custom view renders at 0, 4, 8 and the last epoch
SPARSE_STEPS = [0, 4, 8, EPOCHS - 1]
CUSTOM_TAG = "my_pictures"  # no '/' and no view prefix: found by the manifest, not by its name
UNMARKED_TAG = "unmarked/image"  # an image in the same run written around our writers: not ours
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Never use a proxy, even if the environment names one: everything here is on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Pictures(kv.VizCallback):
    """A custom view: a flat picture whose red channel grows with the epoch."""

    view = "mine"

    def render(self, epoch: int) -> list[kv.Frame]:
        image = np.zeros((24, 40, 3), np.uint8)
        image[..., 0] = min(255, 20 * epoch)
        image[:, : epoch + 1, 1] = 255  # a bar as long as the epoch
        return [kv.Frame(CUSTOM_TAG, image, "A test picture: the **green bar** grows by one column per epoch.")]


def small_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def fit_logs(log_dir: str, epochs: int = EPOCHS) -> str:
    """A short fit of a tiny CNN with three views (one on a sparser schedule) writing ``<log_dir>/viz``,
    beside keras.callbacks.TensorBoard's train run, plus one image in ``viz`` that our writers did not mark."""
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 3), dtype=np.float32)
    y = rng.integers(0, 3, 32)
    keras.utils.set_random_seed(0)
    small_model().fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(log_dir),
            kv.FilterGrid(log_dir, layers=["c1", "c2"]),
            kv.FeatureMaps(log_dir, samples=x[:2], layers=["c1"]),
            Pictures(log_dir, every_n_epochs=SPARSE_EVERY),
        ],
    )
    other = writers.TensorBoardWriter(os.path.join(log_dir, "viz"))  # around SharedWriter: no mark
    other.write(UNMARKED_TAG, np.zeros((8, 8, 3), np.uint8), 0)
    other.close()
    return log_dir


def write_run(log_dir: str, steps: range, tags: list[str], run: str = "viz", size: int = 24) -> str:
    """Images of ``tags`` at ``steps`` through the package's shared writer (marked as ours)."""
    shared = writers.acquire(log_dir, run)
    try:
        for step in steps:
            for i, tag in enumerate(tags):
                image = np.zeros((size, size + 8, 3), np.uint8)
                image[..., 2] = (40 * step + 50 * i) % 256
                shared.write(tag, image, step, f"synthetic {tag}")
    finally:
        writers.release(shared)
    return os.path.join(log_dir, run)


# ------------------------------------------------------------------ synthetic event files (no TensorFlow)


def tiny_png(width: int, height: int, value: int) -> bytes:
    """A valid RGB PNG filled with one colour that depends on ``value``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes([value % 256, (value * 7) % 256, (value * 13) % 256]) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def image_event(tag: str, step: int, encoded: bytes, description: str = "", metadata: bool = True) -> bytes:
    """A serialized Event holding one image summary (the layout our writers use)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

    value = summary_pb2.Summary.Value(
        tag=tag, tensor=tensor_pb2.TensorProto(dtype=7, string_val=[b"8", b"8", encoded])
    )  # dtype 7: DT_STRING
    if metadata:
        value.metadata.plugin_data.plugin_name = "images"
        value.metadata.summary_description = description
    event = event_pb2.Event(step=step, wall_time=1.7e9 + step, summary=summary_pb2.Summary(value=[value]))
    return event.SerializeToString()


# ------------------------------------------------------------------ a real TensorBoard with the plugin

_LAUNCHER = """
import sys
from tensorboard import default, program
from keras_vizcallbacks.dashboard.plugin import VizPlugin
plugins = default.get_plugins()  # the entry point's plugin where the package is installed
if VizPlugin not in plugins:
    plugins.append(VizPlugin)  # a development checkout: the entry point is not installed
tb = program.TensorBoard(plugins=plugins)
tb.configure(argv=[None, "--logdir", sys.argv[1], "--port", sys.argv[2], "--host", "127.0.0.1",
                   "--reload_interval", "2", "--samples_per_plugin", "images=10"])
sys.exit(tb.main())
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10) -> tuple[int, bytes, str]:
    try:
        with OPENER.open(url, timeout=timeout) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


@contextlib.contextmanager
def tensorboard(
    logdir: str,
    log_path: str,
    env: dict[str, str] | None = None,
    wait_s: float = 90,
    while_starting: Callable[[], object] | None = None,
) -> Iterator[str]:
    """A TensorBoard (with the Viz plugin) on 127.0.0.1 serving ``logdir``; yields its base URL. Where the
    package is not installed (a development checkout) the plugin is passed in explicitly.
    ``while_starting()`` runs while TensorBoard starts (e.g. the fit that writes the logs)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost",
        **(env or {}),
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, logdir, str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            if while_starting is not None:
                while_starting()
            deadline = time.monotonic() + wait_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"TensorBoard exited ({proc.returncode}):\n{_tail(log_path)}")
                with contextlib.suppress(OSError):
                    status, body, _ = get(base + "/data/plugins_listing", timeout=2)
                    if status == 200 and "keras_viz" in json.loads(body):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"TensorBoard did not answer in {wait_s} s:\n{_tail(log_path)}")
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _tail(path: str, n: int = 4000) -> str:
    with open(path, "rb") as f:
        return f.read()[-n:].decode("utf-8", "replace")

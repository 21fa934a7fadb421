"""TensorBoard image and scalar summaries in the event file of one run directory.

Written by `keras_vizcallbacks.writers.eventfile` (no TensorFlow, on every Keras backend)
with PNGs from `keras_vizcallbacks.writers.png.encode_png`; the summaries are the ones
``tf.summary.image`` and ``tf.summary.scalar`` write.
"""

from __future__ import annotations

import os

import numpy as np

from keras_vizcallbacks.writers.eventfile import EventFileWriter, image_value, scalar_value
from keras_vizcallbacks.writers.png import PNG_COMPRESSION, encode_png

__all__ = ["PNG_COMPRESSION", "TensorBoardWriter", "check_writable", "encode_png"]


class TensorBoardWriter:
    """Writes uint8 images and scalars to a new event file in one TensorBoard run directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = EventFileWriter(path)
        self.event_file = self._file.path
        self.closed = False

    def write(self, tag: str, image: np.ndarray, step: int, description: str = "") -> None:
        """``image``: uint8 (H, W), (H, W, C) or a batch (N, H, W, C) written as one summary of N images."""
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise TypeError(f"writers take uint8 images, got {image.dtype} for tag {tag!r}")
        if image.ndim in (2, 3):
            self.write_encoded(tag, encode_png(image), image.shape[1], image.shape[0], step, description)
            return
        if image.ndim != 4 or image.shape[0] == 0:
            raise ValueError(f"writers take (H, W), (H, W, C) or (N, H, W, C) images, got {image.shape} for {tag!r}")
        pngs = [encode_png(im) for im in image]  # as tf.summary.image(max_outputs=N) writes a batch
        self._file.add_value(image_value(tag, pngs, image.shape[2], image.shape[1], description, ""), step)

    def write_encoded(self, tag: str, png: bytes, width: int, height: int, step: int, description: str = "") -> None:
        """Write an already encoded image (PNG, APNG or GIF bytes) as an image summary."""
        self._file.add_value(image_value(tag, png, width, height, description), step)

    def write_scalar(self, tag: str, value: float, step: int, description: str = "") -> None:
        """A scalar summary (TensorBoard's scalars dashboard plots it over steps)."""
        self._file.add_value(scalar_value(tag, float(value), description), step)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self.closed = True


def check_writable(path: str) -> None:
    """Create ``path`` (and parents) and check a file can be written there; ValueError if not."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"log_dir {path!r} is a file, not a directory: choose a directory path.")
    parent = path
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise ValueError(f"log_dir {path!r} cannot be created: {parent!r} is a file.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"log_dir {path!r} cannot be created ({e.strerror or e}); choose a writable directory.") from e
    probe = os.path.join(path, f".kv_write_test_{os.getpid()}")
    try:
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"log_dir {path!r} is not writable ({e.strerror or e}); choose a writable directory.") from e

"""TensorBoard event files written without TensorFlow.

An event file is a TFRecord file (framing: `keras_vizcallbacks.writers.records`) of
serialized ``Event`` protocol buffers (``tensorboard.compat.proto``, which import without
TensorFlow). The file starts with an ``Event`` holding ``file_version: "brain.Event:2"``;
each later ``Event`` carries a step, a wall time and a ``Summary`` with one value.

The summaries are the ones TensorFlow 2's ``tf.summary`` writes, field for field:

* an image: a string tensor ``[width, height, encoded image...]`` with the images plugin's
  metadata (display name = tag, Markdown description), as ``tf.summary.image`` / ``tf.summary.write``;
* a scalar: a rank-0 float32 tensor with the scalars plugin's metadata, as ``tf.summary.scalar``.

So TensorBoard (and TensorFlow's readers) show the same runs, tags, steps, descriptions and
pixels as for a file written by TensorFlow. The file is named as TensorFlow names it,
``events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2``, and every record reaches the operating
system when it is written (no buffering of our own): a reader sees each image as soon as the
write returns. A write that fails part-way (disk full) is cut back off the file, so the records
before it, and those written after the disk has room again, stay readable.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata

from keras_vizcallbacks.writers import records

FILE_VERSION = "brain.Event:2"
SOURCE = "keras_vizcallbacks"  # Event.source_metadata.writer of the files we write
_FILE_INDEX = itertools.count()  # like TensorFlow's per-process counter: two writers never share a name


def event_file_name(wall_time: float | None = None, suffix: str = ".v2") -> str:
    """``events.out.tfevents.<seconds, 10 digits>.<host>.<pid>.<n><suffix>``, as TensorFlow names its files."""
    seconds = int(time.time() if wall_time is None else wall_time)
    host = socket.gethostname() or "localhost"
    return f"events.out.tfevents.{seconds:010d}.{host}.{os.getpid()}.{next(_FILE_INDEX)}{suffix}"


def image_value(
    tag: str,
    encoded: list[bytes] | bytes,
    width: int,
    height: int,
    description: str = "",
    display_name: str | None = None,
):
    """The ``Summary.Value`` of an image summary: ``[width, height, *encoded]`` + images plugin metadata.

    ``display_name`` defaults to the tag (as the library always wrote single images); ``""`` leaves
    it out, as ``tf.summary.image`` does."""
    images = [encoded] if isinstance(encoded, (bytes, bytearray, memoryview)) else list(encoded)
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2 + len(images))])
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=shape,
        string_val=[str(int(width)).encode(), str(int(height)).encode(), *map(bytes, images)],
    )
    md = image_metadata.create_summary_metadata(
        display_name=tag if display_name is None else display_name, description=description
    )
    return summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=md)


def scalar_value(tag: str, value: float, description: str = ""):
    """The ``Summary.Value`` of ``tf.summary.scalar``: a rank-0 float32 tensor + scalars plugin metadata."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        tensor_content=np.asarray(value, dtype="<f4").tobytes(),
    )
    md = scalar_metadata.create_summary_metadata(display_name="", description=description)
    return summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=md)


class EventFileWriter:
    """Appends events to a new event file in ``logdir`` (created if missing). Thread-safe."""

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        self._lock = threading.Lock()
        now = time.time()
        while True:  # a name nobody uses yet (the counter makes a clash all but impossible)
            path = os.path.join(self.logdir, event_file_name(now))
            try:
                self._file = open(path, "xb", buffering=0)  # noqa: SIM115 (closed in close())
                break
            except FileExistsError:
                continue
        self.path = path
        self._offset = 0
        self.closed = False
        first = event_pb2.Event(wall_time=now, file_version=FILE_VERSION)
        first.source_metadata.writer = SOURCE
        self.write_event(first)

    def write_event(self, event) -> None:
        """Append one ``Event`` (its bytes are with the operating system when this returns)."""
        self._append(records.frame(event.SerializeToString()))

    def add_value(self, value, step: int, wall_time: float | None = None) -> None:
        """Append an ``Event`` at ``step`` holding the one ``Summary.Value`` ``value``."""
        event = event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=int(step))
        event.summary.value.append(value)
        self.write_event(event)

    def _append(self, data: bytes) -> None:
        with self._lock:
            if self.closed:
                raise ValueError(f"event file {self.path!r} is closed")
            start = self._offset
            try:
                view = memoryview(data)
                while view:
                    view = view[self._file.write(view) :]
            except BaseException:
                # A record cut short would hide every record after it from readers: drop it.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._file.fileno(), start)
                    self._file.seek(start)
                raise
            self._offset = start + len(data)

    def flush(self) -> None:
        """Nothing is buffered here; kept for the sink interface."""

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._file.close()

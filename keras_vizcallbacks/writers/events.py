"""Reading image and scalar summaries back from event files, without TensorFlow.

Our own reader over `keras_vizcallbacks.writers.records` and the ``Event`` protocol buffer
(``tensorboard.compat.proto``): it loads neither TensorFlow nor Keras (TensorBoard's
``EventAccumulator`` imports TensorFlow whenever it is installed), and reads files written
by TensorFlow's ``tf.summary`` (and Keras's TensorBoard callback) as well as ours. The export
command, evolution animations and the tests use it.

A run directory is read like TensorBoard reads it: every file whose name contains
``tfevents``, in name order. A tag's kind (image, scalar) and description come from the
first summary metadata written for it, which is what TensorBoard shows at every step.
A record cut short at the end of a file (a writer still appending) is left for the next read;
a corrupt record ends the reading of its file with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator

from keras_vizcallbacks.writers import records

logger = logging.getLogger("keras_vizcallbacks")

IMAGES_PLUGIN = "images"
SCALARS_PLUGIN = "scalars"


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    step: int
    wall_time: float
    width: int
    height: int
    encoded: bytes  # PNG (APNG, or GIF) bytes of the first image of the summary
    count: int  # images in the summary


@dataclasses.dataclass(frozen=True)
class ScalarRecord:
    step: int
    wall_time: float
    value: float


def event_files(run_dir: str | os.PathLike) -> list[str]:
    """The event files of one run directory (not its subdirectories), in name order."""
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"No run directory {run_dir!r}.")
    names = sorted(n for n in os.listdir(run_dir) if "tfevents" in n)
    return [os.path.join(run_dir, n) for n in names if os.path.isfile(os.path.join(run_dir, n))]


def iter_events(run_dir: str | os.PathLike) -> Iterator:
    """Every ``Event`` of every event file of ``run_dir``, file by file, in file order."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    for path in event_files(run_dir):
        try:
            for offset, data in records.iter_records(path, verify=True):
                try:
                    yield event_pb2.Event.FromString(data)
                except DecodeError:
                    logger.warning("%s: record at byte %d is not an Event; skipped", path, offset)
        except records.CorruptRecordError as e:
            logger.warning("%s; the rest of this file is skipped", e)


def _scan(run_dir: str | os.PathLike) -> Iterator[tuple[str, str, str, object, object]]:
    """``(tag, plugin, description, event, value)`` per summary value; plugin and description are
    the tag's first (what TensorBoard shows). Legacy TF1 values (``image``, ``simple_value``) count
    as images and scalars."""
    first: dict[str, tuple[str, str]] = {}
    for event in iter_events(run_dir):
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            tag = value.tag
            if tag not in first:
                kind = value.WhichOneof("value")
                if kind == "image":
                    plugin = IMAGES_PLUGIN
                elif kind == "simple_value":
                    plugin = SCALARS_PLUGIN
                else:
                    plugin = value.metadata.plugin_data.plugin_name
                first[tag] = (plugin, value.metadata.summary_description)
            plugin, description = first[tag]
            yield tag, plugin, description, event, value


def read_images(run_dir: str | os.PathLike, tags: Iterable[str] | None = None) -> dict[str, list[ImageRecord]]:
    """All image summaries of one run directory: ``{tag: [ImageRecord, ...]}`` by step
    (only those of ``tags``, if given).

    Every record is kept (duplicates included), so callers can check that each
    step appears exactly once.
    """
    wanted = None if tags is None else set(tags)
    result: dict[str, list[ImageRecord]] = {}
    for tag, plugin, _, event, value in _scan(run_dir):
        if plugin != IMAGES_PLUGIN or (wanted is not None and tag not in wanted):
            continue
        if value.WhichOneof("value") == "image":  # TF1's Summary.Image
            im = value.image
            rec = ImageRecord(event.step, event.wall_time, im.width, im.height, bytes(im.encoded_image_string), 1)
        else:
            vals = value.tensor.string_val
            if len(vals) < 3:  # an image summary with no image (max_outputs=0)
                continue
            rec = ImageRecord(event.step, event.wall_time, int(vals[0]), int(vals[1]), bytes(vals[2]), len(vals) - 2)
        result.setdefault(tag, []).append(rec)
    return {tag: sorted(recs, key=lambda r: (r.step, r.wall_time)) for tag, recs in result.items()}


def _scalar(value) -> float | None:
    if value.WhichOneof("value") == "simple_value":
        return float(value.simple_value)
    tensor = value.tensor
    if list(tensor.tensor_shape.dim):  # not rank 0
        return None
    import numpy as np
    from tensorboard.compat.proto import types_pb2

    dtypes = {types_pb2.DT_FLOAT: "<f4", types_pb2.DT_DOUBLE: "<f8", types_pb2.DT_HALF: "<f2"}
    if tensor.dtype not in dtypes:
        return None
    if tensor.tensor_content:
        return float(np.frombuffer(tensor.tensor_content, dtype=dtypes[tensor.dtype])[0])
    for field in ("float_val", "double_val"):
        vals = getattr(tensor, field)
        if vals:
            return float(vals[0])
    if tensor.half_val:
        return float(np.asarray(tensor.half_val[0], np.uint16).view(np.float16))
    return 0.0  # a rank-0 tensor with no values holds the default, zero


def read_scalars(run_dir: str | os.PathLike) -> dict[str, list[ScalarRecord]]:
    """All scalar summaries of one run directory: ``{tag: [ScalarRecord, ...]}`` by step (duplicates kept)."""
    result: dict[str, list[ScalarRecord]] = {}
    for tag, plugin, _, event, value in _scan(run_dir):
        if plugin != SCALARS_PLUGIN:
            continue
        number = _scalar(value)
        if number is not None:
            result.setdefault(tag, []).append(ScalarRecord(event.step, event.wall_time, number))
    return {tag: sorted(recs, key=lambda r: (r.step, r.wall_time)) for tag, recs in result.items()}


def read_descriptions(run_dir: str | os.PathLike, plugin: str = IMAGES_PLUGIN) -> dict[str, str]:
    """``{tag: Markdown description}`` for the image tags (or ``plugin="scalars"``) of a run directory."""
    out: dict[str, str] = {}
    for tag, kind, description, _, _ in _scan(run_dir):
        if kind == plugin and tag not in out:
            out[tag] = description
    return out


def read_steps(run_dir: str | os.PathLike) -> dict[str, dict[str, list[int]]]:
    """``{"images": {tag: [steps]}, "scalars": {tag: [steps]}}``, each step once, without keeping the data."""
    found: dict[str, dict[str, set[int]]] = {IMAGES_PLUGIN: {}, SCALARS_PLUGIN: {}}
    for tag, plugin, _, event, _ in _scan(run_dir):
        if plugin in found:
            found[plugin].setdefault(tag, set()).add(int(event.step))
    return {plugin: {tag: sorted(steps) for tag, steps in sorted(tags.items())} for plugin, tags in found.items()}


def decode(record: ImageRecord):
    """The record's first image as a uint8 numpy array (H, W, C); the first frame of an animation."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(record.encoded)) as im:
        return np.asarray(im.convert("RGB"))

"""Event files without TensorFlow: our writer and reader against TensorFlow's and TensorBoard's.

The library writes and reads event files with its own code (writers/eventfile.py, writers/events.py,
PNGs from writers/png.py). These tests check, against the real thing loaded here (tests may load
TensorFlow; the library paths must not, which the subprocess tests check):

* TensorFlow's record reader and TensorBoard's EventAccumulator read our files and see the same
  tags, steps, descriptions, pixels and scalars as in a file written by ``tf.summary``;
* our reader reads files written by ``tf.summary`` (and the Keras TensorBoard callback's kind of
  scalars) like EventAccumulator does;
* writing and reading leave ``tensorflow`` and ``keras`` out of ``sys.modules``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from keras_vizcallbacks import writers
from keras_vizcallbacks.writers import eventfile, events, png, records

tf = pytest.importorskip("tensorflow")


def _images(seed: int = 0) -> list[np.ndarray]:
    """A few uint8 images of different shapes and content (noise, flat, gradient)."""
    rng = np.random.default_rng(seed)
    flat = np.full((12, 20, 3), (30, 200, 90), np.uint8)
    ramp = np.broadcast_to(np.arange(48, dtype=np.uint8)[None, :, None] * 5, (16, 48, 3)).copy()
    return [rng.integers(0, 256, (9, 13, 3), dtype=np.uint8), flat, ramp]


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


# ----------------------------------------------------------------------------- PNG


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 2), (5, 7, 3), (5, 7, 4), (1, 1, 3), (300, 2, 3)])
def test_encode_png_is_lossless_for_pillow_and_tensorflow(shape):
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    data = png.encode_png(image)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        np.testing.assert_array_equal(np.asarray(im).reshape(image.shape), image)
    decoded = tf.io.decode_png(data, channels=0).numpy()  # 0: as stored
    np.testing.assert_array_equal(decoded.reshape(image.shape), image)


def test_encode_png_rejects_what_it_cannot_encode():
    with pytest.raises(TypeError, match="uint8"):
        png.encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        png.encode_png(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        png.encode_png(np.zeros((0, 4, 3), np.uint8))


def test_apng_frames_equal_the_source_frames():
    frames = [np.random.default_rng(i).integers(0, 256, (21, 34, 3), np.uint8) for i in range(4)]
    data = png.encode_apng(iter(frames), 4, [100, 200, 300, 1500], loop=0)
    assert png.image_format(data) == "apng" and png.is_animated_png(data)
    assert png.image_format(png.encode_png(frames[0])) == "png"
    with Image.open(io.BytesIO(data)) as im:
        assert im.n_frames == 4 and im.info["loop"] == 0
        for i, frame in enumerate(frames):
            im.seek(i)
            assert im.info["duration"] == [100, 200, 300, 1500][i]
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), frame)  # error 0
    with pytest.raises(ValueError, match="one size"):
        png.encode_apng(iter([frames[0], frames[0][:5]]), 2)
    with pytest.raises(ValueError, match="frames given"):
        png.encode_apng(iter(frames[:2]), 3)


# ----------------------------------------------------------------------------- writing


def _write_ours(run_dir: str) -> None:
    w = writers.TensorBoardWriter(run_dir)
    a, b, c = _images()
    w.write("views/a", a, 0, "**A** at step 0")
    w.write("views/a", b[:9, :13], 1, "**A** changed later (TensorBoard shows the first)")
    w.write("views/batch", np.stack([c, c[::-1]]), 0, "two images")
    w.write_encoded("views/enc", png.encode_png(b), b.shape[1], b.shape[0], 3, "encoded")
    w.write_scalar("views/accuracy", 0.25, 0, "accuracy of the view")
    w.write_scalar("views/accuracy", 0.75, 1)
    w.close()


def _write_tf(run_dir: str) -> None:
    """The same content through tf.summary, as the library wrote it before: one image as an encoded PNG
    with ``tf.summary.write`` (display name = tag), a batch with ``tf.summary.image``."""
    from tensorboard.plugins.image import metadata

    def write_png(tag, image, step, description):
        md = metadata.create_summary_metadata(display_name=tag, description=description)
        data = tf.image.encode_png(image, compression=1)
        tf.summary.write(tag, tf.stack([str(image.shape[1]), str(image.shape[0]), data]), step=step, metadata=md)

    a, b, c = _images()
    w = tf.summary.create_file_writer(run_dir)
    with w.as_default():
        write_png("views/a", a, 0, "**A** at step 0")
        write_png("views/a", b[:9, :13], 1, "**A** changed later (TensorBoard shows the first)")
        tf.summary.image("views/batch", np.stack([c, c[::-1]]), step=0, max_outputs=2, description="two images")
        write_png("views/enc", b, 3, "encoded")
        tf.summary.scalar("views/accuracy", 0.25, step=0, description="accuracy of the view")
        tf.summary.scalar("views/accuracy", 0.75, step=1)
    w.close()


def test_event_file_name_and_first_event(tmp_path):
    w = eventfile.EventFileWriter(tmp_path / "run")
    w2 = eventfile.EventFileWriter(tmp_path / "run")
    w.close()
    w2.close()
    names = sorted(os.listdir(tmp_path / "run"))
    assert len(names) == 2
    for name in names:
        prefix, seconds, host, pid, index, suffix = name.rsplit(".", 5)
        assert prefix == "events.out.tfevents" and len(seconds) == 10 and suffix == "v2"
        assert host == socket.gethostname() and int(pid) == os.getpid() and index.isdigit()
        (first,) = [e for _, e in records.iter_records(tmp_path / "run" / name)]
        from tensorboard.compat.proto import event_pb2

        ev = event_pb2.Event.FromString(first)
        assert ev.file_version == "brain.Event:2" and ev.source_metadata.writer == "keras_vizcallbacks"
    with pytest.raises(ValueError, match="closed"):
        w.add_value(eventfile.scalar_value("x", 1.0), 0)


def test_our_summaries_are_tf_summaries_field_for_field(tmp_path):
    """Apart from wall times and the file's header, our events are the ones tf.summary writes."""
    from tensorboard.compat.proto import event_pb2

    def summaries(run_dir):
        (path,) = events.event_files(run_dir)
        out = []
        for _, data in records.iter_records(path, verify=True):
            ev = event_pb2.Event.FromString(data)
            if ev.HasField("summary"):
                out.append((ev.step, ev.summary))
        return out

    _write_ours(str(tmp_path / "ours"))
    _write_tf(str(tmp_path / "tf"))
    ours, theirs = summaries(tmp_path / "ours"), summaries(tmp_path / "tf")
    assert len(ours) == len(theirs) == 6
    for (s1, v1), (s2, v2) in zip(ours, theirs):
        assert s1 == s2
        for a, b in zip(v1.value, v2.value, strict=True):
            assert a.tag == b.tag and a.metadata == b.metadata, (a.metadata, b.metadata)
            assert a.tensor.dtype == b.tensor.dtype and a.tensor.tensor_shape == b.tensor.tensor_shape
            if a.tensor.string_val:
                assert a.tensor.string_val[:2] == b.tensor.string_val[:2]  # width, height
                for x, y in zip(a.tensor.string_val[2:], b.tensor.string_val[2:], strict=True):
                    np.testing.assert_array_equal(_decode(x), _decode(y))  # same pixels (encoders differ)
            else:
                assert a.tensor.tensor_content == b.tensor.tensor_content


def test_tensorflow_record_reader_reads_our_file(tmp_path):
    from tensorboard.compat.proto import event_pb2

    _write_ours(str(tmp_path / "run"))
    (path,) = events.event_files(tmp_path / "run")
    ours = [data for _, data in records.iter_records(path, verify=True)]
    theirs = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    assert theirs == ours and len(ours) == 7  # the file_version event, then 6 summaries
    assert [event_pb2.Event.FromString(d).step for d in theirs[1:]] == [0, 1, 0, 3, 0, 1]


def _accumulate(run_dir: str) -> dict:
    """What TensorBoard's EventAccumulator sees in a run: images, scalars, descriptions."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(run_dir, size_guidance={ea.TENSORS: 0})
    acc.Reload()
    seen: dict = {"images": {}, "scalars": {}, "descriptions": {}}
    for tag in acc.Tags()[ea.TENSORS]:
        md = acc.SummaryMetadata(tag)
        seen["descriptions"][tag] = md.summary_description
        for t in acc.Tensors(tag):
            if md.plugin_data.plugin_name == "images":
                vals = t.tensor_proto.string_val
                pixels = [_decode(v).tolist() for v in vals[2:]]
                seen["images"].setdefault(tag, []).append((t.step, int(vals[0]), int(vals[1]), pixels))
            else:
                value = float(tensor_util.make_ndarray(t.tensor_proto))
                seen["scalars"].setdefault(tag, []).append((t.step, value))
    return seen


def test_event_accumulator_sees_the_same_as_for_tf_summary(tmp_path):
    _write_ours(str(tmp_path / "ours"))
    _write_tf(str(tmp_path / "tf"))
    ours, theirs = _accumulate(str(tmp_path / "ours")), _accumulate(str(tmp_path / "tf"))
    assert ours == theirs
    assert sorted(ours["images"]) == ["views/a", "views/batch", "views/enc"]
    assert ours["scalars"] == {"views/accuracy": [(0, 0.25), (1, 0.75)]}
    assert ours["descriptions"]["views/a"] == "**A** at step 0"


@pytest.mark.parametrize("writer", ["ours", "tf"])
def test_our_reader_agrees_with_event_accumulator(tmp_path, writer):
    run_dir = str(tmp_path / writer)
    (_write_ours if writer == "ours" else _write_tf)(run_dir)
    expected = _accumulate(run_dir)
    images = writers.read_images(run_dir)
    got = {
        tag: [(r.step, r.width, r.height, [_decode(r.encoded).tolist()]) for r in recs] for tag, recs in images.items()
    }
    want = {tag: [(s, w, h, px[:1]) for s, w, h, px in recs] for tag, recs in expected["images"].items()}
    assert got == want
    assert [r.count for r in images["views/batch"]] == [2]
    scalars = writers.read_scalars(run_dir)
    assert {t: [(r.step, r.value) for r in recs] for t, recs in scalars.items()} == expected["scalars"]
    assert writers.read_descriptions(run_dir) == {t: expected["descriptions"][t] for t in images}
    assert writers.read_descriptions(run_dir, "scalars") == {"views/accuracy": "accuracy of the view"}
    assert events.read_steps(run_dir) == {
        "images": {"views/a": [0, 1], "views/batch": [0], "views/enc": [3]},
        "scalars": {"views/accuracy": [0, 1]},
    }
    assert writers.read_images(run_dir, tags=["views/enc"]).keys() == {"views/enc"}


def test_reader_reads_tf1_summaries(tmp_path):
    """Legacy values (Summary.Image, simple_value), as TF1 and some tools still write them."""
    from tensorboard.compat.proto import summary_pb2

    a = _images()[0]
    w = eventfile.EventFileWriter(tmp_path / "run")
    image = summary_pb2.Summary.Image(height=a.shape[0], width=a.shape[1], colorspace=3)
    image.encoded_image_string = png.encode_png(a)
    w.add_value(summary_pb2.Summary.Value(tag="old/image", image=image), 4)
    w.add_value(summary_pb2.Summary.Value(tag="old/loss", simple_value=1.5), 4)
    w.close()
    (rec,) = writers.read_images(tmp_path / "run")["old/image"]
    assert (rec.step, rec.width, rec.height, rec.count) == (4, a.shape[1], a.shape[0], 1)
    np.testing.assert_array_equal(writers.decode(rec), a)
    assert [(r.step, r.value) for r in writers.read_scalars(tmp_path / "run")["old/loss"]] == [(4, 1.5)]


# ----------------------------------------------------------------------------- failures


class _DiskFillsUp:
    """A file object that writes only part of a record, then fails like a full disk."""

    def __init__(self, real):
        self.real = real
        self.full = False

    def write(self, data):
        if self.full:
            self.real.write(bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_failed_write_leaves_the_file_readable(tmp_path):
    """A record cut short by a full disk is cut off the file: earlier and later records read back."""
    w = writers.TensorBoardWriter(str(tmp_path / "run"))
    a = _images()[0]
    w.write("t", a, 0)
    disk = _DiskFillsUp(w._file._file)
    w._file._file = disk
    disk.full = True
    with pytest.raises(OSError, match="No space"):
        w.write("t", a, 1)
    disk.full = False
    w.write("t", a, 2)
    w.close()
    (path,) = events.event_files(tmp_path / "run")
    assert len(list(tf.data.TFRecordDataset(path))) == 3  # header + steps 0 and 2
    assert [r.step for r in writers.read_images(tmp_path / "run")["t"]] == [0, 2]


def test_reader_skips_a_corrupt_file_tail_and_waits_for_a_cut_record(tmp_path, caplog):
    w = writers.TensorBoardWriter(str(tmp_path / "run"))
    a = _images()[0]
    for step in range(3):
        w.write("t", a, step)
    w.close()
    (path,) = events.event_files(tmp_path / "run")
    with open(path, "rb") as f:
        full = f.read()
    offsets = [o for o, _ in records.iter_records(path)]
    # a writer still appending: the last record is cut short -> read the others, quietly
    with open(path, "wb") as f:
        f.write(full[:-10])
    assert [r.step for r in writers.read_images(tmp_path / "run")["t"]] == [0, 1]
    # a flipped bit in the second image's data -> that record and the rest of the file are skipped, with a warning
    bad = bytearray(full)
    bad[offsets[2] + 40] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(bad))
    with caplog.at_level("WARNING", logger="keras_vizcallbacks"):
        assert [r.step for r in writers.read_images(tmp_path / "run")["t"]] == [0]
    assert "bad data checksum" in caplog.text


def test_reading_a_missing_run_directory_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="No run directory"):
        writers.read_images(tmp_path / "nope")


# ----------------------------------------------------------------------------- without TensorFlow


_TF_FREE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from keras_vizcallbacks import export, writers

    log_dir = sys.argv[1]
    w = writers.acquire(log_dir, "viz")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 40, 3), dtype=np.uint8) for _ in range(3)]
    for step, image in enumerate(images):
        w.write_later("view/t", image, step, "the view").result()  # encoded on the encoder threads
        w.write_scalar("view/accuracy", step / 4, step, "per epoch")
    writers.release(w)
    run = writers.read_images(log_dir + "/viz")["view/t"]
    assert [r.step for r in run] == [0, 1, 2]
    assert all(np.array_equal(writers.decode(r), im) for r, im in zip(run, images))
    assert [r.value for r in writers.read_scalars(log_dir + "/viz")["view/accuracy"]] == [0, 0.25, 0.5]
    assert writers.read_descriptions(log_dir + "/viz") == {"view/t": "the view"}
    export.export_tag(log_dir, "view/t", log_dir + "/t.apng")
    export.export_tag(log_dir, "view/t", log_dir + "/t.gif")
    export.export_tag(log_dir, "view/t", log_dir + "/t.png")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
    print(json.dumps(loaded))
    """
)


def test_writing_reading_and_exporting_load_neither_tensorflow_nor_keras(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _TF_FREE, str(tmp_path / "logs")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    # and what it wrote reads back in TensorBoard's own reader
    assert _accumulate(str(tmp_path / "logs" / "viz"))["scalars"] == {"view/accuracy": [(0, 0.0), (1, 0.25), (2, 0.5)]}

"""TFRecord framing (writers/records.py) against TensorFlow's own reader and writer."""

import os

import numpy as np
import pytest

from keras_vizcallbacks.writers import records


def test_masked_crc_matches_tensorboard_reference():
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 1000, 65537):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert records.masked_crc32c(data) == masked_crc32c(data)


def test_round_trip_offsets_and_truncated_tail(tmp_path):
    path = tmp_path / "events.out"
    payloads = [b"", b"a", os.urandom(3000), b"xyz" * 100]
    with open(path, "wb") as f:
        for p in payloads:
            records.write_record(f, p)
    got = list(records.iter_records(path, verify=True))
    assert [d for _, d in got] == payloads
    for offset, data in got:
        assert records.read_record(path, offset) == data
    # resume after the second record
    second_end = got[1][0] + records.record_size(len(got[1][1]))
    assert [d for _, d in records.iter_records(path, second_end)] == payloads[2:]
    # a record cut short (a writer still appending) ends the iteration quietly
    full = path.read_bytes()
    (tmp_path / "cut").write_bytes(full[:-5])
    assert [d for _, d in records.iter_records(tmp_path / "cut")] == payloads[:-1]
    # a corrupted length checksum is an error, not silence
    bad = bytearray(full)
    bad[got[1][0] + 8] ^= 0xFF
    (tmp_path / "bad").write_bytes(bytes(bad))
    with pytest.raises(records.CorruptRecordError):
        list(records.iter_records(tmp_path / "bad"))


def test_tensorflow_reads_our_records(tmp_path):
    tf = pytest.importorskip("tensorflow")
    path = str(tmp_path / "r.tfrecord")
    payloads = [b"one", os.urandom(500), b""]
    with open(path, "wb") as f:
        for p in payloads:
            records.write_record(f, p)
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == payloads

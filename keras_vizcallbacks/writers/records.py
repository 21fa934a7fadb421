"""TFRecord framing of TensorBoard event files, without TensorFlow.

An event file is a sequence of records, each::

    uint64 length (little-endian) | uint32 masked CRC-32C of the length bytes
    bytes  data[length]           | uint32 masked CRC-32C of the data

where ``data`` is a serialized ``Event`` protocol buffer. This module only frames
bytes; the protocol buffers come from the ``tensorboard`` package
(``tensorboard.compat.proto``), which imports without TensorFlow.

CRC-32C is computed by ``google-crc32c`` (a C extension) when it is installed,
else by the ``tensorboard`` package's pure-Python implementation (about 0.3 ms
per kB: fine for reading, slow for writing large images).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

try:  # the C implementation: ~1000x faster than pure Python
    import google_crc32c as _crc

    def crc32c(data: bytes) -> int:
        return _crc.value(data)

except ImportError:  # pragma: no cover - google-crc32c is a dependency
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as _tb_crc32c

    def crc32c(data: bytes) -> int:
        return _tb_crc32c(data)


_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked crc of the length
_FOOTER = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord files store (rotated right by 15 bits, plus a constant)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record: header, ``data``, footer."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + _FOOTER.pack(masked_crc32c(data))


def write_record(f: BinaryIO, data: bytes) -> int:
    """Append one record to ``f``; returns the number of bytes written."""
    record = frame(data)
    f.write(record)
    return len(record)


class CorruptRecordError(ValueError):
    """A record whose length or data does not match its checksum."""


def iter_records(path: str | os.PathLike, start: int = 0, *, verify: bool = False) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, data)`` for every complete record of ``path`` from byte ``start``.

    A record cut short at the end of the file (a writer still appending) ends the
    iteration quietly: call again later with ``start`` = the offset after the last
    record seen (``offset + record_size(len(data))``) to read what came since. A length
    whose checksum does not match raises `CorruptRecordError` (the rest of the file
    cannot be framed); ``verify=True`` also checks each record's data checksum.
    """
    with open(path, "rb") as f:
        f.seek(start)
        offset = start
        while True:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise CorruptRecordError(f"{os.fspath(path)}: bad length checksum at byte {offset}")
            body = f.read(length + _FOOTER.size)
            if len(body) < length + _FOOTER.size:
                return
            data = body[:length]
            if verify and masked_crc32c(data) != _FOOTER.unpack(body[length:])[0]:
                raise CorruptRecordError(f"{os.fspath(path)}: bad data checksum at byte {offset}")
            yield offset, data
            offset += _HEADER.size + length + _FOOTER.size


def record_size(data_length: int) -> int:
    """Bytes one record of ``data_length`` bytes of data takes in the file."""
    return _HEADER.size + data_length + _FOOTER.size


def read_record(path: str | os.PathLike, offset: int) -> bytes:
    """The data of the record that starts at byte ``offset`` of ``path``."""
    with open(path, "rb") as f:
        f.seek(offset)
        header = f.read(_HEADER.size)
        if len(header) < _HEADER.size:
            raise CorruptRecordError(f"{os.fspath(path)}: no record at byte {offset}")
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[:8]) != length_crc:
            raise CorruptRecordError(f"{os.fspath(path)}: no record at byte {offset}")
        data = f.read(length)
        if len(data) < length:
            raise CorruptRecordError(f"{os.fspath(path)}: record at byte {offset} is cut short")
        return data

"""The Viz dashboard's reader at scale: thousands of epochs, dozens of tags.

Writes ``--steps`` x ``--tags`` small PNG image summaries (8x8 by default) into one run with the
records module (no TensorFlow, no model), then measures with the dashboard's `LogdirReader`:
the first scan (what the page's first ``tags`` request costs), the memory the index holds
(tracemalloc, and the raw bytes of its step arrays), an incremental refresh after one more
epoch is appended (only the tail is read), image reads (cold: from the event file; warm: from
the LRU cache) and the cache's bound.

    python benchmarks/dashboard_scale.py                  # 3,000 steps x 30 tags
    python benchmarks/dashboard_scale.py --steps 10000 --tags 12 --size 64
"""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import time
import tracemalloc
import zlib

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

from keras_vizcallbacks.dashboard.reader import LogdirReader
from keras_vizcallbacks.writers import manifest, records


def png(width: int, height: int, value: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes([value % 256, (value * 7) % 256, (value * 13) % 256]) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def event(tag: str, step: int, size: int) -> bytes:
    value = summary_pb2.Summary.Value(
        tag=tag, tensor=tensor_pb2.TensorProto(dtype=7, string_val=[b"%d" % size, b"%d" % size, png(size, size, step)])
    )
    if step == 0:
        value.metadata.plugin_data.plugin_name = "images"
        value.metadata.summary_description = f"{tag}: a synthetic image"
    return event_pb2.Event(
        step=step, wall_time=1.7e9 + step, summary=summary_pb2.Summary(value=[value])
    ).SerializeToString()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--tags", type=int, default=30)
    p.add_argument("--size", type=int, default=8, help="image side in pixels")
    p.add_argument("--cache-mib", type=float, default=32)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="kv-dash-scale-") as logdir:
        run = os.path.join(logdir, "viz")
        os.makedirs(run)
        tags = [f"view{t % 6}/layer_{t}" for t in range(args.tags)]
        path = os.path.join(run, "events.out.tfevents.1.scale")
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            for step in range(args.steps):
                f.write(b"".join(records.frame(event(tag, step, args.size)) for tag in tags))
        manifest.write_manifest(run, {t: {"view": manifest.view_of(t)} for t in tags})
        written = time.perf_counter() - t0
        n = args.steps * args.tags
        print(
            f"{args.steps} steps x {args.tags} tags = {n:,} images of {args.size}x{args.size}; "
            f"event file {os.path.getsize(path) / 2**20:.1f} MiB, written in {written:.1f} s"
        )

        # timings (without tracemalloc, which slows Python code several times)
        reader = LogdirReader(logdir, refresh_s=0, discover_s=0, cache_bytes=int(args.cache_mib * 2**20))
        t0 = time.perf_counter()
        info = reader.run_info("viz")
        scan = time.perf_counter() - t0
        assert all(len(t["steps"]) == args.steps for t in info["tags"].values())
        print(f"first scan + tags answer: {scan:.2f} s ({scan / n * 1e6:.0f} us a record)")

        t0 = time.perf_counter()
        reader.run_info("viz")
        again = time.perf_counter() - t0
        with open(path, "ab") as f:
            f.write(b"".join(records.frame(event(tag, args.steps, args.size)) for tag in tags))
        t0 = time.perf_counter()
        gen = reader.generation("viz")
        inc = time.perf_counter() - t0
        info = reader.run_info("viz")
        assert all(len(t["steps"]) == args.steps + 1 for t in info["tags"].values())
        print(
            f"nothing new: tags answer in {again * 1e3:.0f} ms (all steps as JSON lists; the page polls with "
            f"since=<generation> and gets a few bytes); one more epoch appended: found in {inc * 1e3:.1f} ms "
            f"(generation {gen}, tail only)"
        )

        k = 0
        t0 = time.perf_counter()
        for step in range(0, args.steps, max(1, args.steps // 300)):
            reader.image("viz", tags[k % len(tags)], step)
            k += 1
        cold = (time.perf_counter() - t0) / k
        t0 = time.perf_counter()
        for _ in range(k):
            reader.image("viz", tags[0], 0)
        warm = (time.perf_counter() - t0) / k
        print(
            f"image read: {cold * 1e3:.2f} ms cold (from the file), {warm * 1e3:.3f} ms cached; "
            f"cache {reader.cache_size() / 2**10:.0f} KiB (bound {args.cache_mib:g} MiB)"
        )
        del reader, info

        # memory: a fresh reader under tracemalloc
        tracemalloc.start()
        reader = LogdirReader(logdir, refresh_s=0, discover_s=0, cache_bytes=int(args.cache_mib * 2**20))
        reader.generation("viz")  # scan, without building the JSON answer
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"index: {held / 2**20:.2f} MiB held after the scan (tracemalloc; peak {peak / 2**20:.2f} MiB); "
            f"step arrays {reader.index_bytes() / 2**20:.2f} MiB = {reader.index_bytes() / (n + args.tags):.0f} "
            "bytes a step; no image bytes"
        )


if __name__ == "__main__":
    main()

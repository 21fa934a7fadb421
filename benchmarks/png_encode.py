"""PNG encoders for image summaries, measured side by side in one run.

    python benchmarks/png_encode.py            # ours, Pillow and TensorFlow (if installed)
    python benchmarks/png_encode.py --no-tf    # ours and Pillow only

Encoders, all at zlib level 1 (what the writers use):

* ``ours``: `keras_vizcallbacks.writers.png.encode_png` (Pillow, with its checks and mode handling);
* ``pillow``: a bare ``Image.save(format="PNG", compress_level=1)`` (what ``ours`` costs on top of it);
* ``tensorflow``: ``tf.image.encode_png(compression=1)`` (libpng).

Both Pillow and libpng choose a row filter per row (adaptive); Pillow has no option to turn that
off. On the views' composites, unfiltered rows through zlib level 1 took 75 ms for the six views'
eight frames where Pillow takes 175 ms (and came out 12% smaller): an earlier hand-written encoder
did that, and was given up for Pillow (the project uses Pillow for PNGs).

Images: the view composites of ``docs/images`` between 300 and 1000 px on the long side
(Grad-CAM, saliency, confusion matrix, decision boundary, feature maps, filters) plus one
1000x1000 nearest-neighbour upscale, or synthetic composites when the docs are absent.

Reported per encoder, rounds interleaved so that load on the machine hits every encoder alike:

* ms per image (median over rounds, for each image) and the bytes written;
* throughput on the writers' two encoder threads against one thread (>1: encodes in parallel);
* GIL: the longest the main thread waits to run while a worker thread encodes the largest image,
  against that image's encode time (a stall far shorter than the encode: the GIL is released).

Every encoder's output is decoded by Pillow and checked pixel for pixel before timing.
The ratio column compares each encoder with ``ours`` measured in the same run.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from keras_vizcallbacks.writers.png import PNG_COMPRESSION, encode_png  # noqa: E402


def load_images() -> list[tuple[str, np.ndarray]]:
    found = []
    for path in sorted(glob.glob(os.path.join(HERE, "..", "docs", "images", "*.png"))):
        with Image.open(path) as im:
            if 300 <= max(im.size) <= 1000 and "tensorboard" not in path:
                found.append((os.path.basename(path), np.asarray(im.convert("RGB"))))
    if found:
        name, base = max(found, key=lambda f: f[1].size)
        big = np.asarray(Image.fromarray(base).resize((1000, 1000), Image.Resampling.NEAREST))
        return [*found, (f"{name} upscaled", big)]
    # synthetic composites: tiles of smooth maps through a colour ramp on a white page, a text-like strip
    rng = np.random.default_rng(0)
    out = []
    for h, w in ((400, 700), (640, 640), (700, 640), (1000, 1000)):
        page = np.full((h, w, 3), 255, np.uint8)
        for y in range(40, h - 100, 110):
            for x in range(10, w - 100, 110):
                field = np.cumsum(np.cumsum(rng.normal(size=(25, 25)), 0), 1)
                field = (field - field.min()) / (np.ptp(field) + 1e-9)
                tile = np.stack([field * 255, (1 - field) * 180, 80 + field * 100], -1).astype(np.uint8)
                page[y : y + 100, x : x + 100] = np.kron(tile, np.ones((4, 4, 1), np.uint8))[:100, :100]
        page[5:30, 10 : w - 10] = rng.integers(0, 2, (25, w - 20, 1), dtype=np.uint8) * 255
        out.append((f"synthetic {h}x{w}", page))
    return out


def encoders(with_tf: bool) -> dict:
    def pillow(image: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG", compress_level=PNG_COMPRESSION)
        return buf.getvalue()

    found = {"ours": encode_png, "pillow": pillow}
    if with_tf:
        try:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            import tensorflow as tf

            def tensorflow(image: np.ndarray) -> bytes:
                return tf.image.encode_png(image, compression=PNG_COMPRESSION).numpy()

            found["tensorflow"] = tensorflow
        except ImportError:
            print("(TensorFlow not installed: not measured)")
    return found


def longest_stall(encode, image: np.ndarray, n: int = 8) -> float:
    """Longest time (ms) the main thread, sleeping 0.5 ms at a time, waited to run again while a
    worker thread encoded ``image`` ``n`` times. An encoder that held the GIL for a whole image
    would stall it for the whole encode; one that releases it, for a few ms at most (the
    interpreter's switch interval, 5 ms, while the worker runs Python code)."""
    done = threading.Event()

    def work():
        for _ in range(n):
            encode(image)
        done.set()

    worker = threading.Thread(target=work)
    longest, last = 0.0, time.perf_counter()
    worker.start()
    while not done.is_set():
        time.sleep(0.0005)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    return longest * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--no-tf", action="store_true", help="do not measure TensorFlow's encoder")
    args = p.parse_args()

    images = load_images()
    encs = encoders(not args.no_tf)
    for name, enc in encs.items():  # correctness first, and warm-up
        for label, image in images:
            with Image.open(io.BytesIO(enc(image))) as im:
                assert np.array_equal(np.asarray(im.convert("RGB")), image), f"{name} changed the pixels of {label}"

    times = {name: [[] for _ in images] for name in encs}
    sizes = {name: sum(len(enc(im)) for _, im in images) for name, enc in encs.items()}
    for _ in range(args.rounds):
        for name, enc in encs.items():
            for i, (_, image) in enumerate(images):
                t = time.perf_counter()
                enc(image)
                times[name][i].append(time.perf_counter() - t)
    per_image = {name: [statistics.median(t) * 1e3 for t in ts] for name, ts in times.items()}

    batch = [im for _, im in images] * 4
    parallel = {}
    for name, enc in encs.items():
        spans = {1: [], 2: []}
        for _ in range(max(2, args.rounds // 3)):
            for threads in (1, 2):
                with ThreadPoolExecutor(threads) as pool:
                    t = time.perf_counter()
                    list(pool.map(enc, batch))
                    spans[threads].append(time.perf_counter() - t)
        parallel[name] = min(spans[1]) / min(spans[2])
    big = max((im for _, im in images), key=lambda a: a.size)
    big_i = next(i for i, (_, im) in enumerate(images) if im is big)
    stall = {name: statistics.median(longest_stall(enc, big) for _ in range(5)) for name, enc in encs.items()}
    idle = statistics.median(longest_stall(lambda im: time.sleep(0.03), big) for _ in range(5))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{len(images)} images, {args.rounds} interleaved rounds, zlib level {PNG_COMPRESSION}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f} (other work on the machine skews the thread columns)"
    )
    print("ms per image (median):")
    width = max(len(label) for label, _ in images)
    print(f"  {'image'.ljust(width)}  {'size':>9}  " + "  ".join(f"{n:>10}" for n in encs))
    for i, (label, image) in enumerate(images):
        size = f"{image.shape[1]}x{image.shape[0]}"
        print(f"  {label.ljust(width)}  {size:>9}  " + "  ".join(f"{per_image[n][i]:10.2f}" for n in encs))
    total = {n: sum(v) for n, v in per_image.items()}
    print()
    print(
        f"  {'encoder':<10} {'ms/set':>8} {'x ours':>7} {'KiB':>7} {'2 threads':>10} {'stall ms':>9} {'of encode':>10}"
    )
    for n in encs:
        print(
            f"  {n:<10} {total[n]:8.1f} {total[n] / total['ours']:7.2f} {sizes[n] / 1024:7.0f} "
            f"{parallel[n]:9.2f}x {stall[n]:9.1f} {per_image[n][big_i]:7.1f} ms"
        )
    print(
        "\nx ours: time per set of images against ours (>1: slower). 2 threads: throughput of two threads "
        "against one.\nstall ms: longest wait of the main thread while a worker encodes the largest image "
        f"(of encode: its encode time;\nwith a sleeping worker: {idle:.1f} ms). A stall much shorter than the encode "
        "means the encoder releases the GIL."
    )


if __name__ == "__main__":
    main()

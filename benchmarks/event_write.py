"""Writing image and scalar summaries: the package's own event-file writer against ``tf.summary``, in one run.

    python benchmarks/event_write.py

Both write the same already-encoded PNGs (the views' composites from ``docs/images``, or
synthetic ones) and scalars, one event at a time, flushed after every write as the callbacks
do: ``ours`` through `keras_vizcallbacks.writers.TensorBoardWriter`; ``tf.summary`` as the
package did before (``tf.summary.write`` of a ``[width, height, png]`` string tensor with the
images plugin's metadata, ``tf.summary.scalar``, then ``flush()``). Rounds are interleaved;
the table gives the median per write and the ratio of ``tf.summary`` to ours. Both files are
read back and compared before timing.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from png_encode import load_images  # noqa: E402

from keras_vizcallbacks import writers  # noqa: E402
from keras_vizcallbacks.writers.png import encode_png  # noqa: E402


def main(rounds: int = 7) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorboard.plugins.image import metadata

    pngs = [(encode_png(im), im.shape[1], im.shape[0]) for _, im in load_images()]
    root = tempfile.mkdtemp(prefix="kv-event-bench-")
    ours = writers.TensorBoardWriter(os.path.join(root, "ours"))
    theirs = tf.summary.create_file_writer(os.path.join(root, "tf"))

    def ours_image(tag, step, data, w, h):
        ours.write_encoded(tag, data, w, h, step, "a description")

    def tf_image(tag, step, data, w, h):
        md = metadata.create_summary_metadata(display_name=tag, description="a description")
        with theirs.as_default():
            tf.summary.write(tag, tf.constant([str(w).encode(), str(h).encode(), data]), step=step, metadata=md)
        theirs.flush()

    def ours_scalar(tag, step):
        ours.write_scalar(tag, step / 10, step, "a number")

    def tf_scalar(tag, step):
        with theirs.as_default():
            tf.summary.scalar(tag, step / 10, step=step, description="a number")
        theirs.flush()

    kinds = {
        "image": {"ours": ours_image, "tf.summary": tf_image},
        "scalar": {"ours": ours_scalar, "tf.summary": tf_scalar},
    }
    times = {(k, w): [] for k in kinds for w in kinds[k]}
    for step in range(rounds):
        for who in ("ours", "tf.summary"):
            for i, (data, w, h) in enumerate(pngs):
                t = time.perf_counter()
                kinds["image"][who](f"view/{i}", step, data, w, h)
                times["image", who].append(time.perf_counter() - t)
                t = time.perf_counter()
                kinds["scalar"][who](f"view/{i}/number", step)
                times["scalar", who].append(time.perf_counter() - t)
    ours.close()
    theirs.close()

    a, b = writers.read_images(os.path.join(root, "ours")), writers.read_images(os.path.join(root, "tf"))
    assert {t: [r.encoded for r in v] for t, v in a.items()} == {t: [r.encoded for r in v] for t, v in b.items()}
    s1, s2 = writers.read_scalars(os.path.join(root, "ours")), writers.read_scalars(os.path.join(root, "tf"))
    assert {t: [r.value for r in v] for t, v in s1.items()} == {t: [r.value for r in v] for t, v in s2.items()}

    kib = sum(len(d) for d, _, _ in pngs) / len(pngs) / 1024
    print(f"{len(pngs)} PNGs (mean {kib:.0f} KiB) and as many scalars per round, {rounds} rounds, flushed every write")
    print(f"  {'write':<7} {'ours ms':>8} {'tf.summary ms':>14} {'tf / ours':>10}")
    for kind in kinds:
        m1 = statistics.median(times[kind, "ours"]) * 1e3
        m2 = statistics.median(times[kind, "tf.summary"]) * 1e3
        print(f"  {kind:<7} {m1:8.3f} {m2:14.3f} {m2 / m1:10.1f}")


if __name__ == "__main__":
    main()

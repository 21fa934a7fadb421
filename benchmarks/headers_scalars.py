"""What the at-a-glance additions cost per epoch: the header line of every picture and the scalars.

    python benchmarks/headers_scalars.py

No model and no TensorFlow: the pieces are timed directly, each with a new epoch number (or value)
every call, so no cache hides the cost, median of ``--reps`` calls:

* a header strip (bold title with the epoch, a subtitle) over an image as wide as the Grad-CAM
  composite of the benchmark's 16 samples (536 px) and as the filter grid (405 px);
* the title and subtitle stamped on a decision-boundary / confusion-matrix figure (480 px);
* one scalar summary written to a run's event file (``SharedWriter.write_scalar``).

The per-epoch total uses the counts of ``benchmarks/overhead.py``'s six views: headers on FilterGrid (2
layers), FeatureMaps (2), GradCAM (1), Saliency (1); stamped titles on DecisionBoundary and
ConfusionMatrix; scalars: ConfusionMatrix 9 (accuracy, recall and precision of 4 classes),
DecisionBoundary 2 (accuracy, agreement). It is printed beside a 10,000-image epoch of the reference
CNN as measured by ``overhead.py`` on the same machine (``--epoch-s``, default 7.0 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_vizcallbacks import render, writers
from keras_vizcallbacks.render.figure import ReusedFigure


def median_ms(fn, reps: int) -> float:
    fn(0)
    times = []
    for i in range(1, reps + 1):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--epoch-s", type=float, default=7.0, help="the epoch the total is compared with (s)")
    args = p.parse_args(argv)

    wide, narrow = np.zeros((200, 536, 3), np.uint8), np.zeros((200, 405, 3), np.uint8)
    header_wide = median_ms(
        lambda i: render.header(wide, f"Grad-CAM · conv2d_1 · epoch {i}", "gradcam · target: predicted class"),
        args.reps,
    )
    header_narrow = median_ms(
        lambda i: render.header(narrow, f"filters · conv2d · epoch {i}", "32 filters by norm · scale ±0.23"),
        args.reps,
    )
    figure = ReusedFigure(480, 480)
    canvas = np.zeros((480, 480, 3), np.uint8)
    stamped = median_ms(
        lambda i: figure.stamp_titles(
            canvas, f"confusion matrix · epoch {i}", f"accuracy {i % 1000 / 10:.1f}% ({i % 1000}/1000)"
        ),
        args.reps,
    )
    with tempfile.TemporaryDirectory() as tmp:
        shared = writers.acquire(tmp, "viz")
        try:
            scalar = median_ms(lambda i: shared.write_scalar("confusion_matrix/accuracy", i / 1e4, i), args.reps)
        finally:
            writers.release(shared)

    total = 3 * header_narrow + 3 * header_wide + 2 * stamped + 11 * scalar
    print(f"header strip, 536 px wide: {header_wide:.2f} ms; 405 px wide: {header_narrow:.2f} ms")
    print(f"title + subtitle stamped on a 480-px figure: {stamped:.2f} ms")
    print(f"one scalar summary written: {scalar:.3f} ms")
    print(
        f"per epoch, the six views of overhead.py (6 headers, 2 stamped titles, 11 scalars): {total:.1f} ms = "
        f"{100 * total / 1e3 / args.epoch_s:.2f}% of a {args.epoch_s:g} s epoch"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

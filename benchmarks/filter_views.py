"""Cost per call of ActivationMaximization and TopActivations at 32 px and at 224 px.

    KERAS_BACKEND=tensorflow python benchmarks/filter_views.py [--sizes 32,224] [--repeats 3]

Each view is built on an untrained model (the cost does not depend on the weights) and called as a
callback calls it at an epoch end: ``compute`` (on the training thread: the model's passes) then
``draw`` (the picture). Reported: the first call (it traces the compiled functions), the median of the
next ``--repeats`` calls, and the steady cost as a ratio to one training step (``train_on_batch``:
forward, backward and update) of the same images:

* ActivationMaximization: 16 filters of the last conv layer, 30 steps. Its batch is the 16 images
  being optimized, so the ratio says how many training steps of a 16-image batch one render costs
  (30 steps of forward + backward on 16 images, plus the first conv layers only: the probe stops at
  the layer).
* TopActivations: 16 filters, top 8, over N fixed images (1000 at 32 px, 200 at 224 px). Its batch
  is the N images, trained in batches of 64: the ratio is against one training epoch over them.

Models: at 32 px the reference CNN (``kv.models.reference_cnn``); at 224 px a small all-conv network
(32-64-64-128 filters, strides 2, then global pooling), as no pretrained weights are available here.
The default ``every_n_epochs=5`` of ActivationMaximization divides its share of the training time by 5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
parser.add_argument("--sizes", default="32,224", help="image sizes to measure (default 32,224)")
parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first (default 3)")
parser.add_argument("--threads", type=int, default=2, help="framework compute threads (default 2; 0: no limit)")
ARGS = parser.parse_args()

from keras_vizcallbacks import _backend  # noqa: E402

if ARGS.threads:
    _backend.limit_threads(ARGS.threads)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_vizcallbacks as kv  # noqa: E402


def model_for(size: int) -> keras.Model:
    if size <= 64:
        return kv.models.reference_cnn(input_shape=(size, size, 3))
    inp = keras.Input((size, size, 3))
    x = inp
    for i, filters in enumerate((32, 64, 64, 128)):
        x = keras.layers.Conv2D(filters, 3, strides=2 if i < 3 else 1, activation="relu", name=f"conv{i}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x), name=f"allconv{size}")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def timed(fn, repeats: int) -> tuple[float, float]:
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, (statistics.median(times) if times else first)


def train_time(model: keras.Model, x: np.ndarray, y: np.ndarray, batch: int, repeats: int) -> float:
    def run() -> None:
        for a in range(0, len(x), batch):
            model.train_on_batch(x[a : a + batch], y[a : a + batch])

    return timed(run, repeats)[1]


def view_call(view: kv.VizCallback, model: keras.Model) -> tuple[float, float, float]:
    """(first call, steady compute, steady draw) in seconds."""
    view.set_model(model)
    view.prepare(model)
    epoch = [0]

    def call() -> None:
        view.draw(view.compute(epoch[0]), epoch[0])
        epoch[0] += 1

    first, _ = timed(call, 0)
    computes, draws = [], []
    for _ in range(ARGS.repeats):
        start = time.perf_counter()
        computed = view.compute(epoch[0])
        mid = time.perf_counter()
        view.draw(computed, epoch[0])
        computes.append(mid - start)
        draws.append(time.perf_counter() - mid)
        epoch[0] += 1
    return first, statistics.median(computes), statistics.median(draws)


def main() -> None:
    print(f"backend {keras.backend.backend()}, threads {ARGS.threads or 'unlimited'}")
    log = tempfile.mkdtemp(prefix="kv_bench_filter_views_")
    rng = np.random.default_rng(0)
    header = f"{'view':24s} {'size':>5s} {'images':>6s} {'first s':>8s} {'compute s':>10s} {'draw s':>7s} {'ratio':>7s}"
    print(header)
    for size in [int(s) for s in ARGS.sizes.split(",")]:
        keras.utils.set_random_seed(0) if keras.backend.backend() == "tensorflow" else _backend.set_random_seed(0)
        model = model_for(size)
        layer = kv.layers.conv_layers(model)[-1][0]
        n = 1000 if size <= 64 else 200
        x = rng.random((n, size, size, 3), dtype=np.float32)
        y = rng.integers(0, 4, n)
        model.train_on_batch(x[:16], y[:16])  # build the train function
        step16 = train_time(model, x[:16], y[:16], 16, ARGS.repeats)
        epoch_n = train_time(model, x, y, 64, 1)
        am = kv.ActivationMaximization(log, layer, filters=16, steps=30)
        first, compute, draw = view_call(am, model)
        ratio = (compute + draw) / step16
        print(
            f"{'ActivationMaximization':24s} {size:5d} {16:6d} {first:8.3f} {compute:10.3f} {draw:7.3f} {ratio:6.1f}x"
        )
        ta = kv.TopActivations(log, x, layer, filters=16, top_k=8, max_points=n)
        first, compute, draw = view_call(ta, model)
        ratio = (compute + draw) / epoch_n
        print(f"{'TopActivations':24s} {size:5d} {n:6d} {first:8.3f} {compute:10.3f} {draw:7.3f} {ratio:6.2f}x")
        print(f"  (one training step of 16 images: {step16 * 1e3:.1f} ms; one epoch over the {n}: {epoch_n:.2f} s)")


if __name__ == "__main__":
    main()

"""1-D signals: a small Conv1D network on synthetic three-axis sensor recordings, and the views on it.

Each recording has three channels (say x, y and z of an accelerometer) of noise, 128 steps, and
one event at a random time, whose kind is the class: a bump on x, a short oscillation burst on y,
or a flat pulse on z. The network has to find the event and tell its kind, so where the evidence
lies is known, and the pictures can be checked by eye:

* ``GradCAM``: per recording its channels as lines, the map as a heat band under them, peaking
  at the event (placed on the steps by receptive field);
* ``Saliency`` (SmoothGrad): the steps the score is most sensitive to;
* ``FeatureMaps``: each channel of a Conv1D layer as a heat row under the recording;
* ``FilterGrid``: each Conv1D kernel as a small heatmap, a row per input channel.

    python examples/signals_1d.py            # 8 epochs, about a minute on 2 cores
    python examples/signals_1d.py --small    # 2 epochs (the test)
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/signals_1d-<timestamp>; --logdir DIR picks one)
"""

from __future__ import annotations

import argparse
import sys

import keras
import numpy as np

import keras_vizcallbacks as kv
from keras_vizcallbacks.demo import new_log_dir

STEPS = 128
CLASS_NAMES = ("bump on x", "burst on y", "pulse on z")


def recordings(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(signals (n, 128, 3) float32, classes (n,), event steps (n,))``: noise on every axis and one
    event at a random step, its kind the class."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.35, (n, STEPS, 3)).astype(np.float32)
    y = rng.integers(0, 3, n)
    at = rng.integers(16, STEPS - 16, n)
    t = np.arange(STEPS)
    for i in range(n):
        d = t - at[i]
        if y[i] == 0:  # a bump on x
            x[i, :, 0] += 2.0 * np.exp(-0.5 * (d / 3.0) ** 2)
        elif y[i] == 1:  # an oscillation burst on y
            x[i, :, 1] += 1.6 * np.sin(2 * np.pi * d / 6.0) * np.exp(-0.5 * (d / 5.0) ** 2)
        else:  # a flat pulse on z
            x[i, :, 2] += 1.5 * (np.abs(d) <= 5)
    return x, y, at


def signal_cnn(n_classes: int = 3) -> keras.Model:
    """Two Conv1D blocks, global max pooling (the event may be anywhere), a softmax classifier."""
    return keras.Sequential(
        [
            keras.Input((STEPS, 3), name="recording"),
            keras.layers.Conv1D(16, 7, activation="relu", name="conv1"),
            keras.layers.MaxPooling1D(2, name="pool1"),
            keras.layers.Conv1D(32, 5, activation="relu", name="conv2"),
            keras.layers.GlobalMaxPooling1D(name="gmp"),
            keras.layers.Dense(n_classes, activation="softmax", name="classes"),
        ],
        name="signal_cnn",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="few recordings and 2 epochs (offline test)")
    parser.add_argument("--epochs", type=int, default=None, help="default 8, 2 with --small")
    parser.add_argument("--logdir", default=None, help="log directory (default: a new logs/signals_1d-<timestamp>)")
    args = parser.parse_args(argv)
    args.logdir = args.logdir or new_log_dir("signals_1d")
    epochs = args.epochs or (2 if args.small else 8)
    n = 256 if args.small else 3000

    keras.utils.set_random_seed(0)
    x, y, _ = recordings(n, seed=0)
    x_val, y_val, _ = recordings(200, seed=1)
    samples = (x_val[:6], y_val[:6])
    model = signal_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    views = [
        kv.GradCAM(args.logdir, samples, class_names=CLASS_NAMES),  # the last conv layer, conv2
        kv.Saliency(args.logdir, samples, method="smoothgrad", class_names=CLASS_NAMES),
        kv.FeatureMaps(args.logdir, samples, class_names=CLASS_NAMES, max_samples=4),
        kv.FilterGrid(args.logdir),
        keras.callbacks.TensorBoard(args.logdir),
    ]
    model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=64, verbose=2, callbacks=views)
    acc = model.evaluate(x_val, y_val, verbose=0)[1]
    print(f"validation accuracy {acc:.3f}; views written to {args.logdir}")
    print(f"tensorboard --logdir {args.logdir} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())

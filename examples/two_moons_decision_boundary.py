"""Two moons: a small dense classifier and its decision boundary in input space, per epoch.

The seed article's last view, on the textbook data set for it: two interleaving half circles in
2-D. The model reads the two coordinates directly, so the decision regions are drawn in the input
plane itself (``DecisionBoundary`` in ``mode="input"``, like scikit-learn's
``DecisionBoundaryDisplay``), with the validation points on top. Over the epochs the boundary bends
from a straight line into the S between the moons.

    python examples/two_moons_decision_boundary.py            # 40 epochs, a few seconds
    python examples/two_moons_decision_boundary.py --small    # 3 epochs (the test)
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/two_moons-<timestamp>; --logdir DIR picks one)
"""

from __future__ import annotations

import argparse
import sys

import keras

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend  # set_random_seed without importing TensorFlow under JAX/PyTorch
from keras_vizcallbacks.demo import new_log_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="few points and 3 epochs (offline test)")
    parser.add_argument("--epochs", type=int, default=None, help="default 40, 3 with --small")
    parser.add_argument("--noise", type=float, default=0.15)
    parser.add_argument("--logdir", default=None, help="log directory (default: a new logs/two_moons-<timestamp>)")
    args = parser.parse_args(argv)
    args.logdir = args.logdir or new_log_dir("two_moons")
    epochs = args.epochs or (3 if args.small else 40)
    n = 200 if args.small else 2000

    _backend.set_random_seed(0)
    x, y = kv.datasets.two_moons(n, noise=args.noise, seed=0)
    x_val, y_val = kv.datasets.two_moons(n // 4, noise=args.noise, seed=1)
    model = keras.Sequential(
        [
            keras.Input((2,), name="xy"),
            keras.layers.Dense(16, activation="relu", name="dense"),
            keras.layers.Dense(16, activation="relu", name="dense_1"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ],
        name="moons_mlp",
    )
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])

    names = ["upper moon", "lower moon"]
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TensorBoard(args.logdir)]
    callbacks.append(
        kv.DecisionBoundary(args.logdir, data=(x_val, y_val), mode="input", class_names=names, evolution=True)
    )
    callbacks.append(kv.ConfusionMatrix(args.logdir, data=(x_val, y_val), class_names=names))
    # No conv layers here, so FilterGrid, FeatureMaps, Grad-CAM and saliency have nothing to show.

    model.fit(x, y, epochs=epochs, batch_size=32, validation_data=(x_val, y_val), callbacks=callbacks, verbose=2)
    print(f"\ntensorboard --logdir {args.logdir} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())

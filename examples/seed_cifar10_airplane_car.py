"""The seed article's experiment: CIFAR-10 airplane vs car with its small CNN, every view in TensorBoard.

"Visualizing What a Convolutional Neural Network Learns" trains
Conv2D(32,3)-MaxPool-Conv2D(64,3)-MaxPool-Flatten-Dense(128)-Dropout(0.5)-Dense(2, softmax)
with Adam (lr 0.001), batch 128, 20 epochs, seeds 7, on CIFAR-10's first two classes, then looks
at the kernels (4.3.1), the feature maps (4.3.2), gradients/Grad-CAM (4.3.3) and decision
boundaries. Here each of those is a callback, so the pictures exist for every epoch, not only the last:

    python examples/seed_cifar10_airplane_car.py            # CIFAR-10 (downloads ~170 MB the first time)
    python examples/seed_cifar10_airplane_car.py --small    # offline: a stand-in from the embedded shapes data
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/seed_cifar10-<timestamp>; --logdir DIR picks one)

Differences from the article, on purpose: integer labels with sparse cross-entropy (the same loss
as one-hot with categorical cross-entropy); the article's ``X_train[:256]`` slice keeps all ten
classes, here only airplanes (label 0) and cars (label 1) are kept; the test images are the
validation data, so the views can show images the model does not train on.
"""

from __future__ import annotations

import argparse
import sys

import keras
import numpy as np

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend  # set_random_seed without importing TensorFlow under JAX/PyTorch
from keras_vizcallbacks.demo import new_log_dir


def load(small: bool, n_train: int | None):
    """(x, y, x_val, y_val, class_names, what) — CIFAR-10 airplane/car, or the offline stand-in."""
    if small:
        # Offline stand-in, NOT CIFAR-10: two classes of the embedded shapes set (circle vs square).
        train, val = kv.datasets.shapes(512, seed=7), kv.datasets.shapes(128, seed=8)
        keep, keep_v = train.labels < 2, val.labels < 2
        names = ["circle (stand-in for airplane)", "square (stand-in for car)"]
        what = "offline stand-in: embedded shapes data, circle vs square (not CIFAR-10)"
        return train.images[keep], train.labels[keep], val.images[keep_v], val.labels[keep_v], names, what
    (x, y), (xv, yv), names = kv.datasets.cifar10_airplane_car(n_train, None)
    return x, y, xv, yv, names, "CIFAR-10, airplane vs car"


def callbacks(log_dir: str, x_val: np.ndarray, y_val: np.ndarray, names: list[str]) -> list[keras.callbacks.Callback]:
    """keras.callbacks.TensorBoard plus every view."""
    # The same 8 validation images in every view: 4 of each class.
    idx = np.concatenate([np.flatnonzero(y_val == c)[:4] for c in (0, 1)])
    samples = (x_val[idx], y_val[idx])
    common = {"evolution": True}  # also one animation (APNG) per tag at the end
    cbs: list[keras.callbacks.Callback] = [
        keras.callbacks.TensorBoard(log_dir),
        # 4.3.1 weight visualization: the article draws kernels with coolwarm.
        kv.FilterGrid(log_dir, cmap="coolwarm", **common),
        # 4.3.2 activation (feature map) visualization.
        kv.FeatureMaps(log_dir, samples=samples, class_names=names, **common),
    ]
    # 4.3.3 gradient visualization, then the decision boundary and the confusion matrix.
    cbs.append(kv.Saliency(log_dir, samples=samples, class_names=names, **common))
    cbs.append(kv.GradCAM(log_dir, samples=samples, class_names=names, **common))
    cbs.append(kv.DecisionBoundary(log_dir, data=(x_val, y_val), class_names=names, **common))
    cbs.append(kv.ConfusionMatrix(log_dir, data=(x_val, y_val), class_names=names, **common))
    return cbs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="offline: embedded shapes stand-in, few epochs")
    parser.add_argument("--epochs", type=int, default=None, help="default: 20 (the article's), 2 with --small")
    parser.add_argument("--n-train", type=int, default=None, help="CIFAR-10 training images to keep (default all)")
    parser.add_argument("--logdir", default=None, help="log directory (default: a new logs/seed_cifar10-<timestamp>)")
    args = parser.parse_args(argv)
    args.logdir = args.logdir or new_log_dir("seed_cifar10")
    epochs = args.epochs or (2 if args.small else 20)

    _backend.set_random_seed(7)  # the article's np.random.seed(7); tf.random.set_seed(7)
    try:
        x, y, x_val, y_val, names, what = load(args.small, args.n_train)
    except RuntimeError as e:  # no internet and no cached copy
        print(f"{e}\nRun offline with --small (a stand-in from the embedded shapes data).", file=sys.stderr)
        return 2
    print(f"Data: {what}; {len(x)} training and {len(x_val)} validation images.")

    model = kv.models.reference_cnn(input_shape=x.shape[1:], n_classes=2, learning_rate=1e-3)
    model.summary()
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=128,
        validation_data=(x_val, y_val),
        callbacks=callbacks(args.logdir, x_val, y_val, names),
        verbose=2,
    )
    print(f"\ntensorboard --logdir {args.logdir} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())

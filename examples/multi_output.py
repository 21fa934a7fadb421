"""Two heads on one CNN: a regression head (the shape's area) and a class head (which shape).

A model with several outputs tells each view which one it explains with ``output=`` (a name or
an index); without it the views that read outputs stop at train begin and list the outputs.
The class head gets the usual views (Grad-CAM for the predicted class, the confusion matrix);
the regression head gets Grad-CAM and saliency of a score function, ``target=lambda y: y[:, 0]``,
the predicted area itself, and the captions show its value beside the true area.

    python examples/multi_output.py            # 2000 images, 8 epochs, a few minutes on 2 cores
    python examples/multi_output.py --small    # 96 images, 2 epochs (the test)
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/multi_output-<timestamp>; --logdir DIR picks one)
"""

from __future__ import annotations

import argparse
import sys

import keras
import numpy as np

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend  # set_random_seed without importing TensorFlow under JAX/PyTorch
from keras_vizcallbacks.demo import new_log_dir


def build_model(size: int, n_classes: int) -> keras.Model:
    """The seed article's CNN with two heads: "area" first (one linear unit), "shape" second (softmax)."""
    image = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv2d")(image)
    x = keras.layers.MaxPooling2D(2, name="max_pooling2d")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2d_1")(x)
    x = keras.layers.MaxPooling2D(2, name="max_pooling2d_1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    area = keras.layers.Dense(1, name="area")(x)
    shape = keras.layers.Dense(n_classes, activation="softmax", name="shape")(x)
    return keras.Model(image, [area, shape], name="shape_and_area")


def predicted_area(y):
    """The score Grad-CAM and saliency differentiate on the "area" head: its only unit (keras.ops)."""
    return y[:, 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="96 images and 2 epochs (offline test)")
    parser.add_argument("--epochs", type=int, default=None, help="default 8, 2 with --small")
    parser.add_argument("--logdir", default=None, help="log directory (default: a new logs/multi_output-<timestamp>)")
    args = parser.parse_args(argv)
    args.logdir = args.logdir or new_log_dir("multi_output")
    epochs = args.epochs or (2 if args.small else 8)
    n = 96 if args.small else 2000

    _backend.set_random_seed(0)
    data = kv.datasets.shapes(n, size=32, seed=0)
    val = kv.datasets.shapes(max(64, n // 4), size=32, seed=1)
    # the regression target: the share of the image the shape covers, in percent
    area, val_area = (d.masks.reshape(len(d.masks), -1).mean(axis=1).astype(np.float32) * 100 for d in (data, val))
    model = build_model(32, len(data.class_names))
    model.compile(
        keras.optimizers.Adam(1e-3),
        loss={"area": "mse", "shape": "sparse_categorical_crossentropy"},
        loss_weights={"area": 0.02, "shape": 1.0},
    )

    names = data.class_names
    samples = (val.images[:6], {"area": val_area[:6], "shape": val.labels[:6]})  # labels by output name
    logdir = args.logdir
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TensorBoard(logdir),
        kv.GradCAM(logdir, samples, output="shape", class_names=names),
        kv.GradCAM(logdir, samples, output="area", target=predicted_area, tag="grad_cam_area"),
        kv.Saliency(logdir, samples, output="area", target=predicted_area, method="smoothgrad", tag="saliency_area"),
        kv.ConfusionMatrix(logdir, (val.images, [val_area, val.labels]), output="shape", class_names=names),
        kv.FeatureMaps(logdir, val.images[:3]),  # reads no output: needs no output=
    ]
    model.fit(
        data.images,
        {"area": area, "shape": data.labels},
        validation_data=(val.images, {"area": val_area, "shape": val.labels}),
        epochs=epochs,
        batch_size=32,
        callbacks=callbacks,
        verbose=2,
    )
    print(f"\ntensorboard --logdir {logdir} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Render the pictures of docs/views/activation_maximization.md and top_activations.md.

    .venv/bin/python docs/images/filter_views_make.py [out_dir]

Trains the reference CNN on the embedded shapes set (3000 images, 5 epochs, seed 0) with
ActivationMaximization and TopActivations on its last conv layer (16 filters, the most active on
400 test images), copies the last epoch's frames into docs/images/ and prints, for the filters shown,
which shape class their top-activating test images belong to (a filter whose top images are mostly
circles is a circle detector). Offline; about a minute on 2 CPU cores with TensorFlow.
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from PIL import Image

import keras_vizcallbacks as kv

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(png_dir: str, tag: str, step: int) -> np.ndarray:
    with Image.open(kv.writers.png.png_path(png_dir, tag, step)) as im:
        return np.asarray(im.convert("RGB"))


def main(out: str) -> None:
    train, test = kv.datasets.shapes(3000, seed=0), kv.datasets.shapes(400, seed=1)
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=4)
    png = os.path.join(out, "png")
    views = [
        kv.ActivationMaximization(out, data=test.images, every_n_epochs=2, png_dir=png, on_error="raise"),
        kv.TopActivations(out, (test.images, test.labels), png_dir=png, on_error="raise"),
    ]
    epochs = 5
    model.fit(train.images, train.labels, epochs=epochs, batch_size=64, verbose=2, callbacks=views)
    acc = model.evaluate(test.images, test.labels, verbose=0)[1]
    print(f"test accuracy {acc:.3f}")
    am, ta = views
    for view, name in [(am, "activation_maximization_shapes.png"), (ta, "top_activations_shapes.png")]:
        tag = f"{view.view}/conv2d_1"
        image = frame(png, tag, epochs - 1)
        Image.fromarray(image).save(os.path.join(HERE, name), optimize=True)
        print("wrote", os.path.join("docs/images", name), image.shape, f"render {np.median(view.timings[1:]):.3f} s")
    result, _ = ta.compute(epochs - 1)
    names = train.class_names
    for f, rows in zip(result.filters, result.indices, strict=True):
        counts = np.bincount(test.labels[rows], minlength=len(names))
        print(
            f"filter {int(f):2d}: top-{len(rows)} test images " + ", ".join(f"{n} {c}" for n, c in zip(names, counts))
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="kv_filter_views_"))

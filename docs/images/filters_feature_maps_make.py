"""Render the pictures of docs/views/filters.md and feature_maps.md from a really trained model.

    .venv/bin/python docs/images/filters_feature_maps_make.py [out_dir]

Trains the reference CNN on the embedded shapes set (3000 images, 8 epochs, batch 64, seed 0)
with FilterGrid (weights, and change since the first render) and FeatureMaps (6 validation
samples, one per class round-robin) attached, copies the last epoch's frames into docs/images/
and, beside each, prints its size and its size in TensorBoard's card (330 px wide). Offline;
about two minutes on 2 CPU cores.
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
from keras_vizcallbacks.demo import fixed_samples

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCHS = 8


def frame(png_dir: str, tag: str, step: int) -> np.ndarray:
    with Image.open(kv.writers.png.png_path(png_dir, tag, step)) as im:
        return np.asarray(im.convert("RGB"))


def save(image: np.ndarray, name: str) -> None:
    Image.fromarray(image).save(os.path.join(HERE, name), optimize=True)
    h, w = image.shape[:2]
    print(f"wrote docs/images/{name}: {w}x{h} px, {330}x{round(h * 330 / w)} in the card")


def main(out: str) -> None:
    train, val = kv.datasets.shapes(3000, seed=0), kv.datasets.shapes(400, seed=1)
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=len(train.class_names))
    samples = fixed_samples(val.images, val.labels, 6)
    png = os.path.join(out, "png")
    views = [
        kv.FilterGrid(out, png_dir=png),
        kv.FilterGrid(out, show="change", tag="filters_change", png_dir=png),
        kv.FeatureMaps(out, samples=samples, class_names=train.class_names, png_dir=png),
    ]
    model.fit(train.images, train.labels, epochs=EPOCHS, batch_size=64, verbose=2, callbacks=views,
              validation_data=(val.images, val.labels))  # fmt: skip
    last = EPOCHS - 1
    save(frame(png, "filters/conv2d", last), "filters_conv2d.png")
    save(frame(png, "filters/conv2d_1", last), "filters_conv2d_1.png")
    save(frame(png, "filters_change/conv2d", last), "filters_conv2d_change.png")
    save(frame(png, "filters_change/conv2d_1", last), "filters_conv2d_1_change.png")
    save(frame(png, "feature_maps/conv2d", last), "feature_maps_conv2d.png")
    save(frame(png, "feature_maps/conv2d_1", last), "feature_maps_conv2d_1.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="kv_docs_"))

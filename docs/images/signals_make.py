"""Render the 1-D pictures of docs/views/*.md from a really trained Conv1D model.

    .venv/bin/python docs/images/signals_make.py [out_dir]

Trains `examples/signals_1d.py`'s network on its synthetic three-axis recordings (3000, 8 epochs,
seed 0) with GradCAM, Saliency (SmoothGrad), FeatureMaps and FilterGrid attached, copies the last
epoch's frames into docs/images/, and prints the pointing game on 200 validation recordings (is
the Grad-CAM maximum within a few steps of the event?). Offline; about a minute on 2 CPU cores.
"""

from __future__ import annotations

import os
import runpy
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from PIL import Image

import keras_vizcallbacks as kv

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = runpy.run_path(os.path.join(HERE, "..", "..", "examples", "signals_1d.py"))


def frame(png_dir: str, tag: str, step: int) -> np.ndarray:
    with Image.open(kv.writers.png.png_path(png_dir, tag, step)) as im:
        return np.asarray(im.convert("RGB"))


def save(image: np.ndarray, name: str) -> None:
    Image.fromarray(image).save(os.path.join(HERE, name), optimize=True)
    print("wrote", os.path.join("docs/images", name), image.shape)


def main(out: str) -> None:
    epochs = 8
    keras.utils.set_random_seed(0)
    x, y, _ = EXAMPLE["recordings"](3000, seed=0)
    xv, yv, at = EXAMPLE["recordings"](200, seed=1)
    names = EXAMPLE["CLASS_NAMES"]
    model = EXAMPLE["signal_cnn"]()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    png = os.path.join(out, "png")
    common = {"class_names": names, "png_dir": png}
    samples = (xv[:6], yv[:6])
    views = [
        kv.GradCAM(out, samples, **common),
        kv.Saliency(out, samples, method="smoothgrad", **common),
        kv.FeatureMaps(out, samples, max_samples=4, **common),
        kv.FilterGrid(out, png_dir=png),
    ]
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=2, callbacks=views)
    acc = model.evaluate(xv, yv, verbose=0)[1]
    print(f"signal CNN validation accuracy {acc:.3f}")
    last = epochs - 1
    save(frame(png, "grad_cam/conv2", last), "grad_cam_signals.png")
    save(frame(png, "saliency/smoothgrad", last), "saliency_signals.png")
    save(frame(png, "feature_maps/conv1", last), "feature_maps_signals.png")
    save(frame(png, "filters/conv1", last), "filters_signals.png")
    save(frame(png, "filters/conv2", last), "filters_signals_conv2.png")
    maps = kv.explain.grad_cam(model, xv, class_index=yv)
    err = np.abs(np.argmax(maps, axis=1) - at)
    for tol in (3, 6, 10):
        print(f"Grad-CAM maximum within {tol} steps of the event: {np.mean(err <= tol):.1%} of {len(xv)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="signals_make_"))

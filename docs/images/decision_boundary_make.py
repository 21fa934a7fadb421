"""Render the pictures of docs/views/decision_boundary.md and confusion_matrix.md from really trained models.

    .venv/bin/python docs/images/decision_boundary_make.py [out_dir]

Trains a small MLP on two moons (12 epochs) and the reference CNN on the embedded
shapes set (3000 images, 5 epochs) with DecisionBoundary (input, embedding, plane)
and ConfusionMatrix attached, and copies chosen frames into docs/images/. The
per-epoch frames and Markdown descriptions stay under ``<out_dir>/png``. Prints the
callbacks' time per epoch and the agreement numbers. Takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from PIL import Image

import keras_vizcallbacks as kv

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(png_dir: str, tag: str, step: int) -> np.ndarray:
    with Image.open(kv.writers.png.png_path(png_dir, tag, step)) as im:
        return np.asarray(im.convert("RGB"))


def save(image: np.ndarray, name: str) -> None:
    Image.fromarray(image).save(os.path.join(HERE, name), optimize=True)
    print("wrote", os.path.join("docs/images", name), image.shape)


def side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    gap = np.full((a.shape[0], 16, 3), 255, np.uint8)
    return np.concatenate([a, gap, b], axis=1)


def report(cb: kv.VizCallback, label: str) -> None:
    t = np.asarray(cb.timings)
    print(f"{label}: {len(t)} renders, median {np.median(t):.3f} s, first {t[0]:.3f} s, max {t.max():.3f} s")


def moons(out: str) -> None:
    x, y = kv.datasets.two_moons(600, noise=0.15, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ],
        name="moons_mlp",
    )
    model.compile(keras.optimizers.Adam(0.005), "sparse_categorical_crossentropy", metrics=["accuracy"])
    png = os.path.join(out, "png")
    db = kv.DecisionBoundary(out, (x, y), class_names=["upper moon", "lower moon"], png_dir=png, on_error="raise")
    model.fit(x, y, epochs=12, batch_size=32, verbose=0, callbacks=[db])
    report(db, "moons input mode")
    save(frame(png, "decision_boundary/input", 11), "decision_boundary_moons.png")
    save(
        side_by_side(frame(png, "decision_boundary/input", 0), frame(png, "decision_boundary/input", 11)),
        "decision_boundary_moons_epochs.png",
    )


def shapes(out: str) -> None:
    train = kv.datasets.shapes(3000, seed=0)
    test = kv.datasets.shapes(400, seed=1)
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=4)
    png = os.path.join(out, "png")
    names = train.class_names
    data = (test.images, test.labels)
    emb = kv.DecisionBoundary(out, data, mode="embedding", class_names=names, png_dir=png, on_error="raise")
    plane = kv.DecisionBoundary(out, data, mode="plane", class_names=names, png_dir=png, on_error="raise")
    cm = kv.ConfusionMatrix(out, data, class_names=names, png_dir=png, on_error="raise")
    start = time.perf_counter()
    model.fit(
        train.images,
        train.labels,
        epochs=5,
        batch_size=64,
        verbose=0,
        validation_data=data,
        callbacks=[emb, plane, cm],
    )
    print(f"fit with the three callbacks: {time.perf_counter() - start:.1f} s")
    for cb, label in ((emb, "shapes embedding"), (plane, "shapes plane"), (cm, "shapes confusion")):
        report(cb, label)
    r = emb.last
    print(
        f"embedding agreement at the last epoch: {r.agreement}/{len(r.predictions)}; "
        f"explained variance {r.explained_variance_ratio}; accuracy {r.accuracy:.3f}"
    )
    print("plane anchors", plane.last.anchor_index, "predicted", plane.last.predictions, plane.last.point_confidence)
    save(frame(png, "decision_boundary/embedding", 4), "decision_boundary_embedding_shapes.png")
    save(
        side_by_side(frame(png, "decision_boundary/embedding", 0), frame(png, "decision_boundary/embedding", 4)),
        "decision_boundary_embedding_epochs.png",
    )
    save(frame(png, "decision_boundary/plane", 4), "decision_boundary_plane_shapes.png")
    save(frame(png, "confusion_matrix", 4), "confusion_matrix_shapes.png")
    save(
        side_by_side(frame(png, "confusion_matrix", 0), frame(png, "confusion_matrix", 4)),
        "confusion_matrix_shapes_epochs.png",
    )


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="kv_boundary_")
    shutil.rmtree(out, ignore_errors=True)
    moons(os.path.join(out, "moons"))
    shapes(os.path.join(out, "shapes"))
    print("logs and per-epoch frames under", out)


if __name__ == "__main__":
    main()

"""Train `backend_cases.shapes_cnn` once and write ``tests/data/shapes_cnn.weights.h5``.

    KERAS_BACKEND=tensorflow python tests/backends/make_shapes_weights.py

The backend tests load this file on TensorFlow, JAX and PyTorch ("same weights, same
maps") instead of training the model three times. Seeded; prints the test accuracy.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
from backend_cases import SHAPES_WEIGHTS, shapes_cnn

from keras_vizcallbacks import _backend, datasets

EPOCHS = 8


def main() -> None:
    _backend.set_random_seed(0)
    train, test = datasets.shapes(3000, seed=0), datasets.shapes(400, seed=1)
    model = shapes_cnn()
    # the zeros initializers of the test model would not train: fresh weights from a seeded twin
    model.set_weights(keras.models.clone_model(model, clone_function=_glorot).get_weights())
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train.images, train.labels, epochs=EPOCHS, batch_size=64, verbose=2)
    _, acc = model.evaluate(test.images, test.labels, verbose=0)
    os.makedirs(os.path.dirname(SHAPES_WEIGHTS), exist_ok=True)
    model.save_weights(SHAPES_WEIGHTS)
    print(f"test accuracy {acc:.3f} on {keras.backend.backend()}; wrote {SHAPES_WEIGHTS}")


def _glorot(layer: keras.layers.Layer) -> keras.layers.Layer:
    config = layer.get_config()
    if "kernel_initializer" in config:
        config["kernel_initializer"] = "glorot_uniform"
        config["bias_initializer"] = "zeros"
    return layer.__class__.from_config(config)


if __name__ == "__main__":
    main()

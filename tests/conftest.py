"""Shared fixtures: the shapes data, a trained reference CNN, small models of each kind."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # tests/util.py for tests in subfolders
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest

import keras_vizcallbacks as kv


@pytest.fixture(scope="session")
def shapes_train() -> kv.datasets.Shapes:
    return kv.datasets.shapes(3000, seed=0)


@pytest.fixture(scope="session")
def shapes_test() -> kv.datasets.Shapes:
    return kv.datasets.shapes(400, seed=1)


@pytest.fixture(scope="session")
def trained_cnn(shapes_train, shapes_test) -> keras.Model:
    """The seed article's CNN trained on the shapes set (seeded). Do not mutate it: clone first."""
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=4)
    model.fit(shapes_train.images, shapes_train.labels, epochs=5, batch_size=64, verbose=0)
    acc = model.evaluate(shapes_test.images, shapes_test.labels, verbose=0)[1]
    assert acc > 0.9, f"reference CNN reached only {acc:.3f} on the shapes test set"
    return model


@pytest.fixture
def log_dir(tmp_path) -> str:
    return str(tmp_path / "logs")


def small_sequential(input_shape=(16, 16, 3), n_classes=3) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(n_classes, activation="softmax", name="out"),
        ],
        name="small_seq",
    )


def small_functional(input_shape=(16, 16, 3), n_classes=3) -> keras.Model:
    inp = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="out")(x)
    return keras.Model(inp, out, name="small_func")


def small_nested(input_shape=(16, 16, 3), n_classes=3) -> keras.Model:
    """A functional base model used as a layer inside a Sequential model."""
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="base_c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="base_p1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="base_c2")(x)
    base = keras.Model(inp, x, name="base")
    return keras.Sequential(
        [
            keras.Input(input_shape),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(n_classes, activation="softmax", name="out"),
        ],
        name="small_nested",
    )


MODEL_FACTORIES = {"sequential": small_sequential, "functional": small_functional, "nested": small_nested}


def compiled(model: keras.Model) -> keras.Model:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def random_data(n=24, input_shape=(16, 16, 3), n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *input_shape), dtype=np.float32), rng.integers(0, n_classes, n)

"""Shared fixtures: the shapes data, a trained reference CNN, small models of each kind."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
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

"""Shared fixtures: the shapes data, a trained reference CNN, small models of each kind."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def _exclusive(path):
    """An exclusive lock on the file ``path`` (blocking) where ``fcntl`` exists; else no lock."""
    try:
        import fcntl
    except ImportError:  # not POSIX: each worker does the work itself
        yield False
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def trained_cnn(shapes_train, shapes_test, tmp_path_factory) -> keras.Model:
    """The seed article's CNN trained on the shapes set (seeded). Do not mutate it: clone first.

    Trained once per test run: under pytest-xdist the first worker to ask trains it and saves the
    weights in the run's shared temporary directory; the others wait for the lock and load them.
    """
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=4)

    def train() -> None:
        model.fit(shapes_train.images, shapes_train.labels, epochs=5, batch_size=64, verbose=0)

    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent  # the run's directory above every worker's own
        weights = shared / "trained_cnn.weights.h5"
        with _exclusive(shared / "trained_cnn.lock") as locked:
            if locked and weights.exists():
                model.load_weights(str(weights))
            else:
                train()
                if locked:  # written whole, then renamed: a worker that dies mid-write leaves no half file
                    partial = shared / f"trained_cnn.{os.getpid()}.weights.h5"
                    model.save_weights(str(partial))
                    os.replace(partial, weights)
    else:
        train()
    acc = model.evaluate(shapes_test.images, shapes_test.labels, verbose=0)[1]
    assert acc > 0.9, f"reference CNN reached only {acc:.3f} on the shapes test set"
    return model


@pytest.fixture
def log_dir(tmp_path) -> str:
    return str(tmp_path / "logs")

"""Same weights, same maps: the shapes model trained once (tests/data, on TensorFlow) gives the
same Grad-CAM, saliency, feature maps and confusion counts on every backend within float
tolerance, and decision-region arrays that differ in at most 1% of the pixels.

Each backend's run compares itself with the next backend of the cycle TensorFlow -> JAX ->
PyTorch -> TensorFlow, computed in a subprocess from weights this process saved: over the three
runs every pair of backends is compared once, and every backend's saved weights are loaded by
another one. Plus the pointing game and Integrated Gradients' completeness on that model.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import shapes_maps
from backend_cases import SHAPES_WEIGHTS, trained_shapes_cnn
from native_autodiff import BACKEND, native_grad, numpy_of

import keras_vizcallbacks as kv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NEXT = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[BACKEND]


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return trained_shapes_cnn()


@pytest.fixture(scope="module")
def ours(model) -> dict[str, np.ndarray]:
    return shapes_maps.compute(model)


def _installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


@pytest.mark.skipif(not _installed(NEXT), reason=f"{NEXT} is not installed")
def test_same_weights_give_the_same_maps_on_the_next_backend(model, ours, tmp_path):
    saved = str(tmp_path / f"saved_by_{BACKEND}.weights.h5")
    model.save_weights(saved)  # saved by this backend, loaded by the next one
    path = str(tmp_path / f"{NEXT}.npz")
    env = {**os.environ, "KERAS_BACKEND": NEXT, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "backends", "shapes_maps.py"), saved, path],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = dict(np.load(path))
    assert sorted(theirs) == sorted(ours)
    for key, a in ours.items():
        b = theirs[key]
        assert a.shape == b.shape, f"{key}: {a.shape} on {BACKEND}, {b.shape} on {NEXT}"
        if key.startswith("regions/") and not key.endswith("/probabilities"):
            differ = float(np.mean(a != b))
            assert differ <= 0.01, f"{key}: {differ:.2%} of the region pixels differ between {BACKEND} and {NEXT}"
        elif key == "confusion":
            np.testing.assert_array_equal(a, b, err_msg=f"confusion counts differ between {BACKEND} and {NEXT}")
        else:
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            scale = max(float(np.abs(a64).max()), 1e-12)
            assert np.abs(a64).max() > 0, f"{key} is all zeros: the comparison would mean nothing"
            err = float(np.abs(a64 - b64).max()) / scale
            tol = 0.02 if key.startswith("regions/") else 1e-3  # probabilities at grid points that moved
            assert err <= tol, f"{key}: max difference {err:.2e} of the largest value ({BACKEND} vs {NEXT})"


def test_the_shipped_weights_are_the_trained_model(model):
    d = kv.datasets.shapes(400, seed=1)
    assert os.path.getsize(SHAPES_WEIGHTS) < 300_000
    acc = float(np.mean(np.argmax(numpy_of(model(d.images)), axis=1) == d.labels))
    assert acc > 0.95, f"the shapes model reaches {acc:.3f} on {BACKEND}"


def test_pointing_game_on_the_trained_shapes_model(model):
    """The Grad-CAM maximum (placed by receptive-field geometry) falls in the shape, known from
    the data set's masks, for >= 75% of correctly classified images (1-pixel tolerance; 83% measured)."""
    d = kv.datasets.shapes(400, seed=1)
    r = kv.explain.GradCAMExplainer(model).explain(d.images)
    correct = r.classes == d.labels
    assert correct.mean() > 0.95
    n = len(d.images)
    grown = d.masks.copy()  # dilated by one pixel (8-neighbourhood)
    padded = np.pad(d.masks, ((0, 0), (1, 1), (1, 1)))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= padded[:, 1 + dy : 33 + dy, 1 + dx : 33 + dx]
    rows, cols = np.unravel_index(r.maps.reshape(n, -1).argmax(axis=1), (32, 32))
    rate = grown[np.arange(n), rows, cols][correct].mean()
    print(f"pointing game on {BACKEND}: {rate:.3f} (1-pixel tolerance)")
    assert rate >= 0.75


def _logits(model, x):
    """The target logits written by hand from the model's layers (pre-softmax), any backend's tensors."""
    h = x
    for name in ("conv1", "pool1", "conv2", "pool2", "flatten"):
        h = model.get_layer(name)(h)
    out = model.get_layer("out")
    return keras.ops.matmul(h, out.kernel) + out.bias


def test_integrated_gradients_completeness_and_vanilla_against_native_autodiff(model):
    """sum(IG attributions) == F(x) - F(baseline) for the target logit within 1% (128 steps),
    F computed by hand; the vanilla map equals the backend's own gradient of that logit."""
    d = kv.datasets.shapes(8, seed=4)
    x = d.images[:4]
    logits = numpy_of(_logits(model, keras.ops.convert_to_tensor(x))).astype(np.float64)
    base = numpy_of(_logits(model, keras.ops.convert_to_tensor(np.zeros_like(x)))).astype(np.float64)
    cls = logits.argmax(axis=1)
    rows = np.arange(len(x))
    gap = logits[rows, cls] - base[rows, cls]
    attr = kv.explain.saliency(model, x, method="integrated_gradients", steps=128, reduce=None)
    err = np.abs(attr.reshape(len(x), -1).sum(axis=1) - gap) / np.maximum(np.abs(gap), 1.0)
    assert err.max() < 0.01, f"IG completeness error {err.max():.4f} on {BACKEND}"

    onehot = keras.ops.convert_to_tensor(np.eye(4, dtype=np.float32)[cls])
    ref = native_grad(lambda v: keras.ops.sum(_logits(model, v) * onehot, axis=-1), x)
    vanilla = kv.explain.saliency(model, x, reduce=None)
    np.testing.assert_allclose(vanilla, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())

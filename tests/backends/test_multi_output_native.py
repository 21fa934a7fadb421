"""Multi-output models and callable targets on this process's backend (TensorFlow, JAX or PyTorch):
the score function runs inside the differentiated function built by ``_backend``; the references
use the backend's own autodiff (`native_grad`) on the model's layers called by hand."""

from __future__ import annotations

import keras
import numpy as np
from backend_cases import Z, randomize
from native_autodiff import native_grad, numpy_of

from keras_vizcallbacks.explain import GradCAMExplainer, SaliencyExplainer


def two_heads():
    """A regression head first (one linear unit), a softmax class head second."""
    inp = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(4, 3, activation="relu", name="c1", **Z)(inp)
    a = keras.layers.Conv2D(5, 3, activation="relu", name="c2", **Z)(a)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(a)
    size = keras.layers.Dense(1, name="size", **Z)(g)
    cls = keras.layers.Dense(3, activation="softmax", name="class", **Z)(g)
    model = keras.Model(inp, [size, cls], name="two_heads")
    randomize(model, seed=5)
    return model


def data():
    return np.random.default_rng(0).uniform(0, 1, (3, 12, 12, 3)).astype(np.float32)


def test_callable_target_saliency_on_the_regression_head():
    model, x = two_heads(), data()
    r = SaliencyExplainer(model, "vanilla", output="size").explain(x, lambda y: y[:, 0], reduce=None)
    c1, c2, gap, head = (model.get_layer(n) for n in ("c1", "c2", "gap", "size"))
    expected = native_grad(lambda w: head(gap(c2(c1(w))))[:, 0], x)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(r.attributions, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.scores, numpy_of(head(gap(c2(c1(x)))))[:, 0], rtol=1e-5, atol=1e-6)


def test_callable_target_gradcam_on_the_regression_head():
    model, x = two_heads(), data()
    r = GradCAMExplainer(model, "c2", output=0).explain(x, lambda y: y[:, 0], upsample=False, normalize=False)
    c1, c2, gap, head = (model.get_layer(n) for n in ("c1", "c2", "gap", "size"))
    a = numpy_of(c2(c1(x))).astype(np.float64)
    g = native_grad(lambda w: head(gap(w))[:, 0], a.astype(np.float32)).astype(np.float64)
    expected = np.maximum((a * g.mean(axis=(1, 2), keepdims=True)).sum(axis=-1), 0.0)
    np.testing.assert_allclose(r.raw, expected, rtol=1e-4, atol=1e-6)


def test_class_target_on_the_second_output():
    """output="class": the class logit (pre-softmax) of the second head, not the first head's unit."""
    model, x = two_heads(), data()
    r = SaliencyExplainer(model, "vanilla", output="class").explain(x, 2, reduce=None)
    c1, c2, gap, head = (model.get_layer(n) for n in ("c1", "c2", "gap", "class"))

    def logit(w):
        return keras.ops.matmul(gap(c2(c1(w))), head.kernel)[:, 2] + head.bias[2]

    np.testing.assert_allclose(r.attributions, native_grad(logit, x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.probabilities, numpy_of(model(x)[1]), rtol=1e-5, atol=1e-6)

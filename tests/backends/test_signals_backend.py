"""1-D signals and integer inputs on this process's backend: saliency of a uint8 model equals the
same model's with a float input (every method), a Conv1D model's input gradient equals the backend's
own autodiff, and Grad-CAM on it returns maps on the sequence. See native_autodiff.py for how to run
each backend."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from native_autodiff import native_grad

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend


def rescaled(dtype: str) -> keras.Model:
    inp = keras.Input((10, 10, 3), dtype=dtype)
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(6, 3, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))


@pytest.mark.parametrize(
    "method,options",
    [("vanilla", {}), ("smoothgrad", {"n_samples": 6}), ("integrated_gradients", {"steps": 12})],
)
def test_uint8_input_maps_equal_the_float_model(method, options):
    _backend.set_random_seed(0)  # keras.utils.set_random_seed would load TensorFlow into this process
    m8, m32 = rescaled("uint8"), rescaled("float32")
    m32.set_weights(m8.get_weights())
    x = np.random.default_rng(0).integers(0, 256, (3, 10, 10, 3)).astype(np.uint8)
    ours = kv.explain.saliency(m8, x, method=method, reduce=None, **options)
    ref = kv.explain.saliency(m32, x.astype(np.float32), method=method, reduce=None, **options)
    assert np.abs(ours).max() > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-8)


def test_conv1d_saliency_and_grad_cam():
    _backend.set_random_seed(0)  # keras.utils.set_random_seed would load TensorFlow into this process
    inp = keras.Input((32, 2))
    h = keras.layers.Conv1D(4, 3, activation="relu", name="c")(inp)
    h = keras.layers.GlobalAveragePooling1D()(h)
    logits = keras.layers.Dense(3, name="logits")
    model = keras.Model(inp, keras.layers.Activation("softmax")(logits(h)))
    x = np.random.default_rng(1).normal(size=(4, 32, 2)).astype(np.float32)
    head = keras.Model(inp, logits.output)
    ref = native_grad(lambda v: head(v)[:, 1], x)
    ours = kv.explain.saliency(model, x, class_index=1, reduce=None)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)
    maps = kv.explain.grad_cam(model, x, class_index=1)
    assert maps.shape == (4, 32) and np.all((maps >= 0) & (maps <= 1))

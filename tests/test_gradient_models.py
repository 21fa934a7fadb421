"""Grad-CAM and saliency on every kind of Keras model the issue names, each against a
reference written by hand from the model's own layers (no probe, no replay)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from util import small_functional, small_nested, small_sequential

import keras_vizcallbacks as kv

RNG = np.random.default_rng(0)
X = RNG.random((3, 16, 16, 3), dtype=np.float32)
META = RNG.random((3, 4), dtype=np.float32)


def trunk(names):
    c1, p1, c2 = names

    def run(x):
        return c2(p1(c1(x)))

    return run


def build(kind):
    """(model, inputs, forward) where forward(inputs) -> (layer activations, logits) by hand."""
    keras.utils.set_random_seed(1)
    if kind in ("sequential", "functional"):
        model = (small_sequential if kind == "sequential" else small_functional)()
        body = trunk([model.get_layer(n) for n in ("c1", "p1", "c2")])
        gap, out = model.get_layer("gap"), model.get_layer("out")
        return model, X, lambda x: (a := body(x), tf.matmul(gap(a), out.kernel) + out.bias)
    if kind == "nested":
        model = small_nested()
        base, gap, out = model.get_layer("base"), model.get_layer("gap"), model.get_layer("out")
        return model, X, lambda x: (a := base(x), tf.matmul(gap(a), out.kernel) + out.bias)
    if kind == "multi_input":  # the image is the second input, found as the first 4-D one
        meta = keras.Input((4,), name="meta")
        img = keras.Input((16, 16, 3), name="image")
        c1 = keras.layers.Conv2D(4, 3, activation="relu", name="c1")
        c2 = keras.layers.Conv2D(5, 3, activation="relu", name="c2")
        gap = keras.layers.GlobalAveragePooling2D(name="gap")
        m_dense = keras.layers.Dense(3, name="m")
        cat = keras.layers.Concatenate(name="cat")
        out = keras.layers.Dense(3, activation="softmax", name="out")
        y = out(cat([gap(c2(c1(img))), m_dense(meta)]))
        model = keras.Model([meta, img], y)

        def forward(xs):
            a = c2(c1(xs[1]))
            h = tf.concat([gap(a), m_dense(xs[0])], axis=-1)
            return a, tf.matmul(h, out.kernel) + out.bias

        return model, [META, X], forward
    if kind == "binary_sigmoid":
        inp = keras.Input((16, 16, 3))
        c1 = keras.layers.Conv2D(4, 3, activation="relu", name="c1")
        gap = keras.layers.GlobalAveragePooling2D()
        out = keras.layers.Dense(1, activation="sigmoid", name="out")
        model = keras.Model(inp, out(gap(c1(inp))))
        return model, X, lambda x: (a := c1(x), tf.matmul(gap(a), out.kernel) + out.bias)
    if kind == "separate_softmax":
        model = keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                keras.layers.Conv2D(4, 3, name="c1"),
                keras.layers.Activation("relu", name="relu1"),
                keras.layers.GlobalAveragePooling2D(name="gap"),
                keras.layers.Dense(3, name="out"),
                keras.layers.Activation("softmax", name="prob"),
            ]
        )
        c1, relu1, gap, out = (model.get_layer(n) for n in ("c1", "relu1", "gap", "out"))
        return model, X, lambda x: (a := relu1(c1(x)), out(gap(a)))
    raise AssertionError(kind)


def reference(forward, inputs, classes, binary=False):
    """Per image: Grad-CAM at the tapped layer and the input gradient of the target logit."""
    cams, grads = [], []
    for i in range(len(X)):
        xi = [tf.constant(v[i : i + 1]) for v in inputs] if isinstance(inputs, list) else tf.constant(inputs[i : i + 1])
        image = xi[-1] if isinstance(xi, list) else xi
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(image)
            a, z = forward(xi)
            s = (z[0, 0] if classes[i] == 1 else -z[0, 0]) if binary else z[0, int(classes[i])]
        g = tape.gradient(s, a).numpy()[0]
        cams.append(np.maximum((a.numpy()[0] * g.mean(axis=(0, 1))).sum(-1), 0.0))
        grads.append(tape.gradient(s, image).numpy()[0])
    return np.stack(cams), np.stack(grads)


KINDS = ["sequential", "functional", "nested", "multi_input", "binary_sigmoid", "separate_softmax"]


@pytest.mark.parametrize("kind", KINDS)
def test_gradcam_and_saliency_match_the_hand_written_reference(kind):
    model, inputs, forward = build(kind)
    probs = model.predict(inputs, verbose=0)
    binary = kind == "binary_sigmoid"
    predicted = (probs[:, 0] > 0.5).astype(int) if binary else np.argmax(probs, axis=1)
    classes_list = [predicted, 1 - predicted] if binary else [predicted, (predicted + 1) % 3]
    for i, classes in enumerate(classes_list):
        class_index = None if i == 0 else classes
        ref_cam, ref_grad = reference(forward, inputs, classes, binary)
        cam = kv.explain.grad_cam(model, inputs, class_index=class_index, upsample=False, normalize=False)
        np.testing.assert_allclose(cam, ref_cam, atol=1e-5, rtol=1e-4, err_msg=kind)
        sal = kv.explain.saliency(model, inputs, class_index=class_index, reduce=None)
        np.testing.assert_allclose(sal, ref_grad, atol=1e-6, rtol=1e-4, err_msg=kind)
        up = kv.explain.grad_cam(model, inputs, class_index=class_index)
        assert up.shape == (3, 16, 16) and np.isfinite(up).all() and up.min() >= 0 and up.max() <= 1
    if binary:  # class 0 scores the negative logit: the two maps never overlap
        cam1 = kv.explain.grad_cam(model, inputs, class_index=1, upsample=False, normalize=False)
        cam0 = kv.explain.grad_cam(model, inputs, class_index=0, upsample=False, normalize=False)
        assert np.all(cam0 * cam1 == 0) and (cam0 + cam1).max() > 0
        with pytest.raises(ValueError, match="2 classes"):
            kv.explain.grad_cam(model, inputs, class_index=2)


def test_multi_input_by_name_and_dict_inputs():
    model, inputs, _ = build("multi_input")
    a = kv.explain.grad_cam(model, inputs, image_input="image")
    b = kv.explain.grad_cam(model, {"meta": META, "image": X})
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="No model input named"):
        kv.explain.grad_cam(model, inputs, image_input="photo")


def test_mixed_float16_gives_finite_float32_maps_close_to_float32():
    twin = small_functional()
    keras.utils.set_random_seed(2)
    x = RNG.random((3, 16, 16, 3), dtype=np.float32)
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        mixed = small_functional()
        mixed.set_weights(twin.get_weights())
        assert mixed.get_layer("c2").compute_dtype == "float16"
        for method in ("gradcam", "gradcam++", "layercam"):
            got = kv.explain.grad_cam(mixed, x, class_index=1, method=method)
            assert got.dtype == np.float32 and np.isfinite(got).all()
            want = kv.explain.grad_cam(twin, x, class_index=1, method=method)
            np.testing.assert_allclose(got, want, atol=0.03, err_msg=method)
        for method in ("vanilla", "smoothgrad", "integrated_gradients"):
            got = kv.explain.saliency(mixed, x, class_index=1, method=method, reduce="sum")
            want = kv.explain.saliency(twin, x, class_index=1, method=method, reduce="sum")
            assert got.dtype == np.float32 and np.isfinite(got).all()
            scale = np.abs(want).max()
            np.testing.assert_allclose(got / scale, want / scale, atol=0.03, err_msg=method)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.config.dtype_policy().name == previous.name


def test_subclassed_models_get_a_clear_error_for_gradcam():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(3, 3)
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(self.pool(self.conv(x)))

    net = Net()
    net(X)
    with pytest.raises(ValueError, match="Saliency works on any model"):
        kv.explain.grad_cam(net, X)

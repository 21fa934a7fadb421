"""Small models of each kind with hand-written halves, and references by the backend's own autodiff.

Each case is ``(model, inputs list, image index, layer path, body(xs) -> A, head(A, xs) -> logits)``:
body and head are written from the model's own layers, pre-softmax, without anything of
``keras_vizcallbacks``, so `reference` gives ``A``, the logits and the gradients of a target
logit with respect to the image and to ``A`` independently of the code under test.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from native_autodiff import native_grad, numpy_of

RNG = np.random.default_rng(0)
X = RNG.random((4, 12, 12, 3), dtype=np.float32)
META = RNG.standard_normal((4, 5)).astype(np.float32)
TARGET = np.array([0, 1, 2, 1], dtype=np.int32)


# Weights are set by `randomize`; zeros initializers keep model construction cheap on JAX,
# which compiles every distinct eager op (a random initializer is several) on first use.
Z = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}


def randomize(model: keras.Model, seed: int = 1) -> None:
    """Deterministic weights with non-zero biases, set without any framework's RNG."""
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(np.float32) for w in model.get_weights()])


def picked(logits, target):
    """The target class's logit per example (a backend tensor)."""
    onehot = keras.ops.one_hot(keras.ops.convert_to_tensor(target), logits.shape[-1], dtype=logits.dtype)
    return keras.ops.sum(logits * onehot, axis=-1)


def pre_softmax(dense, h):
    return keras.ops.matmul(h, keras.ops.cast(dense.kernel, h.dtype)) + keras.ops.cast(dense.bias, h.dtype)


# --------------------------------------------------------------------------- models with hand-written halves
# Each case: (model, inputs list, image index, layer path, body(xs) -> A, head(A, xs) -> logits),
# body and head written from the model's own layers, pre-softmax, without split_at.


def case_sequential():
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1", **Z),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(6, 3, activation="relu", name="c2", **Z),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="out", **Z),
        ]
    )
    randomize(model)
    c1, p1, c2, gap, out = (model.get_layer(n) for n in ("c1", "p1", "c2", "gap", "out"))
    return model, [X], 0, "c1", lambda xs: c1(xs[0]), lambda a, xs: pre_softmax(out, gap(c2(p1(a))))


def case_residual():
    """The split layer's output is added to a connection that bypasses it."""
    inp = keras.Input((12, 12, 3))
    c0 = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c0", **Z)
    c1 = keras.layers.Conv2D(4, 3, padding="same", name="c1", **Z)
    add, relu = keras.layers.Add(name="add"), keras.layers.ReLU(name="relu")
    gap = keras.layers.GlobalAveragePooling2D(name="gap")
    out = keras.layers.Dense(3, activation="softmax", name="out", **Z)
    h0 = c0(inp)
    model = keras.Model(inp, out(gap(relu(add([c1(h0), h0])))))
    randomize(model)
    return (
        model,
        [X],
        0,
        "c1",
        lambda xs: c1(c0(xs[0])),
        lambda a, xs: pre_softmax(out, gap(relu(add([a, c0(xs[0])])))),
    )


def case_nested():
    """The layer sits inside a functional backbone used as a layer of a Sequential model."""
    inp = keras.Input((12, 12, 3))
    b1 = keras.layers.Conv2D(4, 3, activation="relu", name="b1", **Z)
    pool = keras.layers.MaxPooling2D(2, name="bpool")
    b2 = keras.layers.Conv2D(6, 3, activation="relu", name="b2", **Z)
    base = keras.Model(inp, b2(pool(b1(inp))), name="base")
    gap = keras.layers.GlobalAveragePooling2D(name="gap")
    out = keras.layers.Dense(3, activation="softmax", name="out", **Z)
    model = keras.Sequential([keras.Input((12, 12, 3)), base, gap, out])
    randomize(model)
    return model, [X], 0, "base/b1", lambda xs: b1(xs[0]), lambda a, xs: pre_softmax(out, gap(b2(pool(a))))


def case_multi_input():
    """Two inputs, the image second; the other input joins after the conv trunk."""
    meta = keras.Input((5,), name="meta")
    img = keras.Input((12, 12, 3), name="image")
    c1 = keras.layers.Conv2D(4, 3, activation="relu", name="c1", **Z)
    c2 = keras.layers.Conv2D(5, 3, activation="relu", name="c2", **Z)
    gap, dm = keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(3, name="m", **Z)
    cat, out = keras.layers.Concatenate(name="cat"), keras.layers.Dense(3, activation="softmax", name="out", **Z)
    model = keras.Model([meta, img], out(cat([gap(c2(c1(img))), dm(meta)])))
    randomize(model)
    return (
        model,
        [META, X],
        1,
        "c1",
        lambda xs: c1(xs[1]),
        lambda a, xs: pre_softmax(out, cat([gap(c2(a)), dm(xs[0])])),
    )


CASES = {
    "sequential": case_sequential,
    "residual": case_residual,
    "nested": case_nested,
    "multi_input": case_multi_input,
}


def reference(case_parts, xs, target):
    """(A, logits, d score/d image, d score/d A) by the backend's own autodiff."""
    _, _, idx, _, body, head = case_parts

    def with_image(img):
        inputs = list(xs)
        inputs[idx] = img
        return inputs

    a = body(xs)
    logits = head(a, xs)
    g_image = native_grad(lambda img: picked(head(body(with_image(img)), with_image(img)), target), xs[idx])
    g_a = native_grad(lambda v: picked(head(v, xs), target), numpy_of(a))
    return numpy_of(a), numpy_of(logits), g_image, g_a


def assert_close(ours, ref, what):
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    scale = max(float(np.abs(ref).max()), 1e-12)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


# --------------------------------------------------------------------------- the shapes model, trained once

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
SHAPES_WEIGHTS = os.path.join(DATA, "shapes_cnn.weights.h5")


def shapes_cnn() -> keras.Model:
    """The small CNN whose weights ship in ``tests/data/shapes_cnn.weights.h5``: trained once (on
    TensorFlow, by ``make_shapes_weights.py``), loaded on every backend. Zeros initializers: the
    weights come from the file (and a JAX process compiles no random initializer for nothing)."""
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv1", **Z)(inp)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv2", **Z)(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(4, activation="softmax", name="out", **Z)(x)
    return keras.Model(inp, out, name="shapes_cnn")


def trained_shapes_cnn() -> keras.Model:
    model = shapes_cnn()
    model.load_weights(SHAPES_WEIGHTS)
    return model

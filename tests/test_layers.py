"""layers.py: conv-layer discovery, probes on every kind of model, receptive-field geometry."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from util import MODEL_FACTORIES, random_data, small_nested

import keras_vizcallbacks as kv
from keras_vizcallbacks import layers as L


def test_conv_layers_kinds_and_nesting():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.SeparableConv2D(4, 3, name="sep")(inp)
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)
    x = keras.layers.Conv2DTranspose(2, 3, name="tr")(x)
    inner = keras.Model(inp, x, name="inner")
    outer_in = keras.Input((16, 16, 3))
    y = inner(outer_in)
    y = keras.layers.Conv2D(3, 3, name="top")(y)
    y = keras.layers.Flatten()(y)
    model = keras.Model(outer_in, keras.layers.Dense(2)(y))
    assert [p for p, _ in L.conv_layers(model)] == ["inner/sep", "inner/dw", "inner/tr", "top"]
    seq1d = keras.Sequential([keras.Input((20, 2)), keras.layers.Conv1D(3, 5, name="c")])
    assert [p for p, _ in L.conv_layers(seq1d)] == ["c"]
    assert L.find_layer(model, "dw")[0] == "inner/dw"
    with pytest.raises(ValueError, match=r"No layer named 'nope'.*Conv layers: \['inner/sep'"):
        L.find_layer(model, "nope")


@pytest.mark.parametrize("kind", sorted(MODEL_FACTORIES))
def test_probe_matches_direct_computation(kind):
    model = MODEL_FACTORIES[kind]()
    x, _ = random_data(5)
    paths = [p for p, _ in L.conv_layers(model)]
    probe = L.build_probe(model, paths, logits=True, output=True)
    values = {k: np.asarray(v) for k, v in probe(x).items()}
    # Independent reference: run the layers one by one by hand.
    h = x
    refs = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            for inner in layer.layers[1:]:
                h = inner(h)
                refs[f"{layer.name}/{inner.name}"] = np.asarray(h)
        else:
            pre = h
            h = layer(h)
            refs[layer.name] = np.asarray(h)
    for p in paths:
        np.testing.assert_allclose(values[p], refs[p], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values[L.OUTPUT], np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    dense = model.get_layer("out")
    logits = np.asarray(pre) @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    np.testing.assert_allclose(values[L.LOGITS], logits, rtol=1e-5, atol=1e-5)
    # the model itself is untouched: still ends in softmax
    assert dense.activation is keras.activations.softmax


def test_probe_on_sequential_built_by_fit():
    model = keras.Sequential([keras.layers.Conv2D(2, 3, name="c"), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 8, 8, 1)), np.zeros((4, 2)), verbose=0)
    probe = L.build_probe(model, ["c"])
    assert np.asarray(probe(np.zeros((1, 8, 8, 1)))["c"]).shape == (1, 6, 6, 2)


def test_subclassed_model_gives_clear_error():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)
            self.flat = keras.layers.Flatten()

        def call(self, x):
            return self.flat(self.conv(x))

    net = Net()
    net(np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="functional or Sequential"):
        L.build_probe(net, [L.conv_layers(net)[0][0]], logits=True)


def test_geometry_of_reference_cnn_matches_design():
    model = kv.models.reference_cnn(compile=False)
    g1 = L.geometry(model, "conv2d")
    assert g1.stride == (1.0, 1.0) and g1.offset == (1.0, 1.0) and g1.size == (3.0, 3.0)
    g2 = L.geometry(model, "conv2d_1")  # conv2 cell r is centred on input pixel 2r + 3.5
    assert g2.stride == (2.0, 2.0) and g2.offset == (3.5, 3.5) and g2.size == (8.0, 8.0)
    assert np.allclose(g2.centres((13, 13))[0], 3.5 + 2 * np.arange(13))


def test_geometry_same_padding_and_nested():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="a")(inp)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="b")(x)
    model = keras.Model(inp, x)
    assert L.geometry(model, "a").offset == (0.0, 0.0)
    gb = L.geometry(model, "b")
    # 'same', stride 2 on 32 px: total padding 1, all on the right -> cell 0 centred on pixel 1
    assert gb.stride == (2.0, 2.0) and gb.offset == (1.0, 1.0) and gb.size == (5.0, 5.0)
    nested = small_nested()
    g = L.geometry(nested, "base/base_c2")
    assert g.stride == (2.0, 2.0) and g.offset == (3.5, 3.5)


def test_geometry_agrees_with_gradient_support():
    """Independent check: the input pixels a cell depends on (gradient support of a linear net)."""
    import tensorflow as tf

    inp = keras.Input((24, 24, 1))
    x = keras.layers.Conv2D(1, 3, kernel_initializer="ones", name="a")(inp)
    x = keras.layers.AveragePooling2D(2, name="p")(x)
    x = keras.layers.Conv2D(1, 3, dilation_rate=2, kernel_initializer="ones", name="b")(x)
    model = keras.Model(inp, x)
    g = L.geometry(model, "b")
    xin = tf.Variable(np.zeros((1, 24, 24, 1), np.float32))
    with tf.GradientTape() as tape:
        out = model(xin)[0, 2, 3, 0]
    grad = np.asarray(tape.gradient(out, xin))[0, :, :, 0]
    rows, cols = np.nonzero(grad)
    assert rows.max() - rows.min() + 1 == g.size[0]
    assert (rows.min() + rows.max()) / 2 == g.offset[0] + 2 * g.stride[0]
    assert (cols.min() + cols.max()) / 2 == g.offset[1] + 3 * g.stride[1]

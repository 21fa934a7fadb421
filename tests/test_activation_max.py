"""Activation maximization: the optimization works (independent pre-activation reference), a hand-set
edge filter gets its edges, one trace over epochs (TensorFlow and JAX), the view's tags, steps and
pixels, models that rescale inside, and clear errors before training."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from util import assert_steps, image, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend
from keras_vizcallbacks.explain import ActivationMaximizer, LayerStats, choose_filters
from keras_vizcallbacks.render.filter_views import CARD_WIDTH, MIN_TEXT_PX


def small_cnn(size: int = 16, n_classes: int = 4, name: str = "small_cnn") -> keras.Model:
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="out")(x)
    model = keras.Model(inp, out, name=name)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def shapes16() -> kv.datasets.Shapes:
    return kv.datasets.shapes(1200, size=16, seed=0)


@pytest.fixture(scope="module")
def trained16(shapes16) -> keras.Model:
    """A small CNN trained a little on 16x16 shapes (do not mutate)."""
    _backend.set_random_seed(0)
    model = small_cnn()
    model.fit(shapes16.images, shapes16.labels, epochs=4, batch_size=64, verbose=0)
    return model


def reference_pre_activation(model: keras.Model, x: np.ndarray, filters: list[int]) -> np.ndarray:
    """Mean over every cell of c2's output before its ReLU, for image x[i] and filter filters[i]:
    the layer's kernel and bias applied with keras.ops.conv to the pooled features (not our probe)."""
    features = keras.Model(model.inputs, model.get_layer("pool").output)(x, training=False)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.get_layer("c2").weights)
    z = keras.ops.convert_to_numpy(keras.ops.conv(features, kernel, padding="valid")) + bias
    return np.array([z[i, ..., f].mean() for i, f in enumerate(filters)], dtype=np.float64)


def test_optimized_images_excite_their_filters(trained16):
    """Each optimized image excites its filter, measured on c2's pre-activation output (an independent
    reference): at least 5x more than the starting noise and at least as much as the median of the
    filter's top-8 real images.

    "Excites" is measured from the filter's response to a flat mid-grey image, the mean of the starting
    noise: a filter's raw response to noise is mostly that resting response (bias and weights times the
    grey level), which no input can multiply by 5 when it already is a good part of what the input range
    allows; what the optimization must add is the excitation above it."""
    data = kv.datasets.shapes(400, size=16, seed=1).images
    stats = LayerStats(trained16, "c2")(data)
    filters, _ = choose_filters(8, 16, activations=stats.mean)  # as the view chooses them
    filters = filters.tolist()
    am = ActivationMaximizer(trained16, "c2")
    assert am.mask.all(), "valid convolutions: every cell's window lies inside the image"
    images, scores = am.optimize(filters)
    assert images.shape == (8, 16, 16, 3) and images.min() >= 0.0 and images.max() <= 1.0

    optimized = reference_pre_activation(trained16, images, filters)
    noise = reference_pre_activation(trained16, am.starting_noise(8), filters)
    grey = reference_pre_activation(trained16, np.full((8, 16, 16, 3), 0.5, np.float32), filters)
    np.testing.assert_allclose(scores, optimized, rtol=1e-4, atol=1e-5)  # the explainer's own measure agrees
    excitation, noise_excitation = optimized - grey, noise - grey
    assert np.all(excitation >= 5 * np.abs(noise_excitation)), (excitation, noise_excitation)
    assert np.all(excitation > 0)

    real = np.stack([reference_pre_activation(trained16, data, [f] * len(data)) for f in filters])
    median_top8 = np.median(np.sort(real, axis=1)[:, -8:], axis=1)
    assert np.all(optimized >= median_top8), (optimized, median_top8)


def _energy(img: np.ndarray, kernel: np.ndarray) -> float:
    """Mean squared correlation of ``img`` with ``kernel`` over every valid position."""
    windows = np.lib.stride_tricks.sliding_window_view(img, kernel.shape)
    return float(np.mean(np.einsum("ijkl,kl->ij", windows, kernel) ** 2))


def _neighbour_corr(img: np.ndarray, axis: int) -> float:
    a = img - img.mean()
    a, b = (a[1:], a[:-1]) if axis == 0 else (a[:, 1:], a[:, :-1])
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("orientation", ["vertical", "horizontal"])
def test_hand_set_edge_filter_gets_its_edges(orientation):
    """A first-layer filter set by hand to an edge kernel: the maximizing image's dominant pattern is
    that edge. It correlates with the kernel far more than with the kernel turned by 90 degrees, and
    it is constant along the kernel's edge (neighbours along the edge correlate, across it much less);
    the starting noise has none of this."""
    kernel = np.array([[-1.0, 0.0, 1.0]] * 3, np.float32)
    if orientation == "horizontal":
        kernel = kernel.T
    along = 0 if orientation == "vertical" else 1  # the axis the edge runs along
    inp = keras.Input((24, 24, 1))
    x = keras.layers.Conv2D(1, 3, activation="relu", name="edge")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    model.get_layer("edge").set_weights([kernel[:, :, None, None], np.zeros(1, np.float32)])

    images = kv.explain.activation_maximization(model, "edge", [0])
    img = images[0, ..., 0]
    noise = ActivationMaximizer(model, "edge").starting_noise(1)[0, ..., 0]
    assert _energy(img, kernel) >= 5 * _energy(img, kernel.T)
    assert _neighbour_corr(img, along) >= 0.9
    assert _neighbour_corr(img, 1 - along) <= _neighbour_corr(img, along) - 0.3
    assert _energy(noise, kernel) < 2 * _energy(noise, kernel.T)  # the noise has no preferred edge
    assert abs(_neighbour_corr(noise, along)) < 0.3


def header_digit_height(img: np.ndarray) -> int:
    """Ink height of the last glyph of the header line (the epoch number's last digit)."""
    bright = img.min(axis=-1) > 160
    rows = np.flatnonzero(bright.any(axis=1))
    band_end = rows[0]
    while band_end + 1 < len(bright) and bright[band_end + 1].any():
        band_end += 1
    band = bright[rows[0] : band_end + 1]
    cols = np.flatnonzero(band.any(axis=0))
    last = [cols[-1]]
    for c in cols[::-1][1:]:
        if c != last[-1] - 1:
            break
        last.append(c)
    glyph = band[:, min(last) : max(last) + 1]
    glyph_rows = np.flatnonzero(glyph.any(axis=1))
    return int(glyph_rows[-1] - glyph_rows[0] + 1)


def test_view_writes_tags_steps_and_pixels(log_dir, shapes16):
    """Steps 0 and 2 of three epochs (every_n_epochs=2 and the last); the image is the view's drawing of
    the optimized images (filters chosen once by weight norm, no data); legible at card size."""
    _backend.set_random_seed(2)
    model = small_cnn()
    am = kv.ActivationMaximization(log_dir, filters=6, steps=8, every_n_epochs=2, on_error="raise")
    norms = []  # the kernel norms when the first render chooses (epoch 0's end)

    def record(epoch, logs):
        kernels = kv.explain.conv_kernels(model.get_layer("c2"))
        norms.append(np.sqrt((kernels.reshape(16, -1) ** 2).sum(axis=1)))

    watch = keras.callbacks.LambdaCallback(on_epoch_end=record)
    model.fit(shapes16.images[:256], shapes16.labels[:256], epochs=3, batch_size=64, verbose=0, callbacks=[watch, am])
    run = read_run(log_dir)
    assert_steps(run, ["activation_maximization/c2"], [0, 2])  # layer=None: the last conv layer
    written = image(run["activation_maximization/c2"][-1])
    computed = am.compute(2)
    np.testing.assert_array_equal(written, am.draw(computed, 2)[0].image)
    chosen, images, _ = computed
    np.testing.assert_array_equal(chosen, np.argsort(-norms[0], kind="stable")[:6])  # chosen once, kept
    assert images.shape == (6, 16, 16, 3)
    desc = kv.writers.read_descriptions(os.path.join(log_dir, "viz"))["activation_maximization/c2"]
    assert "largest weight norm" in desc and "`c2`" in desc
    assert ", ".join(str(int(f)) for f in chosen) in desc
    assert header_digit_height(written) * CARD_WIDTH / written.shape[1] >= MIN_TEXT_PX


def test_model_that_rescales_inside(log_dir):
    """A model with Rescaling(1/255) is optimized in its raw 0..255 range (taken from the data)."""
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (64, 12, 12, 3)).astype(np.float32)
    data[0, 0, 0] = (0, 0, 0)
    data[0, 0, 1] = (255, 255, 255)
    am = kv.ActivationMaximization(log_dir, filters=2, data=data, steps=20, on_error="raise")
    model.fit(data, rng.integers(0, 2, 64), epochs=1, batch_size=32, verbose=0, callbacks=[am])
    assert am.maximizer.input_range == (0.0, 255.0)
    chosen, images, scores = am.compute(0)
    assert images.min() >= 0 and images.max() <= 255 and images.max() - images.min() > 100
    assert np.all(scores > am.maximizer.scores(am.maximizer.starting_noise(2), chosen))
    desc = kv.writers.read_descriptions(os.path.join(log_dir, "viz"))["activation_maximization/c"]
    assert "[0, 255] (from the data)" in desc and "most active" in desc


def test_nested_backbone_and_free_input_size():
    base_in = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", name="b1")(base_in)
    y = keras.layers.Conv2D(5, 3, strides=2, padding="same", activation="relu", name="b2")(y)
    base = keras.Model(base_in, y, name="base")
    inp = keras.Input((None, None, 3))
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(base(inp)))
    model = keras.Model(inp, out)
    with pytest.raises(ValueError, match="image_size"):
        ActivationMaximizer(model)
    am = ActivationMaximizer(model, image_size=(20, 24), steps=5)
    assert am.path == "base/b2"  # layer=None: the last conv layer, nested models searched
    images = am([0, 4])
    assert images.shape == (2, 20, 24, 3)
    # 'same' padding: the cells whose window reaches into the padding are left out of the objective
    assert am.border_excluded and 0 < am.mask.sum() < am.mask.size
    assert not am.mask[0].any() and am.mask[am.mask.shape[0] // 2, am.mask.shape[1] // 2]


def test_errors_before_training(log_dir, shapes16):
    model = small_cnn()
    x, y = shapes16.images[:64], shapes16.labels[:64]
    for kwargs, match in [
        ({"layer": "nope"}, r"No layer named 'nope'.*Conv layers: \['c1', 'c2'\]"),
        ({"layer": "out"}, r"no 2-D spatial output"),
        ({"filters": [3, 99]}, r"\[99\] out of range: the layer has 16 channels"),
        ({"image_size": (32, 32)}, r"fixed 16x16 input"),
    ]:
        cb = kv.ActivationMaximization(log_dir, **kwargs)
        with pytest.raises(ValueError, match=match):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    for kwargs, match in [
        ({"filters": 0}, "count >= 1"),
        ({"filters": [1, 1]}, "more than once"),
        ({"filters": "all"}, "count"),
        ({"input_range": (1, 0)}, "low < high"),
        ({"steps": 0}, "steps"),
        ({"regularization": "heavy"}, None),
    ]:
        if match is None:  # checked when the explainer is built
            with pytest.raises(ValueError, match="Unknown regularization"):
                model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.ActivationMaximization(log_dir, **kwargs)])
            continue
        with pytest.raises(ValueError, match=match):
            kv.ActivationMaximization(log_dir, **kwargs)
    one_d = keras.Sequential([keras.Input((20, 2)), keras.layers.Conv1D(3, 3, name="c"), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="1-D"):
        ActivationMaximizer(one_d)

"""Real sizes: placement by two matrix products, ``batch_size`` (checked, derived from a memory
budget, chunked calls), Score-CAM's channel cap, and sample grids of 224-px inputs that a
TensorBoard card can show (the 32-px demo's grids unchanged).

Small and fast: tiny models; the 224-px inputs go through a two-layer CNN, no backbone.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from util import random_data, small_functional

import keras_vizcallbacks as kv
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain._memory import (
    BYTES_PER_VALUE,
    MAX_BATCH_SIZE,
    MEMORY_BUDGET,
    chunks,
    default_batch_size,
    values_per_example,
)
from keras_vizcallbacks.explain._placement import _interp_matrix, normalize_maps, place_on_input
from keras_vizcallbacks.render import overlay
from keras_vizcallbacks.render.grid import block_mean
from keras_vizcallbacks.render.legibility import problems, recording

# --------------------------------------------------------------------------- placement


def _einsum_placement(maps: np.ndarray, geometry, size) -> np.ndarray:
    """The placement as it was computed before (one einsum over all five indices): the reference."""
    maps = np.asarray(maps, dtype=np.float64)
    cy, cx = geometry.centres(maps.shape[1:3])
    wy = _interp_matrix(cy, int(size[0]))
    wx = _interp_matrix(cx, int(size[1]))
    return np.einsum("Hh,nhw,Ww->nHW", wy, maps, wx).astype(np.float32)


@pytest.mark.parametrize(
    ("input_shape", "path"),
    [((16, 16, 3), "c2"), ((16, 16, 3), "c1"), ((40, 28, 3), "c2"), ((9, 9, 3), "p1")],
)
def test_place_on_input_equals_the_einsum_reference(input_shape, path):
    model = small_functional(input_shape)
    geo = L.geometry(model, path)
    h, w = model.get_layer(path).output.shape[1:3]
    maps = np.random.default_rng(0).normal(size=(5, h, w)).astype(np.float32)
    got = place_on_input(maps, geo, input_shape[:2])
    ref = _einsum_placement(maps, geo, input_shape[:2])
    assert got.shape == (5, *input_shape[:2]) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_place_on_input_at_224_equals_the_einsum_reference():
    inp = keras.Input((224, 224, 3))
    x = keras.layers.Conv2D(2, 7, strides=2, padding="same", name="a")(inp)
    x = keras.layers.Conv2D(2, 3, strides=4, padding="valid", name="b")(x)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    geo = L.geometry(model, "b")
    h, w = model.get_layer("b").output.shape[1:3]
    maps = np.random.default_rng(1).random((3, h, w), dtype=np.float32)
    np.testing.assert_allclose(
        place_on_input(maps, geo, (224, 224)), _einsum_placement(maps, geo, (224, 224)), rtol=1e-6, atol=1e-6
    )


# --------------------------------------------------------------------------- batch_size


@pytest.mark.parametrize("bad", [0, -5, True, np.bool_(True), 2.5, "8", np.float32(4.0)])
def test_bad_batch_size_is_a_value_error_at_construction(tmp_path, bad):
    x, y = random_data(4)
    for make in (
        lambda: kv.GradCAM(str(tmp_path), (x, y), batch_size=bad),
        lambda: kv.Saliency(str(tmp_path), (x, y), batch_size=bad),
    ):
        with pytest.raises(ValueError, match="batch_size must be"):
            make()
    model = small_functional()
    with pytest.raises(ValueError, match="batch_size"):
        kv.explain.grad_cam(model, x, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size"):
        kv.explain.saliency(model, x, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size"):
        kv.explain.GradCAMExplainer(model, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size"):
        kv.explain.SaliencyExplainer(model, batch_size=bad)


def test_default_batch_size_follows_the_layer_shapes():
    model = small_functional((16, 16, 3))
    # input 16*16*3, c1 14*14*4, p1 7*7*4, c2 5*5*6, gap 6, out 3 (counted by hand)
    values = 768 + 784 + 196 + 150 + 6 + 3
    assert values_per_example(model) == values
    assert default_batch_size(model) == MAX_BATCH_SIZE == 64  # a small model: the old chunk
    budget = 10 * BYTES_PER_VALUE * values + 1
    assert default_batch_size(model, budget=budget) == 10
    assert default_batch_size(model, budget=1) == 1
    assert MEMORY_BUDGET == 256 * 2**20
    assert kv.explain.GradCAMExplainer(model).batch_size == 64
    assert kv.explain.SaliencyExplainer(model).batch_size == 64


def test_chunks_are_balanced_and_of_one_size():
    assert chunks(8, 64) == (8, [(0, 8)])
    assert chunks(16, 7) == (6, [(0, 6), (6, 12), (12, 16)])
    size, spans = chunks(65, 64)
    assert size == 33 and spans == [(0, 33), (33, 65)]


def test_chunked_calls_give_the_same_maps_and_trace_once():
    model = small_functional()
    x, _ = random_data(8, seed=4)
    whole = kv.explain.GradCAMExplainer(model, "c2")
    chunked = kv.explain.GradCAMExplainer(model, "c2", batch_size=np.int64(3))
    assert chunked.batch_size == 3
    for cls in (None, 1):
        a = whole.explain(x, cls, normalize=False)
        b = chunked.explain(x, cls, normalize=False)
        np.testing.assert_allclose(b.raw, a.raw, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(b.classes, a.classes)
        np.testing.assert_allclose(b.probabilities, a.probabilities, rtol=1e-5, atol=1e-6)
    assert chunked.fn.traces == 1  # 8 rows in calls of 3, 3, 3 (the last padded): one shape
    for method, opts in (("vanilla", {}), ("smoothgrad", {"n_samples": 4}), ("integrated_gradients", {"steps": 4})):
        ref = kv.explain.SaliencyExplainer(model, method, **opts).explain(x, reduce=None)
        got = kv.explain.SaliencyExplainer(model, method, batch_size=3, **opts).explain(x, reduce=None)
        np.testing.assert_allclose(got.maps, ref.maps, rtol=1e-4, atol=1e-6, err_msg=method)


def test_callbacks_pass_batch_size_on(log_dir):
    model = small_functional()
    x, y = random_data(6)
    for cb in (kv.GradCAM(log_dir, (x, y), batch_size=np.int64(2)), kv.Saliency(log_dir, (x, y), batch_size=2)):
        cb.set_model(model)
        cb.on_train_begin()
        try:
            assert cb.explainer.batch_size == 2
            cb.compute(0)
        finally:
            cb.on_train_end()


# --------------------------------------------------------------------------- Score-CAM's cap


def _logits_model() -> keras.Model:
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="c2")(x)
    out = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


def test_scorecam_scores_only_the_most_active_channels():
    keras.utils.set_random_seed(3)
    model = _logits_model()
    x, _ = random_data(3, seed=5)
    probe = keras.Model(model.inputs[0], [model.get_layer("c2").output, model.outputs[0]])
    a, logits = (keras.ops.convert_to_numpy(v) for v in probe(x))
    cls = np.argmax(logits, axis=1)
    geo = L.geometry(model, "c2")
    k = 3
    expected = []
    for i in range(len(x)):
        keep = np.sort(np.argsort(-a[i].mean(axis=(0, 1)), kind="stable")[:k])
        masks = normalize_maps(place_on_input(np.moveaxis(a[i][..., keep], -1, 0), geo, (16, 16)))
        scores = keras.ops.convert_to_numpy(model(x[i : i + 1] * masks[..., None]))[:, cls[i]]
        w = np.exp(scores - scores.max())
        expected.append(np.maximum((a[i][..., keep] * (w / w.sum())).sum(-1), 0.0))
    got = kv.explain.grad_cam(model, x, layer="c2", method="scorecam", max_channels=k, upsample=False, normalize=False)
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-4, atol=1e-5)
    # a cap at or above the channel count is every channel
    every = kv.explain.grad_cam(model, x, layer="c2", method="scorecam", max_channels=None, normalize=False)
    at_8 = kv.explain.grad_cam(model, x, layer="c2", method="scorecam", max_channels=8, normalize=False)
    np.testing.assert_allclose(at_8, every, rtol=1e-5, atol=1e-6)
    assert not np.allclose(every, kv.explain.grad_cam(model, x, layer="c2", method="scorecam", max_channels=1))


def test_scorecam_cap_default_and_description(log_dir):
    assert kv.explain.SCORECAM_CHANNELS == 32
    assert kv.explain.GradCAMExplainer(_logits_model(), method="scorecam").max_channels == 32
    with pytest.raises(ValueError, match="max_channels"):
        kv.explain.GradCAMExplainer(_logits_model(), method="scorecam", max_channels=0)
    x, y = random_data(2)
    cb = kv.GradCAM(log_dir, (x, y), layer="c2", method="scorecam", max_channels=5)
    cb.set_model(_logits_model())
    cb.on_train_begin()
    try:
        (frame,) = cb.draw(cb.compute(0), 0)
    finally:
        cb.on_train_end()
    assert "Channels scored: 5 of the layer's 8 per image" in frame.description


# --------------------------------------------------------------------------- sample grids


def test_block_mean_equals_a_loop_over_blocks():
    img = np.random.default_rng(0).integers(0, 256, (2, 7, 5, 3), dtype=np.uint8)
    got = block_mean(img, 2)
    assert got.shape == (2, 4, 3, 3) and got.dtype == np.uint8
    padded = np.pad(img, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")  # repeat the last row / column
    for r in range(4):
        for c in range(3):
            block = padded[:, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2].astype(np.float64).mean(axis=(1, 2))
            np.testing.assert_array_equal(got[:, r, c], np.floor(block + 0.5).astype(np.uint8))  # half up
    assert block_mean(img, 1) is img


def test_32px_grids_are_unchanged():
    """32-px inputs at 128- and 96-px panels are upscaled 4x and 3x; shapes from main's code path for these captions."""
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    grid = overlay.sample_grid([imgs, imgs[::-1]])
    np.testing.assert_array_equal(grid[4 : 4 + 128, 4 : 4 + 128], np.repeat(np.repeat(imgs[0], 4, 0), 4, 1))
    np.testing.assert_array_equal(grid[4 : 4 + 128, 136 : 136 + 128], np.repeat(np.repeat(imgs[15], 4, 0), 4, 1))
    caps = [[f"#{i}  true: triangle", "pred: circle  p=0.93", "map max 0.123"] for i in range(16)]
    correct = [i % 2 == 0 for i in range(16)]
    assert overlay.sample_grid([imgs, imgs], caps, correct=correct).shape == (1712, 536, 3)
    assert overlay.sample_grid([imgs[:8]] * 3, caps[:8], correct=correct[:8], panel_px=96).shape == (776, 608, 3)


def _tiny_224() -> keras.Model:
    inp = keras.Input((224, 224, 3), name="image")
    x = keras.layers.Conv2D(4, 8, strides=8, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="c2")(x)
    out = keras.layers.Dense(3, activation="softmax", name="out")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


def test_224px_inputs_are_shrunk_by_block_means():
    imgs = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    grid = overlay.sample_grid([imgs])  # 224 > 128: shrunk by 2 to 112-px tiles
    tile = imgs[0].reshape(112, 2, 112, 2, 3).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(grid[4 : 4 + 112, 4 : 4 + 112], np.floor(tile + 0.5).astype(np.uint8))
    assert overlay.shrink_factor(224, 224) == 2 and overlay.shrink_factor(224, 224, 96) == 3
    assert overlay.shrink_factor(32, 32) == 1 and overlay.shrink_factor(128, 128) == 1


@pytest.mark.parametrize("view", ["grad_cam", "saliency"])
def test_16_samples_of_224px_fit_a_card(log_dir, view):
    """Bound: at most 720 px wide and 1,712 px tall (the height of 16 samples of 32 px); main drew
    these 16 samples 460 x 4,864 (Grad-CAM) and 688 x 5,296 (saliency) px, one sample per row."""
    x = np.random.default_rng(2).random((16, 224, 224, 3), dtype=np.float32)
    y = np.arange(16) % 3
    names = ["circle", "square", "triangle"]
    if view == "grad_cam":
        cb = kv.GradCAM(log_dir, (x, y), class_names=names, max_samples=16)
    else:
        cb = kv.Saliency(log_dir, (x, y), class_names=names, max_samples=16)
    cb.set_model(_tiny_224())
    cb.on_train_begin()
    try:
        computed = cb.compute(0)
        with recording() as drawn:
            frames = [f for f in cb.draw(computed, 0) if hasattr(f, "image")]
    finally:
        cb.on_train_end()
    (frame,) = frames
    h, w = frame.image.shape[:2]
    assert w <= 720 and h <= 1712, (h, w)
    assert problems(drawn, w) == []  # text and tiles still read at 330 px wide
    panels = [d for d in drawn if d.what == "panel"]
    assert panels and all(d.px == 75 for d in panels)  # 224 px / 3: both views' panels are 96 px at most

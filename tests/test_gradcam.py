"""Grad-CAM family: against independent GradientTape references, CAM, placement, the
pointing game on the trained shapes model, the model-randomisation sanity check, and
the GradCAM callback read back from its event files."""

from __future__ import annotations

import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from util import assert_steps, compiled, image, random_data, read_run, small_functional, small_sequential

import keras_vizcallbacks as kv
from keras_vizcallbacks import render
from keras_vizcallbacks.explain import GradCAMExplainer, normalize_maps, place_on_input
from keras_vizcallbacks.render import overlay
from keras_vizcallbacks.writers import read_descriptions

# --------------------------------------------------------------------------- references


def tape_reference(forward, x, classes):
    """The keras.io recipe, one image at a time, on the logits: weights = mean gradient per
    channel, map = ReLU(sum_k w_k A_k). ``forward(x1) -> (A, logits)`` is written by hand
    for each model from its own layers (no probe, no replay)."""
    maps, acts, grads = [], [], []
    for i in range(len(x)):
        xi = tf.constant(x[i : i + 1])
        with tf.GradientTape() as tape:
            a, z = forward(xi)
            s = z[0, int(classes[i])]
        g = tape.gradient(s, a)
        a, g = a.numpy()[0].astype(np.float64), g.numpy()[0].astype(np.float64)
        w = g.mean(axis=(0, 1))
        maps.append(np.maximum((a * w).sum(axis=-1), 0.0))
        acts.append(a)
        grads.append(g)
    return np.stack(maps), np.stack(acts), np.stack(grads)


def dense_logits(layer, h):
    return tf.matmul(h, layer.kernel) + layer.bias


def functional_forward(model):
    c1, p1, c2, gap, out = (model.get_layer(n) for n in ("c1", "p1", "c2", "gap", "out"))

    def forward(x):
        a = c2(p1(c1(x)))
        return a, dense_logits(out, gap(a))

    return forward


def spearman(a, b):
    """Rank correlation (average ranks for ties), numpy only."""

    def ranks(v):
        v = np.asarray(v, dtype=np.float64).ravel()
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=np.float64)
        _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return sums[inv] / counts[inv]

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / den) if den > 0 else np.nan


@pytest.fixture(scope="module")
def trained_functional():
    keras.utils.set_random_seed(3)
    model = compiled(small_functional())
    x, y = random_data(64)
    model.fit(x, y, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def nested_resnet():
    keras.utils.set_random_seed(4)
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    model = keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(5, activation="softmax", name="head"),
        ],
        name="nested_resnet",
    )
    return model


# --------------------------------------------------------------------------- correctness


def test_gradcam_equals_tape_reference_on_a_functional_model(trained_functional):
    x, _ = random_data(4, seed=1)
    model = trained_functional
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    ref, _, _ = tape_reference(functional_forward(model), x, predicted)
    raw = kv.explain.grad_cam(model, x, layer="c2", upsample=False, normalize=False)
    assert raw.shape == (4, 5, 5) and raw.dtype == np.float32
    assert ref.max() > 0  # the comparison is not between two zero maps
    np.testing.assert_allclose(raw, ref, atol=1e-5, rtol=1e-5)
    # default layer is the last conv layer; class_index per image and fixed
    np.testing.assert_allclose(kv.explain.grad_cam(model, x, upsample=False, normalize=False), ref, atol=1e-5)
    other = (predicted + 1) % 3
    ref_other, _, _ = tape_reference(functional_forward(model), x, other)
    got = kv.explain.grad_cam(model, x, class_index=list(other), upsample=False, normalize=False)
    np.testing.assert_allclose(got, ref_other, atol=1e-5)
    ref2, _, _ = tape_reference(functional_forward(model), x, [2] * 4)
    np.testing.assert_allclose(
        kv.explain.grad_cam(model, x, class_index=2, upsample=False, normalize=False), ref2, atol=1e-5
    )


def test_sibling_methods_follow_their_formulas(trained_functional):
    x, _ = random_data(3, seed=2)
    model = trained_functional
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    _, a, g = tape_reference(functional_forward(model), x, predicted)
    relu = lambda v: np.maximum(v, 0.0)
    expected = {
        "hirescam": relu((g * a).sum(-1)),
        "layercam": relu((relu(g) * a).sum(-1)),
    }
    # Grad-CAM++ closed form, written out per cell
    alpha = g**2 / np.where(g != 0, 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3, 1.0)
    alpha = np.where(g != 0, alpha, 0.0)
    w = (alpha * relu(g)).sum(axis=(1, 2))
    expected["gradcam++"] = relu(np.einsum("nk,nhwk->nhw", w, a))
    for method, ref in expected.items():
        got = kv.explain.grad_cam(model, x, method=method, upsample=False, normalize=False)
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-4, err_msg=method)


def test_scorecam_equals_masked_forward_passes(trained_functional):
    model = trained_functional
    x, _ = random_data(2, seed=3)
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    _, a, _ = tape_reference(functional_forward(model), x, predicted)
    geo = kv.layers.geometry(model, "c2")
    forward = functional_forward(model)
    expected = []
    for i in range(len(x)):
        masks = normalize_maps(place_on_input(np.moveaxis(a[i], -1, 0), geo, (16, 16)))
        scores = np.array([forward(x[i : i + 1] * m[None, ..., None])[1].numpy()[0, predicted[i]] for m in masks])
        w = np.exp(scores - scores.max())
        expected.append(np.maximum((a[i] * (w / w.sum())).sum(-1), 0.0))
    got = kv.explain.grad_cam(model, x, method="scorecam", upsample=False, normalize=False)
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-5, rtol=1e-4)


def test_gradcam_on_nested_resnet_equals_reference(nested_resnet):
    model = nested_resnet
    base, head = model.get_layer("resnet50"), model.get_layer("head")
    x = np.random.default_rng(5).random((2, 64, 64, 3), dtype=np.float32)

    def forward(xi):
        a = base(xi)  # conv5_block3_out is the base model's output
        return a, dense_logits(head, tf.reduce_mean(a, axis=(1, 2)))

    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    ex = GradCAMExplainer(model)
    assert ex.path == "resnet50/conv5_block3_out"
    for cls in (predicted, (predicted + 1) % 5):
        ref, _, _ = tape_reference(forward, x, cls)
        got = ex.explain(x, cls, upsample=False, normalize=False).raw
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-4)
    # placed at receptive-field centres: stride 32 from pixel 0 on a 64x64 input
    assert ex.geometry.stride == (32.0, 32.0) and ex.geometry.offset == (0.0, 0.0)
    maps = ex(x)
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()


def test_gradcam_equals_cam_on_gap_dense_models():
    """Zhou et al. 2016: with conv -> GlobalAveragePooling -> Dense, CAM_c = sum_k W[k, c] A_k,
    and Grad-CAM's channel weights are W[k, c] / (h*w): the same map up to a positive scale."""
    keras.utils.set_random_seed(7)
    model = compiled(small_sequential(n_classes=3))
    x, y = random_data(48)
    model.fit(x, y, epochs=2, verbose=0)
    c1, p1, c2, out = (model.get_layer(n) for n in ("c1", "p1", "c2", "out"))
    a = c2(p1(c1(x[:4]))).numpy().astype(np.float64)
    kernel = out.kernel.numpy().astype(np.float64)
    for cls in range(3):
        cam = np.maximum(np.einsum("nhwk,k->nhw", a, kernel[:, cls]), 0.0)
        got = kv.explain.grad_cam(model, x[:4], class_index=cls, upsample=False, normalize=False)
        assert cam.max() > 0
        scale = (got * cam).sum() / (cam * cam).sum()  # least squares
        assert scale > 0
        np.testing.assert_allclose(scale, 1.0 / 25.0, rtol=1e-4)  # 1 / (h * w), h = w = 5
        np.testing.assert_allclose(got, scale * cam, atol=1e-6)


def test_placement_puts_each_cell_at_its_receptive_field_centre():
    """small_sequential's c2: 3x3 valid conv, 2x2 pool, 3x3 valid conv -> cell r centred on
    input pixel 3.5 + 2 r (worked out by hand). Bilinear between centres, flat outside."""
    model = small_sequential()
    geo = kv.layers.geometry(model, "c2")
    assert geo.offset == (3.5, 3.5) and geo.stride == (2.0, 2.0)
    ramp = np.tile(np.arange(5, dtype=np.float32)[None, :], (5, 1))[None]  # value = column index
    up = place_on_input(ramp, geo, (16, 16))[0]
    expected_cols = np.clip((np.arange(16) - 3.5) / 2.0, 0.0, 4.0)
    np.testing.assert_allclose(up, np.tile(expected_cols, (16, 1)), atol=1e-6)
    hot = np.zeros((1, 5, 5), dtype=np.float32)
    hot[0, 1, 3] = 1.0  # centre (5.5, 9.5): the four pixels around it share the peak
    up = place_on_input(hot, geo, (16, 16))[0]
    peak = np.argwhere(up == up.max())
    assert {tuple(p) for p in peak} == {(5, 9), (5, 10), (6, 9), (6, 10)}


def test_pointing_game_on_the_trained_shapes_model(trained_cnn, shapes_test):
    """Max of the upsampled Grad-CAM inside the shape's mask (1-pixel tolerance) for >= 80%
    of correctly classified test images."""
    x, y, masks = shapes_test.images, shapes_test.labels, shapes_test.masks
    ex = GradCAMExplainer(trained_cnn)
    assert ex.path == "conv2d_1"
    r = ex.explain(x)
    correct = r.classes == y
    assert correct.mean() > 0.9
    grown = masks.copy()  # dilate by one pixel (8-neighbourhood)
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= padded[:, 1 + dy : 1 + dy + 32, 1 + dx : 1 + dx + 32]
    flat = r.maps.reshape(len(x), -1).argmax(axis=1)
    rows, cols = np.unravel_index(flat, (32, 32))
    hit = grown[np.arange(len(x)), rows, cols]
    exact = masks[np.arange(len(x)), rows, cols]
    rate, rate0 = hit[correct].mean(), exact[correct].mean()
    print(f"pointing game: {rate:.3f} with 1-px tolerance, {rate0:.3f} exact, {correct.sum()} correct images")
    assert rate >= 0.8


def test_maps_depend_on_the_weights(trained_cnn, shapes_test):
    """Adebayo et al. 2018: re-initialised weights -> maps unrelated to the trained ones."""
    x = shapes_test.images[:40]
    keras.utils.set_random_seed(11)
    random_model = keras.models.clone_model(trained_cnn)  # same architecture, freshly initialised weights
    for trained_w, random_w in zip(trained_cnn.get_weights(), random_model.get_weights()):
        assert trained_w.shape == random_w.shape and not np.allclose(trained_w, random_w)
    classes = np.argmax(trained_cnn.predict(x, verbose=0), axis=1)
    trained_maps = kv.explain.grad_cam(trained_cnn, x, class_index=classes)
    random_maps = kv.explain.grad_cam(random_model, x, class_index=classes)
    rho = np.array([spearman(a, b) for a, b in zip(trained_maps, random_maps)])
    rho = np.where(np.isnan(rho), 0.0, rho)  # an all-zero random map shares no ranking
    print(f"Grad-CAM trained vs re-initialised: mean Spearman {rho.mean():.3f}")
    assert rho.mean() < 0.5
    # and the same model gives the same maps (the check can fail)
    again = kv.explain.grad_cam(trained_cnn, x, class_index=classes)
    assert np.mean([spearman(a, b) for a, b in zip(trained_maps, again)]) > 0.99


def test_class_index_validation_and_constant_maps(trained_functional):
    x, _ = random_data(3, seed=4)
    with pytest.raises(ValueError, match="3 classes"):
        kv.explain.grad_cam(trained_functional, x, class_index=3)
    with pytest.raises(ValueError, match="3 classes"):
        kv.explain.grad_cam(trained_functional, x, class_index=[0, 1, -1])
    with pytest.raises(ValueError, match="one int per image"):
        kv.explain.grad_cam(trained_functional, x, class_index=[0, 1])
    with pytest.raises(ValueError, match="Unknown Grad-CAM method"):
        kv.explain.grad_cam(trained_functional, x, method="gradcam+++")
    with pytest.raises(ValueError, match="c2"):
        kv.explain.grad_cam(trained_functional, x, layer="out")  # Dense: names the usable layers
    # an image whose map is all zero normalizes to zeros, not NaN
    black = np.zeros((1, 16, 16, 3), dtype=np.float32)
    maps = kv.explain.grad_cam(trained_functional, black)
    assert np.isfinite(maps).all()
    assert normalize_maps(np.zeros((2, 4, 4))).max() == 0.0
    assert np.isfinite(normalize_maps(np.full((1, 3, 3), np.nan))).all()


def positive_gradcam(A, G):
    """The docs' example (docs/views/grad_cam.md): Grad-CAM with the positive mean gradients only."""
    spatial = tuple(range(1, G.ndim - 1))
    weights = np.maximum(G.mean(axis=spatial), 0.0)
    return np.einsum("nk,n...k->n...", weights, A)


def test_a_callable_method_gets_activations_and_gradients(trained_functional):
    model = trained_functional
    x, _ = random_data(3, seed=6)
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    _, a, g = tape_reference(functional_forward(model), x, predicted)
    seen = {}

    def spy(A, G):
        seen.update(A=A, G=G)
        return (A * G.mean(axis=(1, 2), keepdims=True)).sum(-1)  # Grad-CAM, written by the user

    got = kv.explain.grad_cam(model, x, method=spy, upsample=False, normalize=False)
    assert seen["A"].dtype == np.float32 and seen["G"].dtype == np.float32
    assert seen["A"].shape == seen["G"].shape == a.shape  # (N, h, w, K)
    np.testing.assert_allclose(seen["G"], g, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(got, kv.explain.grad_cam(model, x, upsample=False, normalize=False), atol=1e-6)
    # the docs' example: the reference computed here, from the tape's A and G
    w = np.maximum(g.mean(axis=(1, 2)), 0.0)
    ref = np.maximum(np.einsum("nk,nhwk->nhw", w, a), 0.0)
    mine = kv.explain.grad_cam(model, x, method=positive_gradcam, upsample=False, normalize=False)
    np.testing.assert_allclose(mine, ref, atol=1e-5, rtol=1e-4)
    ex = GradCAMExplainer(model, method=positive_gradcam)
    assert ex.title == "positive_gradcam" and ex.entry.gradients
    with pytest.raises(ValueError, match=re.escape(f"returned shape (3,); expected {a.shape[:-1]}")):
        kv.explain.grad_cam(model, x, method=lambda A, G: A.sum(axis=(1, 2, 3)))


def test_callback_with_a_callable_method(log_dir, trained_functional):
    model = keras.models.clone_model(trained_functional)
    model.set_weights(trained_functional.get_weights())
    compiled(model)
    x, y = random_data(16, seed=7)
    cb = kv.GradCAM(log_dir, (x[:2], y[:2]), method=positive_gradcam)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[cb])
    assert cb.failures == []
    run = read_run(log_dir)
    assert_steps(run, ["grad_cam/c2"], [0])  # the tag names the layer, not the method
    assert read_descriptions(log_dir + "/viz")["grad_cam/c2"].startswith("**positive_gradcam of ")
    # the picture's overlays are the callable's maps (the same as kv.explain.grad_cam with it)
    maps = kv.explain.grad_cam(model, x[:2], method=positive_gradcam)
    assert np.isfinite(maps).all() and maps.max() == 1.0


def test_method_tables_are_what_docstrings_and_docs_list():
    """Every method of the tables is named in the docstrings and the docs page (and nothing else is)."""
    page = (pathlib.Path(__file__).parents[1] / "docs" / "views" / "grad_cam.md").read_text(encoding="utf-8")
    section = page.split("## Methods", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `\"([^`]+)\"`", section, flags=re.M)
    assert rows == list(kv.explain.CAM_METHODS)
    for doc in (kv.explain.grad_cam.__doc__, GradCAMExplainer.__doc__, kv.GradCAM.__doc__):
        for name in kv.explain.CAM_METHODS:
            assert f'``"{name}"``' in doc
    for name, entry in kv.explain.CAM_METHODS.items():
        assert entry.name == name and entry.title and entry.summary
    assert [m for m, e in kv.explain.CAM_METHODS.items() if not e.gradients] == ["scorecam"]


# --------------------------------------------------------------------------- the callback


def test_callback_writes_overlays_per_epoch_and_traces_once(log_dir, trained_functional):
    model = keras.models.clone_model(trained_functional)
    model.set_weights(trained_functional.get_weights())
    compiled(model)
    x, y = random_data(24, seed=5)
    cb = kv.GradCAM(log_dir, (x[:1], y[:1]), class_names=["ant", "bee", "cat"])
    cb4 = kv.GradCAM(log_dir, x[:4], labels=y[:4], method="layercam", target="true", run_name="four")
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb, cb4])
    assert cb.failures == [] and cb4.failures == []
    assert cb.explainer.fn.traces == 1 and cb4.explainer.fn.traces == 1
    run = read_run(log_dir)
    assert_steps(run, ["grad_cam/c2"], [0, 1, 2])
    assert_steps(read_run(log_dir, "four"), ["grad_cam/c2"], [0, 1, 2])
    img = image(run["grad_cam/c2"][-1])
    assert img.dtype == np.uint8 and img.ndim == 3 and 192 <= max(img.shape[:2]) <= 1024
    # one sample: [input | overlay] under the caption, factor 6 (16 px -> 96 px panels), 4 px frame
    maps = kv.explain.grad_cam(model, x[:1])
    rgb = render.to_rgb(x[:1], per=1)
    f = 6
    assert overlay.panel_factor(16, 16, overlay.SAMPLE_PANEL_PX) == f
    jet = render.lut("jet")[np.round(maps[0] * 255).astype(int)]
    expected_overlay = np.round(rgb[0] * (1 - 0.45) + jet * 0.45).astype(np.uint8)
    found = _find_block(img, render.upscale(rgb[0], f))
    assert found is not None, "the input panel is missing"
    top, left = found
    panel = img[top : top + 16 * f, left + 16 * f + 4 : left + 32 * f + 4]
    np.testing.assert_allclose(panel[::f, ::f].astype(int), expected_overlay.astype(int), atol=1)
    desc = read_descriptions(log_dir + "/viz")["grad_cam/c2"]
    for word in ("Grad-CAM", "c2", "predicted class", "pre-softmax", "min-max"):
        assert word in desc


def _find_block(img, block):
    """(top, left) where ``block`` sits in ``img`` exactly, else None."""
    h, w = block.shape[:2]
    first = block[0, 0]
    for top, left in np.argwhere((img[..., 0] == first[0]) & (img[..., 1] == first[1]) & (img[..., 2] == first[2])):
        if (
            top + h <= img.shape[0]
            and left + w <= img.shape[1]
            and np.array_equal(img[top : top + h, left : left + w], block)
        ):
            return int(top), int(left)
    return None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layer": "nope"}, "No layer named 'nope'.*c2"),
        ({"layer": "out"}, "no 2-D spatial output.*c1, p1, c2"),
        ({"target": "true"}, "target='true' needs the true labels"),
        ({"target": 7}, "target class 7 is out of range: the model has 3 classes"),
        ({"class_names": ["a", "b", "c", "d"]}, "4 class_names.*3 classes"),
        ({"labels": np.array([0, 5])}, "label 5 is out of range"),
    ],
)
def test_configuration_errors_raise_before_the_first_batch(log_dir, kwargs, match):
    model = compiled(small_functional())
    x, y = random_data(8)
    cb = kv.GradCAM(log_dir, x[:2], **kwargs)
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert cb.explainer is None or cb.written == []


def test_constructor_rejects_bad_options(log_dir):
    with pytest.raises(ValueError, match="method"):
        kv.GradCAM(log_dir, np.zeros((1, 16, 16, 3)), method="cam")
    with pytest.raises(ValueError, match="target"):
        kv.GradCAM(log_dir, np.zeros((1, 16, 16, 3)), target="best")
    with pytest.raises(ValueError, match="colormap"):
        kv.GradCAM(log_dir, np.zeros((1, 16, 16, 3)), cmap="nope")
